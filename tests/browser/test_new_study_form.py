"""The new-study form shows only the task settings of the chosen protocol (issue 16): HYPE-∞ hides the
HYPE-time section and the other way round, with JavaScript; without it both show, each saying which
studies use it, and the server reads only the chosen mode's section, validated as study files are."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from browser_harness import new_context

from hype.accounts import create_researcher
from hype.models import Study
from hype.studies import study_settings

pytestmark = pytest.mark.browser

EMAIL, PASSWORD = "form@example.org", "correct horse battery"


def _sign_in(page, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    page.goto(f"{base}/studies/new")


def _create(page) -> None:
    with page.expect_navigation():
        page.click("form.settings-form button[type=submit]")


def _study(session, name: str) -> Study:
    session.rollback()
    study = session.scalar(select(Study).where(Study.name == name))
    assert study is not None, name
    return study


def test_new_study_form_shows_only_the_chosen_modes_task_fields(browser, live_server, guard, session) -> None:
    create_researcher(session, EMAIL, PASSWORD)
    session.commit()
    context = new_context(browser, guard, viewport=(1200, 900))
    try:
        page = context.new_page()
        _sign_in(page, live_server.url)
        infinity, time = page.locator("#section-infinity"), page.locator("#section-time")
        assert page.is_checked("input[name=mode][value=hype-infinity]")
        assert infinity.is_visible() and not time.is_visible()
        page.check("input[name=mode][value=hype-time]")
        assert time.is_visible() and not infinity.is_visible()
        page.fill("input[name=name]", "timed")
        page.fill("input[name=time_n_blocks]", "2")
        page.fill("input[name=time_start_ms]", "300")
        # the pay figures follow the fields that apply: 2 blocks of 150 trials + 100 qualification images
        page.locator("#pay-figures", has_text="About").wait_for()
        _create(page)
        assert re.search(r"/studies/\d+$", urlsplit(page.url).path), page.inner_text("body")[:300]
        s = study_settings(_study(session, "timed"))
        assert (s.mode, s.time.n_blocks, s.time.start_ms) == ("hype-time", 2, 300)

        # Back to HYPE-∞ after typing into the HYPE-time section: those values are hidden, not sent, not stored.
        page.goto(f"{live_server.url}/studies/new")
        page.check("input[name=mode][value=hype-time]")
        page.fill("input[name=time_n_blocks]", "-4")  # invalid, and no longer relevant once HYPE-∞ is chosen
        page.check("input[name=mode][value=hype-infinity]")
        assert not time.is_visible()
        page.fill("input[name=name]", "unlimited")
        page.fill("input[name=infinity_n_real]", "40")
        _create(page)
        assert page.locator("#form-error").count() == 0, page.inner_text("#form-error")
        s = study_settings(_study(session, "unlimited"))
        assert (s.mode, s.infinity.n_real, s.time.n_blocks) == ("hype-infinity", 40, 3)

        # The settings page of a study shows only its own mode's task section (the mode is fixed).
        page.goto(f"{live_server.url}/studies/{_study(session, 'unlimited').id}/settings")
        assert page.locator("#section-infinity").is_visible() and page.locator("#section-time").count() == 0
    finally:
        context.close()


def test_new_study_form_works_without_javascript(browser, live_server, guard, session) -> None:
    create_researcher(session, EMAIL, PASSWORD)
    session.commit()
    context = new_context(browser, guard, viewport=(1200, 900), javascript=False)
    try:
        page = context.new_page()
        _sign_in(page, live_server.url)
        infinity, time = page.locator("#section-infinity"), page.locator("#section-time")
        assert infinity.is_visible() and time.is_visible()
        assert "used only by HYPE-time studies" in time.locator("legend").inner_text()
        assert "used only by HYPE-∞ studies" in infinity.locator("legend").inner_text()
        page.fill("input[name=name]", "no script")
        page.fill("input[name=time_n_blocks]", "-4")  # the HYPE-time section: not read for a HYPE-∞ study
        page.fill("input[name=infinity_n_real]", "-1")  # the HYPE-∞ section: validated as a study file is
        _create(page)
        assert "infinity.n_real must be >= 0" in page.inner_text("#form-error")
        page.fill("input[name=infinity_n_real]", "40")
        _create(page)
        assert page.locator("#form-error").count() == 0, page.inner_text("#form-error")
        s = study_settings(_study(session, "no script"))
        assert (s.mode, s.infinity.n_real, s.time.n_blocks) == ("hype-infinity", 40, 3)
    finally:
        context.close()
