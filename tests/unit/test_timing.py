"""Frame rules and presentation flags (hype/timing.py, docs/protocol.md §Presentation timing).

Every expected value is worked out by hand in the comment beside it, never computed by the code under
test: at 60 Hz a frame is 1000/60 = 16.667 ms.
"""

from __future__ import annotations

import pytest

from hype.timing import (
    FLAG_EXPOSURE_OFF,
    FLAG_FOCUS_LOST,
    FLAG_MASK_MISSING,
    FLAG_MASK_OFF,
    FLAG_NO_TIMING,
    MAX_REFRESH_MS,
    MIN_REFRESH_MS,
    Presentation,
    frames_for,
    presentation_flags,
    within_one_frame,
)

HZ60 = 1000 / 60  # 16.667 ms
HZ144 = 1000 / 144  # 6.944 ms


# -- frames_for -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ms", "refresh", "frames"),
    [
        (100, HZ60, 6),  # 100 / 16.667 = 6.0
        (110, HZ60, 7),  # 6.6 -> 7
        (105, HZ60, 6),  # 6.3 -> 6
        (30, HZ60, 2),  # a 30 ms mask: 1.8 -> 2 frames = 33.3 ms
        (500, HZ60, 30),  # the staircase start: 30.0
        (490, HZ60, 29),  # 29.4 -> 29 (483.3 ms shown)
        (1000, HZ60, 60),
        (30, HZ144, 4),  # 4.32 -> 4
        (100, HZ144, 14),  # 14.4 -> 14
        (100, 10.0, 10),  # 100 Hz
        (30, 10.0, 3),
        (30, 50.0, 1),  # 20 Hz: 0.6 -> 1
        (5, HZ60, 1),  # 0.3 rounds to 0, but a presentation is at least one frame
        (0, HZ60, 1),
    ],
)
def test_frames_for_hand_computed(ms, refresh, frames):
    assert frames_for(ms, refresh) == frames


@pytest.mark.parametrize("refresh", [0.0, -16.7])
def test_frames_for_refuses_a_non_positive_refresh_interval(refresh):
    with pytest.raises(ValueError, match="refresh interval"):
        frames_for(100, refresh)


@pytest.mark.parametrize(
    ("ms", "refresh", "frames"),
    [
        (490, 20.0, 25),  # 50 Hz: 24.5 frames -> the browser's Math.round gives 25
        (50, 20.0, 3),  # 2.5 -> 3
        (500, 40.0, 13),  # 25 Hz: 12.5 -> 13
    ],
)
def test_frames_for_rounds_half_frames_like_the_browser(ms, refresh, frames):
    assert frames_for(ms, refresh) == frames


# -- within_one_frame -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("measured", "requested", "refresh", "ok"),
    [
        (100.0, 100.0, HZ60, True),
        (116.6, 100.0, HZ60, True),  # 16.6 ms off: inside one frame
        (100 + HZ60, 100.0, HZ60, True),  # exactly one frame off is still "within"
        (100 - HZ60, 100.0, HZ60, True),
        (117.0, 100.0, HZ60, False),  # 17 ms > 16.667 ms
        (83.0, 100.0, HZ60, False),  # 17 ms short
        (133.3, 100.0, HZ60, False),  # two frames long
        (33.33, 30.0, HZ60, True),  # a 2-frame mask for a 30 ms request
        (50.0, 30.0, HZ60, False),  # 3 frames: 20 ms off
        (106.9, 100.0, HZ144, True),  # 6.9 < 6.944
        (107.0, 100.0, HZ144, False),  # 7.0 > 6.944
    ],
)
def test_within_one_frame_hand_computed(measured, requested, refresh, ok):
    assert within_one_frame(measured, requested, refresh) is ok


def test_within_one_frame_is_symmetric():
    assert within_one_frame(90.0, 100.0, 10.0) and within_one_frame(110.0, 100.0, 10.0)
    assert not within_one_frame(89.0, 100.0, 10.0) and not within_one_frame(111.0, 100.0, 10.0)


# -- presentation_flags ---------------------------------------------------------------------------------


def timed(**changes) -> Presentation:
    """A faithful 60 Hz HYPE-time trial: 500 ms requested = 30 frames, four 30 ms masks = 2 frames each."""
    base = dict(
        timed=True,
        requested_ms=500.0,
        measured_ms=500.0,
        mask_measured_ms=(33.3, 33.4, 33.3, 33.4),
        refresh_interval_ms=HZ60,
        focus_lost=False,
        n_masks=4,
        mask_ms=30.0,
    )
    base.update(changes)
    return Presentation(**base)


def untimed(**changes) -> Presentation:
    base = dict(
        timed=False,
        requested_ms=None,
        measured_ms=None,
        mask_measured_ms=(),
        refresh_interval_ms=HZ60,
        focus_lost=False,
    )
    base.update(changes)
    return Presentation(**base)


def test_a_faithful_timed_trial_is_not_flagged():
    assert presentation_flags(timed()) == []
    # 490 ms is 29.4 frames: the browser shows 29 = 483.3 ms, 6.7 ms short, within a frame
    assert presentation_flags(timed(requested_ms=490.0, measured_ms=29 * HZ60)) == []


@pytest.mark.parametrize("measured", [520.0, 480.0, 500.0 + 2 * HZ60, 400.0])
def test_measured_exposure_off_by_more_than_a_frame_is_flagged(measured):
    # 20 ms, 20 ms, 33.3 ms and 100 ms off: each more than 16.667 ms
    assert presentation_flags(timed(measured_ms=measured)) == [FLAG_EXPOSURE_OFF]


def test_measured_exposure_exactly_one_frame_off_is_not_flagged():
    assert presentation_flags(timed(measured_ms=500.0 + HZ60)) == []


def test_missing_measurement_on_a_timed_trial_is_flagged():
    assert presentation_flags(timed(measured_ms=None)) == [FLAG_NO_TIMING]


@pytest.mark.parametrize("refresh", [None, MAX_REFRESH_MS + 1, MIN_REFRESH_MS - 1, 0.0])
def test_a_timed_trial_without_a_usable_refresh_interval_is_flagged(refresh):
    assert presentation_flags(timed(refresh_interval_ms=refresh)) == [FLAG_NO_TIMING]


def test_a_timed_trial_never_served_has_no_requested_exposure_and_is_flagged():
    assert presentation_flags(timed(requested_ms=None)) == [FLAG_NO_TIMING]


def test_missing_mask_measurements_are_flagged():
    assert presentation_flags(timed(mask_measured_ms=(33.3, 33.3, 33.3))) == [FLAG_MASK_MISSING]
    assert presentation_flags(timed(mask_measured_ms=())) == [FLAG_MASK_MISSING]


def test_a_mask_off_by_more_than_a_frame_is_flagged():
    # 50 ms shown for a 30 ms mask: 20 ms > 16.667 ms
    assert presentation_flags(timed(mask_measured_ms=(33.3, 50.0, 33.3, 33.3))) == [FLAG_MASK_OFF]


def test_focus_loss_is_flagged_on_timed_trials_too_and_flags_accumulate():
    assert presentation_flags(timed(focus_lost=True)) == [FLAG_FOCUS_LOST]
    assert presentation_flags(timed(measured_ms=600.0, mask_measured_ms=(33.3,) * 3, focus_lost=True)) == [
        FLAG_EXPOSURE_OFF,
        FLAG_MASK_MISSING,
        FLAG_FOCUS_LOST,
    ]


def test_focus_loss_is_flagged_on_an_untimed_trial():
    assert presentation_flags(untimed(focus_lost=True)) == [FLAG_FOCUS_LOST]


@pytest.mark.parametrize("measured", [None, 3.0, 12_345.0])
def test_an_untimed_trial_is_not_flagged_for_its_exposure(measured):
    # HYPE-infinity and the qualification: the image stays until the answer; its duration is the worker's
    assert presentation_flags(untimed(measured_ms=measured, refresh_interval_ms=None)) == []
