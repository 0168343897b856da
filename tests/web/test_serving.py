"""`hype serve --production`: what each gunicorn process does before it serves."""

from __future__ import annotations

import gc

import pytest


def test_each_server_process_freezes_what_it_made_at_start_up(config, engine, monkeypatch):
    """The app and everything imported for it are never garbage: each gunicorn process moves them out of
    the collector's sight once the app is made (gc.freeze), so full collections while serving do not walk
    them again (experiments/serving.md, sixth pass)."""
    from gunicorn.app.base import BaseApplication

    from hype import serving

    made: list = []

    def run(self) -> None:  # instead of forking workers: what a worker does first
        made.append((self.load(), gc.get_freeze_count()))

    monkeypatch.setattr(BaseApplication, "run", run)
    gc.unfreeze()
    try:
        serving.serve(config, host="127.0.0.1", port=0, production=True, workers=1, threads=2)
        (app, frozen), = made
        assert app.name == "hype" and frozen > 0
        assert not any(obj is app for obj in gc.get_objects())  # frozen objects are out of the collector's lists
    finally:
        gc.unfreeze()


def test_an_unknown_worker_class_is_refused():
    from hype.serving import worker_class_for

    assert worker_class_for() == "gthread"
    with pytest.raises(ValueError, match="sync, gthread"):
        worker_class_for("eventlet")
