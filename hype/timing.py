"""Presentation-timing rules (docs/protocol.md §Presentation timing). Pure: no Flask, no DB.

The browser shows whole display frames, so the server and the client must agree on how a requested
exposure in ms becomes frames, and on when a measured presentation is too far off to trust. Both
rules live here so the trial runner's payload and the server's flags can never disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

# Refresh intervals outside this range are not a display a worker can do the task on (or are a
# broken measurement); they are refused at the browser check.
MIN_REFRESH_MS = 3.0  # ~333 Hz
MAX_REFRESH_MS = 50.0  # 20 Hz

FLAG_NO_TIMING = "no-timing"
FLAG_EXPOSURE_OFF = "exposure-off"
FLAG_MASK_MISSING = "mask-missing"
FLAG_MASK_OFF = "mask-off"
FLAG_FOCUS_LOST = "focus-lost"
FLAG_SHOWN_AGAIN = "shown-again"


def frames_for(ms: float, refresh_interval_ms: float) -> int:
    """Frames to show for ``ms``: round(ms / frame), at least 1 (docs/protocol.md)."""
    if refresh_interval_ms <= 0:
        raise ValueError(f"refresh interval must be > 0 ms, not {refresh_interval_ms}")
    # Half frames round up, as the browser's Math.round does (Python's round() would go to even).
    return max(1, math.floor(ms / refresh_interval_ms + 0.5))


def within_one_frame(measured_ms: float, requested_ms: float, refresh_interval_ms: float) -> bool:
    """|measured - requested| <= one frame interval: the protocol's definition of a faithful exposure."""
    return abs(measured_ms - requested_ms) <= refresh_interval_ms + 1e-6


@dataclass(frozen=True)
class Presentation:
    """What the client reported about one trial's presentation."""

    timed: bool
    requested_ms: float | None
    measured_ms: float | None
    mask_measured_ms: Sequence[float]
    refresh_interval_ms: float | None
    focus_lost: bool
    n_masks: int = 0
    mask_ms: float = 0.0
    presentations: int = 1  # deliveries of the image to the browser (hype.sessions.image_file_for_token)


def presentation_flags(p: Presentation) -> list[str]:
    """Reasons to distrust a trial; empty when it was shown as the protocol asks.

    Untimed trials (qualification, HYPE-∞) are only flagged for focus loss: their exposure is the
    worker's own choice. A timed trial without a usable measurement is flagged rather than trusted,
    because a client that cannot measure cannot prove the exposure it showed.
    """
    flags: list[str] = []
    if p.timed:
        frame = p.refresh_interval_ms
        if frame is None or not MIN_REFRESH_MS <= frame <= MAX_REFRESH_MS or p.measured_ms is None or p.requested_ms is None:
            flags.append(FLAG_NO_TIMING)
        else:
            if not within_one_frame(p.measured_ms, p.requested_ms, frame):
                flags.append(FLAG_EXPOSURE_OFF)
            if len(p.mask_measured_ms) < p.n_masks:
                flags.append(FLAG_MASK_MISSING)
            elif any(not within_one_frame(m, p.mask_ms, frame) for m in p.mask_measured_ms):
                flags.append(FLAG_MASK_OFF)
        if p.presentations > 1:
            # HYPE-time measures the exposure: an image the browser received twice may have been
            # seen for longer than the exposure the staircase set.
            flags.append(FLAG_SHOWN_AGAIN)
    if p.focus_lost:
        flags.append(FLAG_FOCUS_LOST)
    return flags
