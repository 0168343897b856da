"""The load and crash tests drive the real production server (gunicorn in its own process group) with
the simulated crowd of experiments/crowd_client.py; that folder is put on the import path here."""

from __future__ import annotations

import sys
from pathlib import Path

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
if str(EXPERIMENTS) not in sys.path:
    sys.path.insert(0, str(EXPERIMENTS))
