"""What one POST answer costs in process: thread CPU per answer through the Flask test client (no HTTP,
no other clients), the steadier figure beside bench_serving.py's served one, and a cProfile of it.

    python experiments/bench_answer.py                         # SQLite, every mode, 800 answers each
    python experiments/bench_answer.py --db postgres --answers 400
    python experiments/bench_answer.py --profile hype-infinity # where the time goes (own time by package)

A/B against another checkout: run the same script with PYTHONPATH pointing at it (the script only uses
the app's HTTP API, so it runs against any version of hype that has it).
Modes: hype-infinity, hype-time (weighted staircase), hype-time-quest (time.adaptive = QUEST+).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import secrets
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serving import BENCH_SETTINGS, _answer_body  # noqa: E402
from crowd_client import FRAME_MS  # noqa: E402
from crowd_setup import build_load_studies, load_server_config  # noqa: E402

MODES = ("hype-infinity", "hype-time", "hype-time-quest")


def _study_mode(mode: str) -> str:
    return "hype-time" if mode.startswith("hype-time") else mode


def _new_session(client, slug: str) -> dict:
    params = {"PROLIFIC_PID": f"bench{secrets.token_hex(6)}", "STUDY_ID": "bench", "SESSION_ID": "s"}
    entry = client.post(f"/api/s/{slug}/sessions", json={"consent": True, "params": params}).get_json()
    api = f"/api/w/{entry['token']}"
    client.post(f"{api}/instructions", json={})
    client.post(f"{api}/check", json={"refresh_interval_ms": FRAME_MS, "window_width": 1280, "window_height": 900})
    return {**client.get(f"{api}/trial").get_json(), "token": entry["token"]}


def run_mode(app, slug: str, n: int, rng: np.random.Generator, profiler: cProfile.Profile | None = None) -> list[float]:
    """Thread CPU (ms) of each of ``n`` answers (a new session whenever one ends; entry not counted)."""
    client = app.test_client()
    times: list[float] = []
    state = _new_session(client, slug)
    while len(times) < n:
        if state["trial"] is None:
            state = _new_session(client, slug)
            continue
        body = _answer_body(state["trial"], rng)
        if profiler:
            profiler.enable()
        t0 = time.thread_time_ns()
        response = client.post(f"/api/w/{state['token']}/answers", json=body)
        times.append((time.thread_time_ns() - t0) / 1e6)
        if profiler:
            profiler.disable()
        if response.status_code != 201:
            raise RuntimeError(f"answer {response.status_code}: {response.get_data(as_text=True)[:300]}")
        state = {**response.get_json()["next"], "token": state["token"]}
    return times


def own_time_by_package(stats: pstats.Stats) -> dict[str, float]:
    """Share of own (tottime) time by where the function lives."""
    shares: dict[str, float] = {}
    total = 0.0
    for (filename, _line, name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():
        total += tt
        f = filename.replace("\\", "/")
        for key in ("sqlalchemy", "werkzeug", "flask", "sqlite3", "psycopg", "numpy", "json", "jinja2", "hype/", "flask_limiter"):
            if key in f:
                group = key.rstrip("/")
                break
        else:
            group = "builtins" if filename == "~" else "other"
            if filename == "~" and ("sqlite3" in name or "execute" in name and "Cursor" in name):
                group = "sqlite3"
        shares[group] = shares.get(group, 0.0) + tt
    return {k: v / total for k, v in sorted(shares.items(), key=lambda kv: -kv[1])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite", choices=("sqlite", "postgres"))
    parser.add_argument("--postgres-url", default=os.environ.get("HYPE_TEST_POSTGRES_URL"))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--answers", type=int, default=800)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--profile", default=None, help="a mode to profile (cProfile, own time by package)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    import hype
    from hype.app import create_app
    from hype.db import scratch_postgres_database

    print(f"hype from {Path(hype.__file__).parent.parent}; load average {os.getloadavg()[0]:.2f}", flush=True)
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hype-answer.")))
        if args.db == "sqlite":
            url = f"sqlite:///{root / 'hype.db'}"
        else:
            if not args.postgres_url:
                parser.error("--db postgres needs --postgres-url or HYPE_TEST_POSTGRES_URL")
            url = stack.enter_context(scratch_postgres_database(args.postgres_url, prefix="hype_answer"))
        config = load_server_config(root, url)
        settings = {"hype-infinity": BENCH_SETTINGS["hype-infinity"], "hype-time": BENCH_SETTINGS["hype-time"]}
        slugs: dict[str, str] = {}
        for mode in modes:
            per_mode = {_study_mode(mode): BENCH_SETTINGS.get(mode, settings[_study_mode(mode)])}
            studies = build_load_studies(config, image_size=32, seed=args.seed, modes=(_study_mode(mode),),
                                         settings_by_mode=per_mode)
            slugs[mode] = studies[0].slug
        app = create_app(config)
        rng = np.random.default_rng(args.seed)
        for mode in modes:
            run_mode(app, slugs[mode], args.warmup, rng)
            # CPU time of this thread, not wall time: on a shared machine preemption would land in whatever ran.
            profiler = cProfile.Profile(time.thread_time_ns, 1e-9) if args.profile == mode else None
            times = run_mode(app, slugs[mode], args.answers, rng, profiler)
            print(f"{mode:<16} {args.db:<8} thread CPU per answer: median {statistics.median(times):.3f} ms  "
                  f"mean {statistics.fmean(times):.3f}  p90 {np.percentile(times, 90):.3f}  "
                  f"(n={len(times)}, load {os.getloadavg()[0]:.2f})", flush=True)
            if profiler:
                stats = pstats.Stats(profiler)
                print("  own time by package: " + ", ".join(f"{k} {v:.0%}" for k, v in own_time_by_package(stats).items()))
                stats.sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
