"""The recruitment rules without a database: which group a session counts in, which model is next."""

from __future__ import annotations

import pytest

from hype.protocol import SettingsError, StudySettings
from hype.recruitment import ModelSlots, choose_model, classify, is_complete, open_models


@pytest.mark.parametrize(
    ("stage", "idle", "excluded", "group"),
    [
        ("completed", False, False, "valid"),
        ("completed", True, False, "valid"),  # finished sessions are never idle
        ("completed", False, True, "excluded"),
        ("task", False, False, "in_progress"),
        ("instructions", False, True, "excluded"),
        ("qualification", True, False, "abandoned"),
        ("task", True, True, "abandoned"),
        ("abandoned", False, False, "abandoned"),
        ("failed", False, True, "failed"),
    ],
)
def test_each_session_counts_in_exactly_one_group(stage, idle, excluded, group):
    assert classify(stage, idle, excluded) == group


def test_a_model_is_full_on_valid_evaluators_only():
    slots = ModelSlots(1, "a", target=3, valid=2, in_progress=4, excluded=5, abandoned=6, failed=7)
    assert not slots.full and slots.missing == 1 and slots.open_slots == 0 and slots.started == 24
    assert ModelSlots(1, "a", target=3, valid=3).full


def test_the_next_worker_goes_to_the_open_model_with_fewest_counting():
    a = ModelSlots(1, "a", target=3, valid=1, in_progress=1, abandoned=9)
    b = ModelSlots(2, "b", target=3, valid=0, in_progress=1, excluded=4)
    full = ModelSlots(3, "c", target=3, valid=3)
    assert choose_model([a, b, full]) == b
    assert {choose_model([a, ModelSlots(2, "b", 3, valid=2)]).model_id for _ in range(50)} == {1, 2}
    assert choose_model([full]) is None and open_models([a, full]) == [a]
    assert is_complete([full]) and not is_complete([a, full]) and not is_complete([])


def test_recruitment_settings_default_and_validate():
    settings = StudySettings()
    assert settings.recruitment.idle_timeout_minutes == 30 and not settings.recruitment.close_when_complete
    with pytest.raises(SettingsError, match="idle_timeout_minutes"):
        StudySettings.from_dict({"recruitment": {"idle_timeout_minutes": 0.5}})
