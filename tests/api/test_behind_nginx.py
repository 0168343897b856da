"""Behind nginx (`hype serve --behind-nginx`): the app still decides whether an image may be shown,
then hands the file to nginx with X-Accel-Redirect instead of sending its bytes; the client's address
is nginx's X-Forwarded-For. The real nginx is exercised in tests/load/test_nginx_topology.py."""

from __future__ import annotations

import pytest
from flask import request

from apihelpers import Worker
from hype.app import create_app
from hype.images import served_png
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


def test_images_go_out_as_x_accel_redirect_to_the_bytes_the_app_would_send(make_study, nginx_app, config):
    study = make_study("hype-time")
    w = Worker(nginx_app, study.slug, {"PROLIFIC_PID": "p-nginx", "STUDY_ID": "s", "SESSION_ID": "x"})
    w.enter()
    example = w.client.get(f"{w.api}/examples/real")
    assert example.status_code == 200 and example.data == b"" and example.mimetype == "image/png"
    direct = create_app(config).test_client()  # the same database, serving bytes itself
    w.instructions()
    w.check()
    state = w.trial()
    for url in (state["trial"]["image_url"], *state["preload"]):
        response = w.client.get(url)
        assert response.status_code == 200 and response.data == b""
        assert response.headers["Cache-Control"] == "private, no-store"
        assert "Last-Modified" not in response.headers and "ETag" not in response.headers
        sha = _accel_file(config, response).stem
        assert _accel_file(config, response).read_bytes() == served_png(config.image_store, config.served_dir, sha)
    # what may not be shown is refused by the app, as without nginx: no redirect to the file
    far = f"/api/img/{'B' * 22}"
    refused = w.client.get(far)
    assert refused.status_code == 404 and "X-Accel-Redirect" not in refused.headers
    assert direct.get(far).status_code == 404


def test_client_address_comes_from_one_proxy_hop(nginx_app, app):
    for flask_app in (nginx_app, app):
        flask_app.add_url_rule("/_probe/addr", "probe_addr", lambda: request.remote_addr or "")
    headers = {"X-Forwarded-For": "198.51.100.7"}
    environ = {"REMOTE_ADDR": "127.0.0.1"}
    assert nginx_app.test_client().get("/_probe/addr", headers=headers, environ_base=environ).text == "198.51.100.7"
    # without nginx in front the header is anyone's to forge, and is ignored
    assert app.test_client().get("/_probe/addr", headers=headers, environ_base=environ).text == "127.0.0.1"
