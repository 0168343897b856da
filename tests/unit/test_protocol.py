import pytest

from hype.protocol import SettingsError, StudySettings


def test_defaults_are_the_papers():
    s = StudySettings()
    assert (s.qualification.n_real, s.qualification.n_fake, s.qualification.pass_real) == (50, 50, 0.65)
    assert (s.infinity.n_real, s.infinity.n_fake) == (50, 50)
    t = s.time
    assert (t.n_blocks, t.trials_per_block, t.start_ms, t.min_ms, t.max_ms) == (3, 150, 500, 100, 1000)
    assert (t.step_down_ms, t.step_up_ms, t.n_masks, t.mask_ms, t.countdown_ms) == (10, 30, 4, 30, 500)
    assert s.evaluators_per_model == 30 and s.statistics.n_resamples == 10_000


def test_partial_override_keeps_other_defaults_and_round_trips():
    s = StudySettings.from_dict({"mode": "hype-time", "time": {"trials_per_block": 20}})
    assert s.time.trials_per_block == 20 and s.time.start_ms == 500
    assert StudySettings.from_dict(s.to_dict()) == s
    assert s.task_counts() == (30, 30)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"mode": "hype-zero"}, "mode must be one of"),
        ({"time": {"trial_per_block": 4}}, "unknown setting(s) in time: trial_per_block"),
        ({"colour": 1}, "unknown setting(s): colour"),
        ({"time": {"trials_per_block": 7}}, "even trials_per_block"),
        ({"time": {"start_ms": 50}}, "min_ms <= start_ms"),
        ({"qualification": {"pass_real": 1.5}}, "share in [0, 1]"),
        ({"seed": "abc"}, "seed must be an integer"),
        ({"qualification": {"enabled": "yes"}}, "must be true or false"),
        ({"time": "fast"}, "time must be a mapping"),
        ({"time": {"adaptive_rule": "entropy"}}, "time.adaptive_rule must be one of threshold, parameters"),
    ],
)
def test_bad_settings_name_the_problem(data, message):
    with pytest.raises(SettingsError) as err:
        StudySettings.from_dict(data)
    assert message in str(err.value)
