"""Crowd platforms: list a study on Prolific or MTurk, sync what workers submitted, approve, pay.

`prolific` and `mturk` are the API clients; `codes` issues and checks per-session completion codes;
`review` decides, from hype's own records, what each submission deserves; `payouts` keeps the ledger
that makes paying idempotent; `service` runs the create / publish / sync / pay steps that the CLI and
the dashboard both call.
"""

from __future__ import annotations


class PlatformError(RuntimeError):
    """A platform step failed in a way a researcher can act on; the message says how."""
