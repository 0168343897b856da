"""Researcher-side weaknesses found by probing the platform as a hostile user (issue 14): server
folders, paths in errors, decompression bombs, sign-in (enumeration, brute force, logout, reset)
and errors written for a person."""

from __future__ import annotations

import html
import io
import os
import re
import shutil
import socket
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from hype import accounts
from hype.accounts import create_researcher
from hype.app import create_app
from hype.models import Image, Researcher, Study
from hype.studies import create_study

from pool_factory import make_pool_images, png_header_only

PASSWORD = "correct horse battery"


def csrf_token(client, path: str = "/login") -> str:
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client, email: str, password: str = PASSWORD):
    return client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_token(client)})


@pytest.fixture
def alice(session):
    researcher = create_researcher(session, "alice@example.org", PASSWORD)
    session.commit()
    return researcher


@pytest.fixture
def draft(session, alice):
    study = create_study(session, name="draft", mode="hype-infinity", seed=1, owner_id=alice.id)
    session.commit()
    return study


def _write_pngs(folder: Path, n: int, seed: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in make_pool_images(n, np.random.default_rng(seed), 16, smooth=False):
        (folder / f.name).write_bytes(f.data)
    return folder


def _add_folder(client, study, folder: str) -> str:
    token = csrf_token(client, f"/studies/{study.id}")
    page = client.post(f"/studies/{study.id}/images", data={"csrf_token": token, "pool": "real", "folder": folder},
                       follow_redirects=True)
    assert page.status_code == 200
    return page.get_data(as_text=True)


def _image_count(session, study) -> int:
    session.rollback()
    return len(session.scalars(select(Image.id).where(Image.study_id == study.id)).all())


# -- 4. server folders -------------------------------------------------------------------------------------


def test_server_folders_are_off_unless_the_operator_configures_roots(app, draft, session, config, tmp_path):
    client = app.test_client()
    sign_in(client, "alice@example.org")
    assert 'name="folder"' not in client.get(f"/studies/{draft.id}").get_data(as_text=True)
    # Another researcher's stored images, the data dir, /etc: all refused the same way, nothing named.
    stored = _write_pngs(config.data_dir / "images" / "ab", 3)
    for folder in (str(stored), str(config.data_dir), "/etc", "/proc/self", "/usr"):
        page = _add_folder(client, draft, folder)
        assert "Nothing was added" in page and "turned off" in page
        assert folder not in page and "demo_password" not in page
    assert _image_count(session, draft) == 0


def test_server_folders_inside_the_roots_only_and_no_server_path_in_any_error(draft, session, config, tmp_path):
    root = tmp_path / "allowed"
    good = _write_pngs(root / "lab" / "real", 4)
    (root / "escape").symlink_to("/etc")
    broken = _write_pngs(root / "broken", 2, seed=2)
    (broken / "notes.txt").write_text("not an image")
    app = create_app(config.with_overrides(import_roots=(root.resolve(),)))
    client = app.test_client()
    sign_in(client, "alice@example.org")
    assert 'name="folder"' in client.get(f"/studies/{draft.id}").get_data(as_text=True)
    refused = ["/etc", str(config.data_dir), str(root / ".." / ".."), str(root / "escape"), "escape", "../../etc",
               str(tmp_path), "lab/missing", "/usr"]
    for folder in refused:
        page = _add_folder(client, draft, folder)
        assert "Nothing was added" in page and "no such folder among the folders this server allows" in page, folder
        assert str(tmp_path) not in page and "/etc" not in page and "/usr" not in page
    page = _add_folder(client, draft, "broken")
    assert "notes.txt: not a readable image" in page and str(root) not in page
    assert _image_count(session, draft) == 0
    assert "Added 4 images" in _add_folder(client, draft, "lab/real")  # relative to a root
    assert _image_count(session, draft) == 4
    assert "Added 4 images" not in _add_folder(client, draft, str(good))  # absolute: same images, duplicates now


def test_upload_errors_do_not_show_the_staging_path(app, draft, config):
    client = app.test_client()
    sign_in(client, "alice@example.org")
    token = csrf_token(client, f"/studies/{draft.id}")
    page = client.post(f"/studies/{draft.id}/images",
                       data={"csrf_token": token, "pool": "real", "archive": (io.BytesIO(b"not a zip"), "photos.zip")},
                       content_type="multipart/form-data", follow_redirects=True).get_data(as_text=True)
    assert "photos.zip: not a folder or a .zip archive" in page
    assert str(config.data_dir) not in page and "staging" not in page


# -- 5. decompression bombs ---------------------------------------------------------------------------------


def test_a_bomb_in_an_uploaded_zip_is_refused_with_a_clear_error_not_a_500(app, draft, session):
    client = app.test_client()
    sign_in(client, "alice@example.org")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("bomb.png", png_header_only(20_000, 20_000))
    buf.seek(0)
    token = csrf_token(client, f"/studies/{draft.id}")
    response = client.post(f"/studies/{draft.id}/images", data={"csrf_token": token, "pool": "real", "archive": (buf, "bombs.zip")},
                           content_type="multipart/form-data", follow_redirects=True)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Nothing was added" in page and "bomb.png" in page and "decompression bomb" in page
    assert _image_count(session, draft) == 0


# -- 6. sign-in -----------------------------------------------------------------------------------------------


def test_an_unknown_address_costs_the_same_password_check_as_a_known_one(session, alice, monkeypatch):
    """Unknown accounts used to skip the scrypt check (21 ms against 340 ms): the time told which
    addresses have accounts. Now both run exactly one check of a hash made the same way (the times
    themselves: experiments/login_timing.py)."""
    checked: list[str] = []
    real_check = accounts.check_password_hash

    def counting(stored: str, password: str) -> bool:
        checked.append(stored.split("$", 1)[0])
        return real_check(stored, password)

    monkeypatch.setattr(accounts, "check_password_hash", counting)
    assert accounts.authenticate(session, "nobody@example.org", PASSWORD) is None
    assert accounts.authenticate(session, "alice@example.org", "wrong password") is None
    assert accounts.authenticate(session, "alice@example.org", PASSWORD) is not None
    assert len(checked) == 3 and len(set(checked)) == 1, checked  # same method and cost for all three


def test_failed_sign_ins_are_rate_limited_even_with_the_right_password_after(app, alice):
    client = app.test_client()
    statuses = [sign_in(client, "alice@example.org", f"guess {k}").status_code for k in range(30)]
    assert statuses[0] == 401 and 429 in statuses
    final = sign_in(client, "alice@example.org")
    assert final.status_code == 429
    assert "Too many failed sign-ins" in final.get_data(as_text=True)


def test_guesses_at_one_account_from_many_addresses_are_limited(app, alice):
    client = app.test_client()
    for k in range(25):
        response = client.post("/login", data={"email": "alice@example.org", "password": f"guess {k}",
                                               "csrf_token": csrf_token(client)},
                               environ_base={"REMOTE_ADDR": f"10.0.{k}.1"})
    assert response.status_code == 429
    assert sign_in(client, "alice@example.org").status_code == 429
    assert sign_in(client, "bob@example.org", "whatever").status_code == 401  # other accounts still answer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (tests/run_all.sh installs it)")
    port = _free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_with_redis_the_limit_is_shared_by_every_server_process(config, alice, redis_url, monkeypatch):
    """Two apps stand for two gunicorn processes: failures counted by one are refused by the other."""
    monkeypatch.setenv("HYPE_REDIS_URL", redis_url)
    from hype.config import load_config

    shared = load_config(data_dir=config.data_dir, database_url=config.database_url, secret_key="s", testing=True)
    assert shared.redis_url == redis_url
    first, second = create_app(shared).test_client(), create_app(shared).test_client()
    for k in range(10):
        assert sign_in(first, "alice@example.org", f"guess {k}").status_code == 401
    assert sign_in(second, "alice@example.org").status_code == 429


def test_logout_ends_the_session_on_the_server(app, alice, draft):
    client = app.test_client()
    assert sign_in(client, "alice@example.org").status_code == 302
    cookie = client.get_cookie("session").value
    assert client.get("/studies").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_token(client, "/studies")})
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    response = thief.get("/studies")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert sign_in(client, "alice@example.org").status_code == 302  # signing in again works


def test_reset_password_command_sets_a_new_password_and_signs_out(app, session, alice, config):
    from hype.cli import main

    client = app.test_client()
    assert sign_in(client, "alice@example.org").status_code == 302
    env = {"HYPE_DATABASE_URL": config.database_url, "HYPE_SECRET_KEY": "x"}
    runner = CliRunner()
    result = runner.invoke(main, ["--data-dir", str(config.data_dir), "reset-password", "alice@example.org"],
                           input="a brand new secret\na brand new secret\n", env=env)
    assert result.exit_code == 0, result.output
    assert client.get("/studies").status_code == 302  # the old session is over
    assert sign_in(app.test_client(), "alice@example.org").status_code == 401
    assert sign_in(app.test_client(), "alice@example.org", "a brand new secret").status_code == 302
    unknown = runner.invoke(main, ["--data-dir", str(config.data_dir), "reset-password", "nobody@example.org"], env=env)
    assert unknown.exit_code != 0 and "no researcher nobody@example.org" in unknown.output
    assert "Password" not in unknown.output  # refused before asking


def test_create_researcher_checks_the_address_before_asking_for_a_password(config, session, alice):
    from hype.cli import main

    env = {"HYPE_DATABASE_URL": config.database_url, "HYPE_SECRET_KEY": "x"}
    for email, reason in (("not-an-address", "is not an e-mail address"), ("alice@example.org", "already exists")):
        result = CliRunner().invoke(main, ["--data-dir", str(config.data_dir), "create-researcher", email],
                                    input="whatever123\nwhatever123\n", env=env)
        assert result.exit_code != 0 and reason in result.output, result.output
        assert "Password" not in result.output, result.output
    result = CliRunner().invoke(main, ["--data-dir", str(config.data_dir), "create-researcher", "carol@example.org"],
                                input="whatever123\nwhatever123\n", env=env)
    assert result.exit_code == 0 and "Password" in result.output, result.output
    session.rollback()
    assert session.scalar(select(Researcher).where(Researcher.email == "carol@example.org")) is not None


# -- 7. errors written for a person ---------------------------------------------------------------------------


def test_form_errors_are_written_for_a_person(app, alice, draft, session):
    client = app.test_client()
    sign_in(client, "alice@example.org")
    token = csrf_token(client, f"/studies/{draft.id}")
    raw = re.compile(r"could not convert|invalid literal|Traceback|KeyError|ValueError|float\(|int\(")
    pages = [
        client.post(f"/studies/{draft.id}/exclusion-rules",
                    data={"csrf_token": token, "use_flagged": "on", "max_flagged_percent": "abc"}, follow_redirects=True),
        client.post(f"/studies/{draft.id}/exclusion-rules",
                    data={"csrf_token": token, "use_fast": "on", "min_median_reaction_ms": "fast"}, follow_redirects=True),
        client.post(f"/studies/{draft.id}/exclusion-rules",
                    data={"csrf_token": token, "use_flagged": "on", "max_flagged_percent": "250"}, follow_redirects=True),
        client.post(f"/studies/{draft.id}/exclusion-rules", data={"csrf_token": token, "use_flagged": "on"}, follow_redirects=True),
        client.post(f"/studies/{draft.id}/exclusions", data={"csrf_token": token, "assignment_id": "x1", "reason": "r"},
                    follow_redirects=True),
        client.post("/studies/new", data={"csrf_token": token, "name": "n", "mode": "hype-infinity", "seed": "abc"}),
        client.post("/studies/new", data={"csrf_token": token, "name": "n", "mode": "hype-time", "time_start_ms": "fast"}),
    ]
    expected = [
        "The share of flagged trials (%) must be a number, not “abc”",
        "The median reaction time (ms) must be a number, not “fast”",
        "The share of flagged trials (%) must be between 0 and 100",
        "The share of flagged trials (%) must be a number; the field is empty",
        "That worker is not in this study",
        "The seed must be a whole number",
        "Start exposure (time.start_ms) must be a number",
    ]
    for response, message in zip(pages, expected):
        text = response.get_data(as_text=True)
        assert response.status_code in (200, 400)
        assert message in html.unescape(text), (message, re.findall(r'class="error[^"]*"[^>]*>([^<]*)', text))
        assert not raw.search(text), raw.search(text).group(0)
