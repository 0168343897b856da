"""Behind nginx (`hype serve --behind-nginx`): the app still decides whether an image may be shown,
then hands the file to nginx with X-Accel-Redirect instead of sending its bytes; the client's address
is nginx's X-Forwarded-For. The real nginx is exercised in tests/load/test_nginx_topology.py."""

from __future__ import annotations

import pytest
from flask import request
from sqlalchemy import select

from apihelpers import Worker
from hype.app import create_app
from hype.images import served_png
from hype.models import Trial
from hype.sessions import mask_images
from hype.proxy.nginx import ACCEL_PREFIX

pytestmark = pytest.mark.db


@pytest.fixture
def nginx_app(config, engine):
    return create_app(config.with_overrides(behind_nginx=True))


def _accel_file(config, response):
    """The served file an X-Accel-Redirect names, checked to be inside the served folder."""
    target = response.headers["X-Accel-Redirect"]
    assert target.startswith(ACCEL_PREFIX)
    path = (config.served_dir / target[len(ACCEL_PREFIX):]).resolve()
    assert path.is_relative_to(config.served_dir.resolve()) and path.is_file()
    return path


def _presentations(session, image_token: str) -> int:
    session.rollback()
    return session.scalar(select(Trial.presentations).where(Trial.image_token == image_token))


def test_images_go_out_as_x_accel_redirect_to_the_bytes_the_app_would_send(make_study, nginx_app, config, session, oracle):
    study = make_study("hype-time")
    w = Worker(nginx_app, study.slug, {"PROLIFIC_PID": "p-nginx", "STUDY_ID": "s", "SESSION_ID": "x"})
    w.enter()
    example = w.client.get(f"{w.api}/examples/real")
    assert example.status_code == 200 and example.data == b"" and example.mimetype == "image/png"
    w.instructions()
    w.check()
    state = w.trial()
    current, following = state["trial"]["id"], state["preload"][0].rsplit("/", 1)[1]
    for url in (state["trial"]["image_url"], *state["preload"]):
        response = w.client.get(url)
        assert response.status_code == 200 and response.data == b""
        assert response.headers["Cache-Control"] == "private, no-store"
        assert "Last-Modified" not in response.headers and "ETag" not in response.headers
        assert "Content-Security-Policy" not in response.headers  # answered before Flask (hype.web.image_gate)
        sha = _accel_file(config, response).stem
        assert _accel_file(config, response).read_bytes() == served_png(config.image_store, config.served_dir, sha)
    # each delivery counted once, as without nginx
    assert _presentations(session, current) == 1 and _presentations(session, following) == 1
    assert w.client.get(state["trial"]["image_url"]).status_code == 200
    assert _presentations(session, current) == 2
    # what may not be shown is refused, as without nginx, and not counted: no redirect to the file
    for refused_url, code in ((f"{w.api}/img/{'B' * 22}", "not-found"), (f"/api/w/{'A' * 43}/img/{current}", "unknown-session"),
                              (f"{w.api}/img/{current}x", "not-found")):
        refused = w.client.get(refused_url)
        assert refused.status_code == 404 and "X-Accel-Redirect" not in refused.headers
        assert refused.get_json()["error"] == code
    assert _presentations(session, current) == 2


def test_a_timed_image_is_not_delivered_again_once_answered(make_study, nginx_app, session, oracle):
    study = make_study("hype-time", settings={"qualification": {"enabled": False}, "time": {"n_blocks": 1, "trials_per_block": 6}})
    w = Worker(nginx_app, study.slug, {"PROLIFIC_PID": "p-nginx2", "STUDY_ID": "s", "SESSION_ID": "x"})
    w.start()
    trial = w.trial()["trial"]
    assert trial["timed"] and w.client.get(trial["image_url"]).status_code == 200
    assert w.answer(trial, oracle(trial["id"])).status_code == 201
    again = w.client.get(trial["image_url"])
    assert again.status_code == 404 and "X-Accel-Redirect" not in again.headers
    assert _presentations(session, trial["id"]) == 1


def test_client_address_comes_from_one_proxy_hop(nginx_app, app):
    for flask_app in (nginx_app, app):
        flask_app.add_url_rule("/_probe/addr", "probe_addr", lambda: request.remote_addr or "")
    headers = {"X-Forwarded-For": "198.51.100.7"}
    environ = {"REMOTE_ADDR": "127.0.0.1"}
    assert nginx_app.test_client().get("/_probe/addr", headers=headers, environ_base=environ).text == "198.51.100.7"
    # without nginx in front the header is anyone's to forge, and is ignored
    assert app.test_client().get("/_probe/addr", headers=headers, environ_base=environ).text == "127.0.0.1"


def test_masks_go_out_as_x_accel_redirect_before_flask_in_their_one_order(make_study, nginx_app, config, session, oracle):
    study = make_study("hype-time", settings={"qualification": {"enabled": False}, "time": {"n_blocks": 1, "trials_per_block": 6}})
    w = Worker(nginx_app, study.slug, {"PROLIFIC_PID": "p-nginx-mask", "STUDY_ID": "s", "SESSION_ID": "x"})
    w.enter()
    early = w.client.get(f"{w.api}/masks/0")  # before the trials: Flask's route decides, as without nginx
    assert early.status_code == 200 and "Content-Security-Policy" in early.headers
    w.instructions()
    w.check()
    trial = w.trial()["trial"]
    assert trial["timed"] and trial["masks"]
    masks = mask_images(session, study.id)
    for url in trial["masks"]:
        response = w.client.get(url)
        assert response.status_code == 200 and response.data == b""
        assert response.headers["Cache-Control"] == "private, no-store"
        assert "Content-Security-Policy" not in response.headers  # answered before Flask (hype.web.image_gate)
        index = int(url.rsplit("/", 1)[1])
        assert _accel_file(config, response).stem == masks[index].file_sha256
    # what Flask refuses is still refused, by Flask: no such mask, no such session
    beyond = w.client.get(f"{w.api}/masks/{len(masks)}")
    assert beyond.status_code == 404 and "X-Accel-Redirect" not in beyond.headers
    stranger = w.client.get(f"/api/w/{'A' * 43}/masks/0")
    assert stranger.status_code == 404 and stranger.get_json()["error"] == "unknown-session"
    assert "X-Accel-Redirect" not in stranger.headers
