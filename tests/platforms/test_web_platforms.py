"""Dashboard: pay fields and hourly figures, platform actions, the consent page's time and pay,
and links under HYPE_PUBLIC_URL / trusted proxy headers."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from hype import effort
from hype.accounts import create_researcher
from hype.app import create_app
from hype.models import PlatformSubmission, Study
from hype.studies import study_settings

from prolific_standin import TOKEN

pytestmark = pytest.mark.db
PASSWORD = "correct horse battery"


def _token(client, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def _signed_in(app, session, study=None):
    researcher = create_researcher(session, "r@example.org", PASSWORD)
    if study is not None:
        study.owner_id = researcher.id
    session.commit()
    client = app.test_client()
    if app.config.get("SESSION_COOKIE_SECURE"):  # behind https the session cookie is Secure
        client.environ_base["wsgi.url_scheme"] = "https"
        client.environ_base["HTTP_REFERER"] = "https://localhost/"  # Flask-WTF checks the referrer over https
    client.post("/login", data={"email": "r@example.org", "password": PASSWORD, "csrf_token": _token(client, "/login")})
    return client


def test_new_study_form_takes_pay_and_shows_the_hourly_rate(app, session):
    client = _signed_in(app, session)
    page = client.get("/studies/new").get_data(as_text=True)
    assert 'name="pay_base_usd"' in page and 'name="pay_bonus_per_correct_usd"' in page
    # paper defaults: $1 for 10 minutes = $6.00/hour, under Prolific's $8.00 minimum
    assert "About <strong>10 min</strong>" in page and "$6.00/hour" in page and 'id="pay-warning"' in page

    figures = client.get("/studies/new/pay.json?mode=hype-infinity&qualification_enabled=on&pay_base_usd=1.50").get_json()
    assert figures["minutes"] == 10 and figures["base_hourly_usd"] == 9.0 and figures["warning"] is None
    bad = client.get("/studies/new/pay.json?mode=hype-time&time_trials_per_block=7")
    assert bad.status_code == 400 and "even" in bad.get_json()["error"]

    response = client.post("/studies/new", data={"csrf_token": _token(client, "/studies/new"), "name": "paid", "mode": "hype-infinity",
                                                 "qualification_enabled": "on", "pay_base_usd": "2.00", "pay_bonus_per_correct_usd": "0.03"})
    assert response.status_code == 302
    stored = study_settings(session.scalar(select(Study).where(Study.name == "paid"))).pay
    assert (stored.base_usd, stored.bonus_per_correct_usd) == (2.0, 0.03)


def test_consent_page_states_time_and_pay_from_the_same_figures(client, study):
    page = client.get(f"/s/{study.slug}").get_data(as_text=True)
    pay = effort.expected_pay(study_settings(study))  # 18 untimed images: 54 s -> "about 1 minute", $60.00/hour
    assert f"It takes about {pay.rounded_minutes} minute." in page
    assert "$1.00, plus a bonus of $0.02 per correct answer" in page and "up to $0.20" in page
    assert f"${pay.base_hourly_usd:.2f} an hour before the bonus" in page and "$60.00" in page


def test_dashboard_lists_syncs_and_pays_on_prolific(config, engine, session, study, crowd, prolific_api, monkeypatch):
    from hype.platforms.prolific import ProlificClient

    app = create_app(config.with_overrides(public_url="https://hype.example.org"))
    app.extensions["hype.platform_clients"] = lambda platform, production=False: ProlificClient(token=TOKEN, base_url=prolific_api.url, sleep=lambda s: None)
    client = _signed_in(app, session, study)
    crowd("PA", "prolific")
    crowd("PB", "prolific")
    csrf = _token(client, f"/studies/{study.id}")
    page = client.post(f"/studies/{study.id}/platforms/prolific/create", data={"csrf_token": csrf}, follow_redirects=True).get_data(as_text=True)
    assert "Prolific draft study study0000 created: 4 places" in page
    assert prolific_api.studies["study0000"]["external_study_url"].startswith(f"https://hype.example.org/s/{study.slug}?PROLIFIC_PID=")
    client.post(f"/studies/{study.id}/platforms/prolific/publish", data={"csrf_token": csrf})
    assert prolific_api.studies["study0000"]["status"] == "ACTIVE"
    prolific_api.add_submission("PA", study_code=study.completion_code)
    prolific_api.add_submission("PB", study_code="MADEUP")
    page = client.post(f"/studies/{study.id}/platforms/prolific/sync", data={"csrf_token": csrf}, follow_redirects=True).get_data(as_text=True)
    assert "Prolific sync: 1 approved, 1 flagged." in page
    page = client.post(f"/studies/{study.id}/platforms/prolific/pay", data={"csrf_token": csrf}, follow_redirects=True).get_data(as_text=True)
    assert "Prolific bonuses: 1 paid." in page and prolific_api.paid == [("PA", "0.20")]
    assert 'id="pay-measured"' in page  # workers finished: the measured median is shown
    assert client.post(f"/studies/{study.id}/platforms/prolific/refund", data={"csrf_token": csrf}).status_code == 404
    assert {r.worker_id for r in session.scalars(select(PlatformSubmission))} == {"PA", "PB"}


def test_listing_needs_a_public_url(app, session, study, prolific_api):
    client = _signed_in(app, session, study)
    page = client.post(f"/studies/{study.id}/platforms/prolific/create", data={"csrf_token": _token(client, f"/studies/{study.id}")},
                       follow_redirects=True).get_data(as_text=True)
    assert "set HYPE_PUBLIC_URL" in page and prolific_api.calls == []


def test_links_use_the_public_url_and_only_trusted_proxy_headers(config, engine, session, study):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "crowd.example.org"}
    public = create_app(config.with_overrides(public_url="https://hype.example.org/lab"))
    page = _signed_in(public, session, study).get(f"/studies/{study.id}").get_data(as_text=True)
    assert f"https://hype.example.org/lab/s/{study.slug}</code>" in page
    assert f"&lt;ExternalURL&gt;https://hype.example.org/lab/s/{study.slug}&lt;/ExternalURL&gt;" in page

    session.rollback()
    proxied = create_app(config.with_overrides(trusted_proxies=1))
    client = proxied.test_client()
    client.post("/login", data={"email": "r@example.org", "password": PASSWORD, "csrf_token": _token(client, "/login")})
    page = client.get(f"/studies/{study.id}", headers=forwarded).get_data(as_text=True)
    assert f"https://crowd.example.org/s/{study.slug}</code>" in page
    # served under a path: the proxy says so, and redirects keep it
    anonymous = proxied.test_client().get("/studies", headers={**forwarded, "X-Forwarded-Prefix": "/lab"})
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/lab/login")

    direct = create_app(config).test_client()  # no trusted proxy: a client's own X-Forwarded-* is ignored
    direct.post("/login", data={"email": "r@example.org", "password": PASSWORD, "csrf_token": _token(direct, "/login")})
    page = direct.get(f"/studies/{study.id}", headers=forwarded).get_data(as_text=True)
    assert "crowd.example.org" not in page and f"http://localhost/s/{study.slug}</code>" in page


def test_edit_form_figures_start_from_the_studys_own_settings(app, session, study, crowd):
    crowd("anon-000001", "prolific")  # started: only the target and the pay may change
    client = _signed_in(app, session, study)
    page = client.get(f"/studies/{study.id}/settings").get_data(as_text=True)
    assert 'id="pay-estimate"' in page and "About <strong>1 min</strong>" in page and "$60.00/hour" in page
    # no qualification checkbox in the query (it is locked, so the browser leaves it out): still the study's 18 images
    figures = client.get(f"/studies/new/pay.json?study={study.id}&pay_base_usd=3&infinity_n_real=500").get_json()
    assert figures["minutes"] == 1 and figures["base_hourly_usd"] == 180.0
