"""What a judgment costs the server: hype against bare Flask handlers doing the same database work,
side by side in one run, under the same gunicorn configuration and the same closed-loop clients.

    python experiments/bench_serving.py                    # 2000 requests a phase, SQLite + PostgreSQL
    python experiments/bench_serving.py --requests 300 --db sqlite      # a quick look
    python experiments/bench_serving.py --nginx          # hype behind nginx, which sends the images
    python experiments/bench_serving.py --db sqlite --nginx --phases image --against /work/main --rounds 5
        # A/B: this checkout and another one served side by side, phases in turn, medians
    python experiments/bench_serving.py --db sqlite --nginx --phases answer --worker-class sync --workers 3 \
        --against-worker-class gthread --against-threads 2 --rounds 3
        # A/B of gunicorn settings: the same code under two worker models, the bare apps under both too

Servers (each gunicorn gthread, --workers x --threads, default 3 x 2, as `hype serve --production`;
--worker-class sync for the A/B of worker models, 5 processes unless --workers):
- hype on SQLite, and hype on PostgreSQL (a throwaway cluster unless --postgres-url is given);
- bare Flask + sqlite3 INSERT, and bare Flask + SQLAlchemy ORM INSERT (experiments/bare_apps.py); with
  --db postgres also the bare ORM app on a database of its own on hype's PostgreSQL server ("bare orm
  postgres"), its server CPU and PostgreSQL's counted as hype's are. For the HYPE-time rows the bare apps
  answer a timed trial: the block's JSON state read, moved by hype's own staircase or QUEST+ step and
  written back with the judgment (bare_apps.py's /timed-answer), the same work hype's timed answer does.

Phases, each run by --clients closed-loop clients with no think time (a client sends its next request
the moment the previous one is answered):
- answer: POST answers back to back (hype: each answer's reply carries the next trial, as the runner
  uses it; HYPE-infinity, HYPE-time (staircase) and HYPE-time with QUEST+ sessions in turn);
- image: GET the current trial's image again and again;
- judgment: GET image, then POST answer (what one trial costs).

The CPU figure is server CPU only: user + system time of the gunicorn arbiter and its workers (and, on
PostgreSQL, of the cluster's processes, shown apart), read from /proc before and after each phase, so
the clients' own CPU is not in it. Latencies are the clients' (they include time waiting for the
client's event loop, on the same cores) and are upper bounds on the server's.

Sessions are entered and moved to the task before a phase starts; a phase sends only its own requests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crowd_client import FRAME_MS, faithful_timing  # noqa: E402
from crowd_setup import (  # noqa: E402
    Nginx,
    Server,
    _noise_pngs,
    build_load_studies,
    cpu_seconds,
    descendants,
    free_port,
    load_server_config,
    postmaster_pid,
)
from hype.db import scratch_postgres_database  # noqa: E402

# Long sessions without qualification: a phase seldom needs a new one, and every answer is a task
# answer (HYPE-time: one staircase of 100 trials; pools hold 80 images each, 50 + 50 are drawn).
BENCH_SETTINGS: dict[str, dict] = {
    "hype-infinity": {"qualification": {"enabled": False}, "infinity": {"n_real": 50, "n_fake": 50}},
    "hype-time": {"qualification": {"enabled": False}, "time": {"n_blocks": 1, "trials_per_block": 100}},
    # HYPE-time with QUEST+ choosing each exposure (time.adaptive) instead of the staircase.
    "hype-time-quest": {"qualification": {"enabled": False},
                        "time": {"n_blocks": 1, "trials_per_block": 100, "adaptive": True}},
}
TRIALS_PER_SESSION = 100
# The bare apps' HYPE-time answers: the procedure their /timed-answer runs for each of hype's modes.
BARE_PROCEDURES = {"hype-time": "staircase", "hype-time-quest": "quest+"}
BENCH_PG_PORT = 54341


# -- the servers ---------------------------------------------------------------------------------------------


@dataclass
class Target:
    """One server under test and how to reach its sessions."""

    name: str
    base_url: str
    pid: int
    kind: str  # "hype" or "bare"
    slugs: dict[str, str] = field(default_factory=dict)  # hype: mode -> study slug
    images: list[str] = field(default_factory=list)  # bare: image file names
    db_pid: int | None = None  # PostgreSQL's postmaster, when its CPU can be read
    front_pid: int | None = None  # nginx in front, with --nginx

    def server_pids(self) -> list[int]:
        return descendants(self.pid)

    def db_pids(self) -> list[int]:
        return descendants(self.db_pid) if self.db_pid else []

    def front_pids(self) -> list[int]:
        return descendants(self.front_pid) if self.front_pid else []


class BareServer:
    def __init__(self, kind: str, root: Path, image_files: list[Path], *, workers: int, threads: int,
                 worker_class: str = "gthread", db_url: str | None = None):
        self.kind, self.root, self.workers, self.threads = kind, root, workers, threads
        self.worker_class = worker_class
        self.db = db_url or str(root / "bare.db")  # a database URL: the ORM app on that server
        self.port = free_port()
        self.images = root / "images"
        self.images.mkdir(parents=True, exist_ok=True)
        for path in image_files:
            (self.images / path.name).write_bytes(path.read_bytes())
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.root / "server.log", "ab")
        command = [sys.executable, str(Path(__file__).with_name("bare_apps.py")), self.kind, "--db", self.db,
                   "--images", str(self.images), "--port", str(self.port), "--workers", str(self.workers),
                   "--threads", str(self.threads), "--worker-class", self.worker_class]
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        _wait_for(f"http://127.0.0.1:{self.port}/health", self.process)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            self.process.wait(timeout=20)


def _wait_for(url: str, process: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s")


# -- the clients ---------------------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    target: str
    phase: str
    units: int
    wall_s: float
    server_cpu_s: float
    db_cpu_s: float
    front_cpu_s: float
    latencies_ms: dict[str, list[float]]
    errors: dict[str, int]

    @property
    def cpu_ms(self) -> float:
        return self.server_cpu_s * 1000 / self.units

    @property
    def db_cpu_ms(self) -> float:
        return self.db_cpu_s * 1000 / self.units

    @property
    def front_cpu_ms(self) -> float:
        return self.front_cpu_s * 1000 / self.units

    def percentile(self, request: str, q: float) -> float:
        values = self.latencies_ms.get(request)
        return float(np.percentile(values, q)) if values else float("nan")


class Client:
    """One closed-loop client: its own keep-alive connection, no think time."""

    def __init__(self, target: Target, http: aiohttp.ClientSession, latencies: dict[str, list[float]], errors: dict[str, int]):
        self.target, self.http, self.latencies, self.errors = target, http, latencies, errors

    async def request(self, name: str, method: str, path: str, json: Any = None) -> Any:
        begun = time.perf_counter()
        async with self.http.request(method, self.target.base_url + path, json=json) as response:
            body = await (response.read() if name == "image" else response.json(content_type=None))
            self.latencies.setdefault(name, []).append((time.perf_counter() - begun) * 1000)
            if response.status >= 300:
                self.errors[f"{name} {response.status}"] = self.errors.get(f"{name} {response.status}", 0) + 1
                raise RuntimeError(f"{method} {path} answered {response.status}: {body!r:.200}")
            return body


def _answer_body(trial: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    reaction = float(rng.lognormal(np.log(900), 0.3))
    return {"trial": trial["id"], "response": "fake" if rng.random() < 0.5 else "real",
            "idempotency_key": secrets.token_urlsafe(12), **faithful_timing(trial, reaction)}


async def prepare_hype_sessions(target: Target, mode: str, n: int) -> list[dict[str, Any]]:
    """``n`` sessions entered, past the instructions and the browser check, with their first trial."""
    connector = aiohttp.TCPConnector(limit=8)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as http:
        client = Client(target, http, {}, {})

        async def one(k: int) -> dict[str, Any]:
            params = {"PROLIFIC_PID": f"bench{secrets.token_hex(6)}", "STUDY_ID": "bench", "SESSION_ID": f"s{k}"}
            entry = await client.request("entry", "POST", f"/api/s/{target.slugs[mode]}/sessions",
                                         {"consent": True, "params": params})
            api = f"/api/w/{entry['token']}"
            await client.request("instructions", "POST", f"{api}/instructions", {})
            await client.request("check", "POST", f"{api}/check",
                                 {"refresh_interval_ms": FRAME_MS, "window_width": 1280, "window_height": 900})
            state = await client.request("trial", "GET", f"{api}/trial")
            return {**state, "token": entry["token"]}

        return list(await asyncio.gather(*(one(k) for k in range(n))))


async def run_phase(target: Target, phase: str, units: int, clients: int, sessions: list[dict[str, Any]], seed: int,
                    measure: bool = True, mode: str = "") -> PhaseResult:
    """``units`` answers, images or judgments, shared by ``clients`` closed-loop clients; a bare app's
    answers are timed ones (its /timed-answer) in a HYPE-time ``mode``."""
    latencies: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    remaining = [units]
    rng = np.random.default_rng(seed)

    def take() -> bool:
        if remaining[0] <= 0:
            return False
        remaining[0] -= 1
        return True

    async def hype_client(client: Client) -> None:
        state = sessions.pop()
        while take():
            while state["trial"] is None:
                state = sessions.pop()
            trial, token = state["trial"], state["token"]
            if phase in ("image", "judgment"):
                await client.request("image", "GET", trial["image_url"])
            if phase in ("answer", "judgment"):
                reply = await client.request("answer", "POST", f"/api/w/{token}/answers", _answer_body(trial, rng))
                state = {**reply["next"], "token": token}

    async def bare_client(client: Client, index: int) -> None:
        token = secrets.token_urlsafe(32)
        k, answered = index, 0
        procedure = BARE_PROCEDURES.get(mode)
        while take():
            name = target.images[k % len(target.images)]
            k += clients
            if phase in ("image", "judgment"):
                await client.request("image", "GET", f"/img/{name}")
            if phase in ("answer", "judgment"):
                trial = {"id": name, "timed": False}
                if procedure is None:
                    await client.request("answer", "POST", f"/answer/{token}", _answer_body(trial, rng))
                    continue
                if answered == TRIALS_PER_SESSION:  # the block is done: a new one, as hype's sessions end
                    token, answered = secrets.token_urlsafe(32), 0
                await client.request("answer", "POST", f"/timed-answer/{procedure}/{token}", _answer_body(trial, rng))
                answered += 1

    async def one(index: int) -> None:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as http:
            client = Client(target, http, latencies, errors)
            if target.kind == "hype":
                await hype_client(client)
            else:
                await bare_client(client, index)

    pids, db_pids, front_pids = target.server_pids(), target.db_pids(), target.front_pids()
    cpu0, db0, front0, t0 = cpu_seconds(pids), cpu_seconds(db_pids), cpu_seconds(front_pids), time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(clients)))
    wall = time.perf_counter() - t0
    cpu, db, front = cpu_seconds(pids) - cpu0, cpu_seconds(db_pids) - db0, cpu_seconds(front_pids) - front0
    return PhaseResult(target.name, phase, units, wall, cpu, db, front, latencies, errors)


def bench_target(target: Target, phases: list[tuple[str, str]], units: int, clients: int, warmup: int,
                 seed: int) -> list[PhaseResult]:
    """Each (phase, mode) in turn; hype sessions are made beforehand, outside the measured time."""
    results = []
    for k, (phase, mode) in enumerate(phases):
        sessions: list[dict[str, Any]] = []
        if target.kind == "hype":
            per_session = TRIALS_PER_SESSION if phase != "image" else units + warmup
            needed = clients + -(-(units + warmup) // per_session) + clients
            sessions = asyncio.run(prepare_hype_sessions(target, mode, needed))
        if warmup:
            asyncio.run(run_phase(target, phase, warmup, clients, sessions, seed + 1000 + k, mode=mode))
        result = asyncio.run(run_phase(target, phase, units, clients, sessions, seed + k, mode=mode))
        result.phase = f"{phase} ({_short(mode)})" if mode else phase
        results.append(result)
        print(f"  {target.name:<16} {result.phase:<20} {result.units:>6} in {result.wall_s:5.1f} s  "
              f"server CPU {result.cpu_ms:5.2f} ms/unit"
              + (f" + PostgreSQL {result.db_cpu_ms:4.2f}" if target.db_pid else "")
              + (f" + nginx {result.front_cpu_ms:4.2f}" if target.front_pid else "")
              + f"  answer p50/p99 {result.percentile('answer', 50):5.1f}/{result.percentile('answer', 99):5.1f}"
              + f"  image p50/p99 {result.percentile('image', 50):5.1f}/{result.percentile('image', 99):5.1f}", flush=True)
    return results


def _short(mode: str) -> str:
    return {"hype-infinity": "HYPE-inf", "hype-time": "HYPE-time", "hype-time-quest": "QUEST+"}.get(mode, mode)


# -- the report ------------------------------------------------------------------------------------------------


ROWS = (  # label, hype's phase, the bare apps' phase, the request whose latency is shown
    ("POST answer (HYPE-inf)", "answer (HYPE-inf)", "answer", "answer"),
    # the bare apps' timed answer: the same block read, step and write (bare_apps.py's /timed-answer)
    ("POST answer (HYPE-time)", "answer (HYPE-time)", "answer (HYPE-time)", "answer"),
    ("POST answer (QUEST+)", "answer (QUEST+)", "answer (QUEST+)", "answer"),
    ("GET image", "image (HYPE-inf)", "image", "image"),
    ("judgment (image+answer)", "judgment (HYPE-inf)", "judgment", None),
)
TARGETS = ("hype sqlite", "hype postgres", "bare sqlite3", "bare orm", "bare orm postgres")
SHORT = {"hype sqlite": "hype-sqlite", "hype postgres": "hype-pg", "bare sqlite3": "sqlite3", "bare orm": "orm",
         "bare orm postgres": "orm-pg"}


def print_table(results: list[PhaseResult]) -> None:
    """The CPU table (ratios against the bare sqlite3 app and the bare ORM app; hype on PostgreSQL also against
    the bare ORM app on PostgreSQL: gunicorn's CPU, and in brackets gunicorn's + PostgreSQL's when both were
    counted), then latencies."""
    by = {(r.target, r.phase): r for r in results}
    targets = [t for t in TARGETS if any(r.target == t for r in results)]
    hypes = [t for t in targets if t.startswith("hype")]

    def cell(target: str, hype_phase: str, bare_phase: str) -> PhaseResult | None:
        return by.get((target, hype_phase if target.startswith("hype") else bare_phase))

    ratios = [(h, b) for h in hypes for b in ("bare sqlite3", "bare orm") if b in targets]
    if "hype postgres" in targets and "bare orm postgres" in targets:
        ratios.append(("hype postgres", "bare orm postgres"))

    def ratio(hype: PhaseResult | None, bare: PhaseResult | None) -> str:
        if not (hype and bare):
            return "-"
        both = hype.db_cpu_s and bare.db_cpu_s  # like with like: PostgreSQL's CPU only when counted for both
        return f"{hype.cpu_ms / bare.cpu_ms:.2f}x" + (
            f" [{(hype.cpu_ms + hype.db_cpu_ms) / (bare.cpu_ms + bare.db_cpu_ms):.2f}x]" if both else "")

    print("\nserver CPU per request, ms: gunicorn processes [PostgreSQL's own processes] {nginx's, with --nginx}"
          + ("; hype-pg/orm-pg: gunicorn's [gunicorn's + PostgreSQL's]" if ("hype postgres", "bare orm postgres") in ratios
             else ""))
    print(f"{'request':<26}" + "".join(f"{t:>24}" for t in targets)
          + "".join(f"{SHORT[h] + '/' + SHORT[b]:>20}" for h, b in ratios))
    for label, hype_phase, bare_phase, _ in ROWS:
        line = f"{label:<26}"
        for t in targets:
            r = cell(t, hype_phase, bare_phase)
            text = "-" if r is None else (f"{r.cpu_ms:.2f}" + (f" [{r.db_cpu_ms:.2f}]" if r.db_cpu_s else "")
                                          + (f" {{{r.front_cpu_ms:.2f}}}" if r.front_cpu_s else ""))
            line += f"{text:>24}"
        for h, b in ratios:
            hype, bare = cell(h, hype_phase, bare_phase), cell(b, hype_phase, bare_phase)
            line += f"{ratio(hype, bare):>20}"
        print(line)

    print("\nclient latency p50 / p99, ms (closed-loop clients on the same cores)")
    width = {t: max(16, len(t) + 2) for t in targets}
    print(f"{'request':<34}" + "".join(f"{t:>{width[t]}}" for t in targets)
          + "".join(f"{SHORT[h] + '/sqlite3':>20}" for h in hypes if "bare sqlite3" in targets))
    for label, hype_phase, bare_phase, request in ROWS:
        for req in ((request,) if request else ("image", "answer")):
            line = f"{(label if request else f'{label}: {req}'):<34}"
            for t in targets:
                r = cell(t, hype_phase, bare_phase)
                ok = r is not None and req in r.latencies_ms
                line += f"{(f'{r.percentile(req, 50):.1f} / {r.percentile(req, 99):.1f}' if ok else '-'):>{width[t]}}"
            base = cell("bare sqlite3", hype_phase, bare_phase)
            for h in hypes:
                if "bare sqlite3" not in targets:
                    continue
                r = cell(h, hype_phase, bare_phase)
                ok = r is not None and base is not None and req in r.latencies_ms and req in base.latencies_ms
                text = (f"{r.percentile(req, 50) / base.percentile(req, 50):.1f}x / "
                        f"{r.percentile(req, 99) / base.percentile(req, 99):.1f}x") if ok else "-"
                line += f"{text:>20}"
            print(line)


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres", help="hype's databases: sqlite, postgres")
    parser.add_argument("--requests", type=int, default=2000, help="measured units per phase")
    parser.add_argument("--warmup", type=int, default=200, help="units per phase before measuring")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default=None,
                        help="gunicorn's worker model, every server (default gthread, as hype serve)")
    parser.add_argument("--workers", type=int, default=None,
                        help="gunicorn processes, every server (default: 5 sync, 3 gthread)")
    parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn process (gthread)")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--phases", default="answer,image,judgment", help="which of answer, image, judgment")
    parser.add_argument("--no-bare", action="store_true", help="hype only (the ratios then need an earlier run)")
    parser.add_argument("--nginx", action="store_true",
                        help="hype behind nginx (hype nginx-config), which sends the images; clients talk to nginx")
    parser.add_argument("--postgres-url", default=None,
                        help="a PostgreSQL server to make a scratch database on (default: a throwaway cluster, "
                             "whose CPU is then counted apart)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--against", type=Path, default=None,
                        help="A/B: also serve hype from this checkout (e.g. a worktree of main before a change); "
                             "every target runs each phase once a round, in alternating order; medians")
    parser.add_argument("--rounds", type=int, default=3, help="with --against: rounds")
    parser.add_argument("--against-worker-class", choices=["sync", "gthread"], default=None,
                        help="A/B: the old side (this checkout unless --against) under this worker model; the bare "
                             "apps then run under both settings")
    parser.add_argument("--against-workers", type=int, default=None, help="A/B: the old side's processes")
    parser.add_argument("--against-threads", type=int, default=None, help="A/B: the old side's threads (gthread)")
    args = parser.parse_args(argv)
    args.worker_class = args.worker_class or "gthread"
    old_class = args.against_worker_class or args.worker_class
    args.old_server = (old_class, args.against_workers or args.workers or (5 if old_class == "sync" else 3),
                       1 if old_class == "sync" else (args.against_threads or args.threads))
    args.workers = args.workers or (5 if args.worker_class == "sync" else 3)
    if args.worker_class == "sync":
        args.threads = 1
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if set(kinds) - {"sqlite", "postgres"}:
        parser.error("--db takes sqlite and/or postgres")
    print(f"load average at start: {loadavg()}; {os.cpu_count()} CPUs; {args.clients} clients; "
          f"servers {args.workers} x {args.threads} {args.worker_class}"
          + (f" (old side {args.old_server[1]} x {args.old_server[2]} {args.old_server[0]})"
             if args.old_server != (args.worker_class, args.workers, args.threads) else "")
          + f"; {args.requests} units a phase (+{args.warmup} warm-up)"
          + ("; hype behind nginx" if args.nginx else ""))
    wanted = {p.strip() for p in args.phases.split(",")}
    if wanted - {"answer", "image", "judgment"}:
        parser.error("--phases takes answer, image and/or judgment")
    hype_phases = [(p, m) for p, m in (("answer", "hype-infinity"), ("answer", "hype-time"), ("answer", "hype-time-quest"),
                                       ("image", "hype-infinity"), ("judgment", "hype-infinity")) if p in wanted]
    if args.against or args.old_server != (args.worker_class, args.workers, args.threads):
        return ab_rounds(args, kinds, hype_phases, wanted)
    results: list[PhaseResult] = []
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hype-bench.")))
        rng = np.random.default_rng(args.seed)
        pngs = root / "pngs"
        pngs.mkdir()
        for raw in _noise_pngs(32, args.image_size, rng, smooth=False):
            (pngs / raw.name).write_bytes(raw.data)
        for kind in kinds:
            results += _bench_hype(kind, root, args, hype_phases, stack)
        modes = {m for _, m in hype_phases}
        for kind, db, phases in ([] if args.no_bare else _bare_apps(kinds, wanted, modes)):
            with ExitStack() as inner:  # this server (and its database) go before the next one starts
                target = _start_bare(kind, db, root / _bare_dir(kind, db), pngs, args, inner,
                                     (args.worker_class, args.workers, args.threads), _bare_name(kind, db), stack)
                results += bench_target(target, phases, args.requests, args.clients, args.warmup, args.seed)
    print_table(results)
    print(f"\nload average at end: {loadavg()}")
    errors = sum(sum(r.errors.values()) for r in results)
    return 1 if errors else 0


def _start_hype(kind: str, data_dir: Path, args, stack: ExitStack, name: str, phases, code_dir: Path | None = None,
                cluster_stack: ExitStack | None = None, server: tuple[str, int, int] | None = None) -> Target:
    """A hype server (behind its own nginx with --nginx) on a fresh database with the bench's studies; the
    QUEST+ study only when a phase needs it. A throwaway PostgreSQL cluster (made on ``cluster_stack``, else
    ``stack``, and reused by later calls) has its CPU counted apart; a --postgres-url server is shared, so not.
    ``server``: (worker class, processes, threads), default the run's own."""
    db_pid = None
    if kind == "sqlite":
        url = f"sqlite:///{data_dir / 'hype.db'}"
    else:
        url, db_pid = _postgres_database(args, stack, cluster_stack, "hype_bench")
    config = load_server_config(data_dir, url)
    studies = build_load_studies(config, image_size=args.image_size, seed=args.seed, settings_by_mode=BENCH_SETTINGS)
    slugs = {s.mode: s.slug for s in studies}
    if any(m == "hype-time-quest" for _, m in phases):  # a HYPE-time study of its own, with QUEST+
        quest = build_load_studies(config, image_size=args.image_size, seed=args.seed, modes=("hype-time",),
                                   settings_by_mode={"hype-time": BENCH_SETTINGS["hype-time-quest"]})
        slugs["hype-time-quest"] = quest[0].slug
    worker_class, workers, threads = server or (args.worker_class, args.workers, args.threads)
    server = Server(config, workers=workers, threads=threads, behind_nginx=args.nginx, code_dir=code_dir,
                    worker_class=worker_class)
    server.start()
    stack.callback(server.stop)
    base_url, front_pid = server.base_url, None
    if args.nginx:
        front = Nginx(config, [f"127.0.0.1:{server.port}"])
        front.start()
        stack.callback(front.stop)
        base_url, front_pid = front.base_url, front.process.pid
    return Target(name, base_url, server.process.pid, "hype", slugs=slugs, db_pid=db_pid, front_pid=front_pid)


def _postgres_database(args, stack: ExitStack, cluster_stack: ExitStack | None, prefix: str) -> tuple[str, int | None]:
    """A scratch database (dropped when ``stack`` closes) on the run's PostgreSQL server, and that server's
    postmaster when its CPU can be counted: a throwaway cluster (made on ``cluster_stack``, else ``stack``, and
    reused by later calls) is the bench's own; a --postgres-url server is shared, so its CPU is not counted."""
    admin = args.postgres_url
    if not admin:
        from crowd_setup import throwaway_postgres

        admin = (cluster_stack or stack).enter_context(throwaway_postgres(port=BENCH_PG_PORT))
        args.postgres_url = admin
        args.throwaway_postgres = True
    db_pid = postmaster_pid(BENCH_PG_PORT) if getattr(args, "throwaway_postgres", False) else None
    return stack.enter_context(scratch_postgres_database(admin, prefix=prefix)), db_pid


def _bare_apps(kinds: list[str], wanted: set[str], modes: set[str], floor: bool = False
               ) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(bare app, database, [(phase, mode)]): the sqlite3 and ORM apps on SQLite, the ORM app on PostgreSQL
    beside hype on PostgreSQL (the spec's "no worse than the bare ORM app" there), the plain-WSGI floor with
    ``floor``; the answer phase also in each of hype's HYPE-time ``modes`` (the bare apps' timed answer)."""
    answers = (("answer", ""), ("answer", "hype-time"), ("answer", "hype-time-quest"))
    apps = [("sqlite3", "sqlite", (*answers, ("image", ""), ("judgment", ""))), ("orm", "sqlite", answers)]
    if "postgres" in kinds:
        apps.append(("orm", "postgres", answers))
    if floor:
        apps.append(("wsgi", "sqlite", (("image", ""),)))
    return [(kind, db, [(p, m) for p, m in phases if p in wanted and (not m or m in modes)]) for kind, db, phases in apps
            if any(p in wanted for p, _ in phases)]


def _bare_name(kind: str, db: str) -> str:
    return f"bare {kind}" + (" postgres" if db == "postgres" else "")


def _bare_dir(kind: str, db: str) -> str:
    return f"bare-{kind}" + ("-postgres" if db == "postgres" else "")


def _start_bare(kind: str, db: str, data_dir: Path, pngs: Path, args, stack: ExitStack, server: tuple[str, int, int],
                name: str, cluster_stack: ExitStack | None = None) -> Target:
    """A bare app (experiments/bare_apps.py) under gunicorn with ``server`` = (worker class, processes,
    threads); on PostgreSQL in a scratch database of its own on hype's server, never in hype's tables."""
    url, db_pid = _postgres_database(args, stack, cluster_stack, "bare_bench") if db == "postgres" else (None, None)
    worker_class, workers, threads = server
    images = sorted(pngs.iterdir())
    bare = BareServer(kind, data_dir, images, workers=workers, threads=threads, worker_class=worker_class, db_url=url)
    bare.start()
    stack.callback(bare.stop)
    return Target(name, f"http://127.0.0.1:{bare.port}", bare.process.pid, "bare", images=[p.name for p in images],
                  db_pid=db_pid)


def ab_rounds(args, kinds: list[str], hype_phases: list[tuple[str, str]], wanted: set[str]) -> int:
    """--against: this checkout ("new") and another ("old") served side by side under the same load,
    with the bare baselines of the same phases (the plain-WSGI floor for images); each round every
    target runs every phase once, the order reversed each round; the table shows medians."""
    runs: dict[tuple[str, str], list[PhaseResult]] = {}
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hype-bench.")))
        rng = np.random.default_rng(args.seed)
        pngs = root / "pngs"
        pngs.mkdir()
        for raw in _noise_pngs(32, args.image_size, rng, smooth=False):
            (pngs / raw.name).write_bytes(raw.data)
        targets: list[tuple[Target, list[tuple[str, str]]]] = []
        settings = {"new": (args.worker_class, args.workers, args.threads), "old": args.old_server}
        for kind in kinds:
            for label, code in (("new", None), ("old", args.against)):
                target = _start_hype(kind, root / f"hype-{kind}-{label}", args, stack, f"hype {kind} {label}", hype_phases,
                                     code, server=settings[label])
                targets.append((target, hype_phases))
        # the bare apps under the same settings as hype: under both sides' when the A/B is of settings
        labels = ["new", "old"] if settings["new"] != settings["old"] else ["new"]
        for kind, db, phases in ([] if args.no_bare else _bare_apps(kinds, wanted, {m for _, m in hype_phases},
                                                                    floor=True)):
            for label in labels:
                name = _bare_name(kind, db) + (f" {label}" if len(labels) > 1 else "")
                target = _start_bare(kind, db, root / f"{_bare_dir(kind, db)}-{label}", pngs, args, stack,
                                     settings[label], name)
                targets.append((target, phases))
        for round_ in range(args.rounds):
            print(f"round {round_ + 1}/{args.rounds}, load average {loadavg()}", flush=True)
            for target, phases in (targets if round_ % 2 == 0 else targets[::-1]):
                for result in bench_target(target, phases, args.requests, args.clients, args.warmup, args.seed + round_):
                    runs.setdefault((target.name, result.phase), []).append(result)
    print(f"\nserver CPU per request, ms: median of {args.rounds} rounds (each run) [PostgreSQL] {{nginx}}")
    for (name, phase), results in runs.items():
        cpu = [r.cpu_ms for r in results]
        extra = (f" [{np.median([r.db_cpu_ms for r in results]):.2f}]" if results[0].db_cpu_s else "") + (
            f" {{{np.median([r.front_cpu_ms for r in results]):.2f}}}" if results[0].front_cpu_s else "")
        p99 = np.median([r.percentile("image" if phase.startswith("image") else "answer", 99) for r in results])
        print(f"  {name:<22} {phase:<20} {np.median(cpu):6.3f}{extra}  ({', '.join(f'{c:.2f}' for c in cpu)})  "
              f"p99 {p99:.1f} ms")
    pairs = [(f"hype {kind}", kind) for kind in kinds] + [(f"bare {kind}", f"bare {kind}")
                                                         for kind in ("sqlite3", "orm", "orm postgres", "wsgi")]
    for prefix, label in pairs:
        for phase in sorted({p for (n, p) in runs if n == f"{prefix} new"}):
            new, old = runs.get((f"{prefix} new", phase)), runs.get((f"{prefix} old", phase))
            if new and old:
                ratios = [a.cpu_ms / b.cpu_ms for a, b in zip(new, old)]
                print(f"  {label} {phase}: new / old {np.median(ratios):.2f} (per round: "
                      f"{', '.join(f'{r:.2f}' for r in ratios)})")
    print(f"load average at end: {loadavg()}")
    return 1 if any(r.errors for results in runs.values() for r in results) else 0


def _bench_hype(kind: str, root: Path, args, phases, stack: ExitStack) -> list[PhaseResult]:
    with ExitStack() as inner:  # this server and its database go before the next kind's start
        target = _start_hype(kind, root / f"hype-{kind}", args, inner, f"hype {kind}", phases, cluster_stack=stack)
        return bench_target(target, phases, args.requests, args.clients, args.warmup, args.seed)


if __name__ == "__main__":
    sys.exit(main())
