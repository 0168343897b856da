"""Drive a worker's whole session through the real session service (no browser, no HTTP): for tests
that need finished workers with known answers (dashboard, platforms, exports)."""

from __future__ import annotations

from hype.sessions import Answer, BrowserCheck, current_trial, enter, finish_instructions, identity_from_params, record_answer, record_browser_check, serve_trial
from hype.studies import study_settings


def play(session, study, worker: str, *, accuracy: float = 0.8, rng, reaction_ms: float = 900.0, platform_params=None,
         qualify: bool = True, decide=None) -> int:
    """One worker through the real session service, answering correctly with probability `accuracy`,
    or as ``decide(assignment, trial, exposure_ms) -> judged fake`` says (a simulated evaluator)."""
    identity = identity_from_params(platform_params or {}, worker)
    assignment = enter(session, study, identity).assignment
    finish_instructions(assignment)
    record_browser_check(session, assignment, BrowserCheck(16.7, 1200, 900))
    settings = study_settings(study)
    n = 0
    while (trial := current_trial(session, assignment)) is not None:
        exposure = serve_trial(session, assignment, settings, trial)
        if decide is not None:
            judged_fake = bool(decide(assignment, trial, exposure))
        else:
            right = (trial.phase == "qualification" and qualify) or rng.random() < accuracy
            judged_fake = trial.is_fake if right else not trial.is_fake
        record_answer(
            session,
            assignment,
            Answer(
                trial_token=trial.image_token,
                judged_fake=judged_fake,
                idempotency_key=f"k{worker[-6:]}{n:08d}",
                measured_ms=exposure if exposure is not None else reaction_ms,
                mask_measured_ms=(33.3,) * 4 if exposure is not None else (),
                refresh_interval_ms=16.7,
                reaction_ms=reaction_ms,
            ),
        )
        n += 1
    session.commit()
    return assignment.id


