"""Session time and hourly pay (hype.effort) on cases computed by hand."""

from __future__ import annotations

import pytest

from hype import effort
from hype.protocol import StudySettings


def test_paper_defaults_hype_infinity():
    # 100 qualification + 100 task images, untimed, 3 s each: 600 s = 10 min
    pay = effort.expected_pay(StudySettings(mode="hype-infinity"))
    assert pay.minutes == pytest.approx(10.0) and pay.rounded_minutes == 10
    assert pay.base_hourly_usd == pytest.approx(6.00)  # $1.00 per 10 min
    assert pay.floor_bonus_usd == pytest.approx(1.00)  # 50 of 100 right x $0.02
    assert pay.floor_hourly_usd == pytest.approx(12.00)
    assert pay.max_bonus_usd == pytest.approx(2.00) and pay.max_hourly_usd == pytest.approx(18.00)
    assert pay.below_minimum(8.00)
    # $8.00/hour for 10 minutes is $1.333..., rounded up to the cent
    assert pay.warning(8.00) == ("Base pay $1.00 for about 10 minutes is $6.00 an hour, below the minimum of $8.00 an hour; "
                                 "raise the base pay to at least $1.34.")


def test_paper_defaults_hype_time():
    # 100 qualification images x 3 s + 3 x 150 timed trials x 4.5 s = 300 + 2025 = 2325 s = 38.75 min
    pay = effort.expected_pay(StudySettings(mode="hype-time"))
    assert pay.minutes == pytest.approx(38.75) and pay.rounded_minutes == 39
    assert pay.base_hourly_usd == pytest.approx(60 / 39)  # $1.54 per stated hour: the "about $1.5 an hour"
    assert pay.floor_bonus_usd == pytest.approx(4.50)  # 225 of 450 right x $0.02
    assert pay.floor_hourly_usd == pytest.approx(5.50 * 60 / 39)
    assert "raise the base pay to at least $5.20" in pay.warning(8.00)  # 8 x 39 / 60 = 5.20


def test_without_qualification_and_with_higher_pay():
    settings = StudySettings.from_dict({"mode": "hype-infinity", "qualification": {"enabled": False},
                                        "pay": {"base_usd": 2.5, "bonus_per_correct_usd": 0.05}})
    pay = effort.expected_pay(settings)
    assert pay.minutes == pytest.approx(5.0)  # 100 images x 3 s
    assert pay.base_hourly_usd == pytest.approx(30.0)
    assert pay.floor_bonus_usd == pytest.approx(2.50) and pay.max_bonus_usd == pytest.approx(5.00)
    assert pay.warning(8.00) is None


def test_measured_median_replaces_the_estimate_once_enough_finished():
    settings = StudySettings.from_dict({"pay": {"base_usd": 2.0}})
    measured = effort.measured_pay(settings, [600, 1200, 900])  # median 900 s = 15 min
    assert effort.measured_pay(settings, [20.0]).rounded_minutes == 1  # never "0 minutes"
    assert measured.source == "measured" and measured.n_sessions == 3
    assert measured.minutes == pytest.approx(15.0) and measured.base_hourly_usd == pytest.approx(8.00)
    assert not measured.below_minimum(8.00)
    assert effort.measured_pay(settings, []) is None
    assert effort.stated_pay(settings, [600, 1200, 900, 900]).source == "estimate"  # 4 < 5 sessions
    stated = effort.stated_pay(settings, [600, 1200, 900, 900, 1500])
    assert stated.source == "measured" and stated.minutes == pytest.approx(15.0)


def test_bonus_rounds_to_the_cent():
    assert effort.bonus_usd(37, 0.02) == pytest.approx(0.74) and effort.cents(effort.bonus_usd(37, 0.02)) == 74
    assert effort.cents(effort.bonus_usd(3, 0.07)) == 21
    assert effort.cents(effort.bonus_usd(0, 0.02)) == 0
