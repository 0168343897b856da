"""`hype nginx-config`: the configuration nginx (Debian's) accepts, naming each app server, the served
folder as the internal location the app redirects to, and refusing input that would break the file."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from hype.cli import main
from hype.proxy.nginx import ACCEL_PREFIX, NginxSite, accel_path, render_site

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def _nginx_or_skip() -> str:
    if NGINX is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must have nginx (tests/run_all.sh installs it)")
        pytest.skip("nginx is not installed")
    return NGINX


def test_site_names_every_app_server_and_the_internal_served_location(tmp_path):
    text = render_site(NginxSite(upstreams=("10.0.0.5:8000", "10.0.0.6:8000"), served_dir=tmp_path / "served"))
    assert "server 10.0.0.5:8000" in text and "server 10.0.0.6:8000" in text
    assert f"location {ACCEL_PREFIX} {{\n        internal;\n        alias {tmp_path / 'served'}/;" in text
    assert accel_path("ab" + "c" * 62) == f"{ACCEL_PREFIX}ab/ab{'c' * 62}.png"


@pytest.mark.parametrize("bad", [{"upstreams": ()}, {"upstreams": ("a:1; evil",)}, {"upstreams": ("nohostport",)},
                                 {"listen": "80; include /etc/passwd"}, {"server_name": "x;y"},
                                 {"served_dir": Path("/tmp/a b")}])
def test_input_that_would_break_the_file_is_refused(bad, tmp_path):
    args = {"upstreams": ("127.0.0.1:8000",), "served_dir": tmp_path, **bad}
    with pytest.raises(ValueError):
        NginxSite(**args)


def test_cli_writes_a_config_nginx_accepts(tmp_path):
    nginx = _nginx_or_skip()
    prefix, conf = tmp_path / "nginx", tmp_path / "nginx" / "nginx.conf"
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "data"), "nginx-config", "--upstream", "127.0.0.1:8001",
                                       "--upstream", "127.0.0.1:8002", "--listen", "127.0.0.1:8080",
                                       "--standalone", str(prefix), "--output", str(conf)])
    assert result.exit_code == 0, result.output
    check = subprocess.run([nginx, "-t", "-p", str(prefix), "-c", str(conf), "-e", "stderr"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    site = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "data"), "nginx-config"])
    assert site.exit_code == 0 and "server 127.0.0.1:8000" in site.output and "upstream hype_app" in site.output


def test_cli_refuses_a_bad_upstream_with_a_message_for_a_person(tmp_path):
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "nginx-config", "--upstream", "8000"])
    assert result.exit_code == 1
    assert "an app server is host:port or unix:/path, not '8000'" in result.output and "Traceback" not in result.output
