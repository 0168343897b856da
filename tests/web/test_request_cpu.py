"""The per-endpoint CPU counter experiments/load_crowd.py --split-cpu reads (hype.web.request_cpu):
off unless HYPE_REQUEST_CPU_DIR names a folder; on, every request is booked to its endpoint."""

from __future__ import annotations

from hype.app import create_app
from hype.web import request_cpu
from hype.web.request_cpu import RequestCpu


def test_off_by_default(config, engine, monkeypatch):
    monkeypatch.delenv(request_cpu.ENV_VAR, raising=False)
    assert not isinstance(create_app(config).wsgi_app, RequestCpu)


def test_each_request_is_booked_to_its_endpoint(config, engine, monkeypatch, tmp_path):
    folder = tmp_path / "cpu"
    monkeypatch.setenv(request_cpu.ENV_VAR, str(folder))
    app = create_app(config)
    counter = app.wsgi_app
    assert isinstance(counter, RequestCpu)
    client = app.test_client()
    for path, status in (("/api/openapi.json", 200),) * 3 + (("/no/such/page", 404),):
        response = client.get(path)
        assert response.status_code == status
        response.close()  # as a WSGI server does when the body is sent: the request is booked then
    counter.dump()
    totals = request_cpu.read_totals(folder)
    assert totals["openapi.document"]["requests"] == 3 and totals["openapi.document"]["cpu_s"] > 0
    assert totals["(404)"]["requests"] == 1
    assert totals["(naming)"]["cpu_s"] >= 0
