"""hype.comparison: studies side by side, and the protocol differences that make that questionable."""

from __future__ import annotations

import pytest

from hype.comparison import ComparisonError, StudyResult, compare, protocol_differences
from hype.protocol import StudySettings


def settings(**parts) -> StudySettings:
    return StudySettings.from_dict({"mode": "hype-time", **parts})


def test_same_protocol_has_no_difference_even_with_other_pay_target_and_seed():
    a = settings(seed=1, evaluators_per_model=30, pay={"base_usd": 1.0}, statistics={"n_resamples": 1000})
    b = settings(seed=2, evaluators_per_model=50, pay={"base_usd": 2.5}, statistics={"n_resamples": 10000})
    assert protocol_differences([("A", a), ("B", b)]) == []


def test_every_measurement_difference_is_named_with_each_studys_value():
    a = settings(time={"step_up_ms": 30.0, "n_masks": 4}, qualification={"pass_real": 0.65})
    b = settings(time={"step_up_ms": 20.0, "n_masks": 4}, qualification={"pass_real": 0.7})
    assert protocol_differences([("ckpt-1", a), ("ckpt-2", b)]) == [
        "qualification.pass_real: 0.65 in ckpt-1, 0.7 in ckpt-2",
        "time.step_up_ms: 30 in ckpt-1, 20 in ckpt-2",
    ]


def test_settings_a_mode_never_uses_are_not_compared():
    a = StudySettings.from_dict({"mode": "hype-infinity", "time": {"n_blocks": 1}})
    b = StudySettings.from_dict({"mode": "hype-infinity", "time": {"n_blocks": 3}})
    assert protocol_differences([("A", a), ("B", b)]) == []


def test_modes_cannot_share_a_scale():
    inf = StudyResult("A", StudySettings.from_dict({"mode": "hype-infinity"}), (("m", 0.3, 0.2, 0.4, 10),))
    time = StudyResult("B", settings(), (("m", 300.0, 250.0, 350.0, 10),))
    with pytest.raises(ComparisonError, match="one mode"):
        compare([inf, time])


def test_rows_keep_the_studies_order_and_their_own_intervals():
    a = StudyResult("A", settings(), (("gan", 300.0, 250.0, 350.0, 30), ("vae", 150.0, None, None, 2)), "percentile bootstrap, 95%")
    b = StudyResult("B", settings(time={"step_down_ms": 5.0}), (("gan", 320.0, 280.0, 360.0, 30),), "studentized bootstrap, 95%")
    c = compare([a, b], unscored=["C: nothing yet"])
    assert [(r.study, r.model, r.ci_low) for r in c.rows] == [("A", "gan", 250.0), ("A", "vae", None), ("B", "gan", 280.0)]
    assert c.protocols_differ and c.differences[0] == "time.step_down_ms: 10 in A, 5 in B"
    assert c.differences[-1].startswith("confidence intervals: percentile bootstrap, 95% in A")
    assert c.unscored == ("C: nothing yet",) and c.to_dict()["rows"][1]["ci_low"] is None
