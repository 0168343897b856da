"""What a submission deserves, decided from hype's records alone. Pure: no DB, no network.

- a code no session issued, or another worker's code → flagged, never approved or paid;
- finished session (task done, or qualification failed, which the consent page promises the base
  pay for), its code checks out, no exclusion → approve;
- excluded by the researcher or a rule → not approved: Prolific asks the worker to return it with
  the reason; MTurk leaves it for the researcher unless rejections were switched on (the issue asks
  for no automatic rejections without a setting);
- no finished session → returned (Prolific) / flagged (MTurk).
"""

from __future__ import annotations

from dataclasses import dataclass

from hype.quality import RULE_FAILED_QUALIFICATION

# A qualification failure is an exclusion from scoring, not from pay: those workers earned the base.
NOT_BLOCKING_PAY = frozenset({RULE_FAILED_QUALIFICATION})


@dataclass(frozen=True)
class Facts:
    stage: str | None  # the hype session's stage, None when this worker has no session
    code_ok: bool
    code_problem: str  # why the code failed, for the researcher
    exclusions: tuple[tuple[str | None, str], ...] = ()  # active (rule, reason) pairs


@dataclass(frozen=True)
class Decision:
    action: str  # approve | return | reject | flag
    reason: str
    bonus_allowed: bool = False


def decide(facts: Facts, *, platform: str, reject_excluded: bool = False) -> Decision:
    if not facts.code_ok:  # forged or shared: held for the researcher, whatever else is true
        return Decision("flag", facts.code_problem)
    if facts.stage is None:
        return _not_done(platform, "no hype session for this worker (the task was never started here)")
    if facts.stage not in ("completed", "failed"):
        return _not_done(platform, f"the hype session did not finish (stage: {facts.stage})")
    blocking = [reason for rule, reason in facts.exclusions if rule not in NOT_BLOCKING_PAY]
    if blocking:
        reason = "excluded: " + "; ".join(blocking)
        if platform == "prolific":
            return Decision("return", reason)
        return Decision("reject" if reject_excluded else "flag", reason)
    return Decision("approve", "finished" if facts.stage == "completed" else "qualification not passed: base pay",
                    bonus_allowed=facts.stage == "completed")


def _not_done(platform: str, reason: str) -> Decision:
    return Decision("return" if platform == "prolific" else "flag", reason)
