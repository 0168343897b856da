"""The settings form shows numbers as a person types them: "500", not "500.0" (whole-valued float
settings such as time.start_ms used to show their Python repr), and reads them back unchanged."""

from __future__ import annotations

from hype.protocol import StudySettings
from hype.settings_form import current_values, form_fields, settings_from_form


def test_whole_valued_float_settings_show_without_a_trailing_point_zero():
    values = current_values(StudySettings())
    assert values["time_start_ms"] == 500 and str(values["time_start_ms"]) == "500"
    assert str(values["pay_base_usd"]) == "1"
    assert str(values["qualification_pass_real"]) == "0.65"  # a real fraction is left alone
    placeholders = {f.name: str(f.default) for f in form_fields()}
    assert placeholders["time_step_up_ms"] == "30" and placeholders["catch_min_accuracy"] == "0.8"


def test_the_displayed_values_read_back_to_the_same_settings():
    defaults = StudySettings()
    shown = {name: str(value) for name, value in current_values(defaults).items() if not isinstance(value, bool)}
    shown.update({name: "on" for name, value in current_values(defaults).items() if value is True})
    assert StudySettings.from_dict(settings_from_form(shown)).to_dict() == defaults.to_dict()
