"""What the load benchmark and the crash test stand on: a load-sized study, the production server in
its own process group (so `kill -9` takes every gunicorn process at once), a fresh database on either
backend, and the database check that decides whether any answer was lost or stored twice.

Nothing here is timed; experiments/load_crowd.py prints the figures.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from sqlalchemy import func, select

from hype.config import Config, load_config
from hype.db import make_engine, make_session_factory, transaction
from hype.images import RawFile
from hype.migrate import upgrade
from hype.models import Assignment, Judgment, Trial

# Short enough that a session is a few minutes of think time, long enough to exercise every stage:
# qualification, the task, HYPE-time's staircases and stage changes.
LOAD_SETTINGS: dict[str, dict] = {
    "hype-infinity": {"qualification": {"n_real": 5, "n_fake": 5, "pass_real": 0.6, "pass_fake": 0.6},
                      "infinity": {"n_real": 15, "n_fake": 15}},
    "hype-time": {"qualification": {"n_real": 5, "n_fake": 5, "pass_real": 0.6, "pass_fake": 0.6},
                  "time": {"n_blocks": 2, "trials_per_block": 20}},
}
LOAD_MODELS = ("alpha", "beta")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- databases -----------------------------------------------------------------------------------------


@contextmanager
def throwaway_postgres(port: int | None = None) -> Iterator[str]:
    """A private PostgreSQL cluster on 127.0.0.1 (Debian's binaries; as root it runs as `postgres`),
    for running the benchmark outside the test suite, which starts its own. On a free port unless
    one is given, so two benchmarks at once (or a cluster left behind) do not collide."""
    port = port or free_port()
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not bins:
        raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql: pass --postgres-url")
    pgbin = bins[-1].parent
    root = Path(tempfile.mkdtemp(prefix="hype-load-pg."))
    run_as: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    try:
        subprocess.run([*run_as, str(pgbin / "initdb"), "-D", str(data), "-U", "hype", "-A", "trust"], check=True,
                       stdout=subprocess.DEVNULL)
        options = f"-h 127.0.0.1 -p {port} -k {root} -c max_connections=300 -c shared_buffers=256MB"
        subprocess.run([*run_as, str(pgbin / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o", options,
                        "start"], check=True, stdout=subprocess.DEVNULL)
    except BaseException:  # nothing left behind by a cluster that did not start
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        yield f"postgresql+psycopg://hype@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run_as, str(pgbin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)


# -- the study ---------------------------------------------------------------------------------------


def _noise_pngs(n: int, size: int, rng: np.random.Generator, *, smooth: bool) -> list[RawFile]:
    from PIL import Image as PILImage

    files = []
    for k in range(n):
        pixels = rng.integers(0, 256, size=(size, size, 3)).astype(np.float64)
        if smooth:
            pixels = (pixels + np.roll(pixels, 1, 0) + np.roll(pixels, 1, 1)) / 3
        buf = io.BytesIO()
        PILImage.fromarray(pixels.astype(np.uint8)).save(buf, format="PNG")
        files.append(RawFile(f"img{k:04d}.png", buf.getvalue()))
    return files


@dataclass(frozen=True)
class LoadStudy:
    study_id: int
    slug: str
    mode: str


def build_load_studies(config: Config, *, image_size: int = 128, seed: int = 11,
                       modes: tuple[str, ...] = ("hype-infinity", "hype-time"),
                       settings_by_mode: dict[str, dict] | None = None) -> list[LoadStudy]:
    """One published study per mode, open to any number of workers, on a migrated database.
    ``settings_by_mode`` replaces LOAD_SETTINGS (80 images per pool bound what a session can draw)."""
    from hype.studies import create_study, import_images, publish_study

    config.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(config.database_url)
    upgrade(engine)
    rng = np.random.default_rng(seed)
    built = []
    try:
        with transaction(make_session_factory(engine)) as session:
            for mode in modes:
                settings = {**(settings_by_mode or LOAD_SETTINGS)[mode], "evaluators_per_model": 100_000}
                study = create_study(session, name=f"load {mode}", mode=mode, seed=seed, settings=settings)
                import_images(session, config, study, _noise_pngs(80, image_size, rng, smooth=False), pool="real")
                for name in LOAD_MODELS:
                    import_images(session, config, study, _noise_pngs(80, image_size, rng, smooth=True),
                                  pool="fake", model_name=name)
                publish_study(session, config, study)
                session.flush()
                built.append(LoadStudy(study.id, study.slug, mode))
    finally:
        engine.dispose()
    return built


# -- the server ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`hype serve --production` (gunicorn) on 127.0.0.1 in a process group of its own."""

    def __init__(self, config: Config, *, workers: int, threads: int = 2, port: int | None = None,
                 log_path: Path | None = None, behind_nginx: bool = False, code_dir: Path | None = None,
                 env: dict[str, str] | None = None, worker_class: str | None = None):
        """``code_dir``: run hype from that checkout (e.g. main before a change, for an A/B run);
        ``env``: variables added to the server's environment; ``worker_class``: gunicorn's sync or
        gthread (default: what `hype serve` chooses, gthread)."""
        self.worker_class = worker_class
        self.config = config
        self.code_dir = code_dir
        self.env = env or {}
        self.workers = workers
        self.threads = threads
        self.port = port or free_port()
        self.log_path = log_path or config.data_dir / f"server-{self.port}.log"
        self.behind_nginx = behind_nginx
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> None:
        command = [sys.executable, "-c", "from hype.cli import main; main()",
                   "--data-dir", str(self.config.data_dir), "--database-url", self.config.database_url,
                   "serve", "--production", "--workers", str(self.workers), "--threads", str(self.threads),
                   "--port", str(self.port), *(["--behind-nginx"] if self.behind_nginx else []),
                   *(["--worker-class", self.worker_class] if self.worker_class else [])]
        log = open(self.log_path, "ab")
        env, cwd = self.python_env()
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env,
                                        cwd=cwd)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.base_url + "/api/openapi.json", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"server did not answer within {timeout_s:.0f} s; see {self.log_path}")

    def python_env(self) -> tuple[dict[str, str], str | None]:
        """The server's environment and working directory. ``python -c`` puts the working directory
        first on sys.path, ahead of PYTHONPATH: run from a checkout, the server imported that
        checkout's hype whatever ``code_dir`` said, so an A/B run from the repository served the
        same code on both sides. The server now runs in ``code_dir``."""
        env = {**os.environ, **self.env, "HYPE_SECRET_KEY": self.config.secret_key}
        if self.code_dir is None:
            return env, None
        code_dir = Path(self.code_dir).resolve()
        env["PYTHONPATH"] = str(code_dir)
        return env, str(code_dir)

    def kill(self) -> None:
        """SIGKILL to the whole group: the gunicorn arbiter and every worker die mid-request."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


class Nginx:
    """Debian's nginx in front of app servers, with the config `hype nginx-config --standalone` writes,
    in its own folder and process group; the app servers must run with behind_nginx."""

    def __init__(self, config: Config, upstreams: list[str], *, port: int | None = None):
        self.config = config
        self.upstreams = upstreams
        self.port = port or free_port()
        self.prefix = config.data_dir / f"nginx-{self.port}"
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise RuntimeError("nginx is not installed (Debian: apt-get install nginx)")
        conf = self.prefix / "nginx.conf"
        command = [sys.executable, "-c", "from hype.cli import main; main()", "--data-dir", str(self.config.data_dir),
                   "--database-url", self.config.database_url, "nginx-config", "--listen", f"127.0.0.1:{self.port}",
                   "--standalone", str(self.prefix), "--output", str(conf)]
        for upstream in self.upstreams:
            command += ["--upstream", upstream]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        log = open(self.prefix / "stderr.log", "ab")
        self.process = subprocess.Popen([binary, "-p", str(self.prefix), "-c", str(conf), "-e", "stderr", "-g", "daemon off;"],
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}; see {self.prefix / 'stderr.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen within {timeout_s:.0f} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGQUIT)  # graceful: finish the requests in flight
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def load_server_config(data_dir: Path, database_url: str) -> Config:
    return load_config(data_dir=data_dir, database_url=database_url, secret_key=secrets.token_hex(16))


# -- CPU of a process tree, from /proc (what the benchmarks count as the server's) ----------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from 3 (state) on; the name may hold spaces


def descendants(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes (all their threads, and their children that have exited)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields:
            # utime, stime, and cutime, cstime: what its children that have exited spent (a PostgreSQL
            # backend whose connection closed), fields 14-17 of stat
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / CLK_TCK


def _thread_cpu(pid: int) -> dict[int, tuple[float, float]]:
    """User and system CPU seconds of each live thread of ``pid`` (tid -> (user, system))."""
    out = {}
    try:
        tids = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return out
    for tid in tids:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        out[tid] = (int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK)
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


KERNEL = "(of it in the kernel)"


def cpu_parts(kind: str, root: int, *, database: str | None = None) -> dict[str, float]:
    """CPU seconds so far of the parts of one process tree, to say where a crowd's CPU went:

    - ``app``: gunicorn's arbiter (``root``); the workers' main threads (gunicorn's poller: accept,
      keep-alive bookkeeping, the heartbeat); the workers' other threads (the requests: Flask and
      gunicorn's HTTP parsing and writing around it).
    - ``postgres``: the backends connected to ``database``; other backends (other users of a shared
      cluster); the background processes (checkpointer, WAL writer, autovacuum, ...); backends that
      have exited (the postmaster's children's CPU).
    - ``nginx``: the master; the workers.
    - ``process`` (one process, e.g. the crowd client): its main thread; its other threads, those
      that have ended included (the crowd's event loop runs in a thread of its own).
    And KERNEL: the part of the tree's whole that was system time (socket I/O, wake-ups, fsync).
    Parts are cumulative, so a caller takes differences; in ``app`` a thread that ends between two
    readings takes its CPU with it (gunicorn's threads live as long as their process).
    """
    parts: dict[str, float] = {KERNEL: 0.0}

    def add(name: str, cpu: tuple[float, float]) -> None:
        parts[name] = parts.get(name, 0.0) + cpu[0] + cpu[1]
        parts[KERNEL] += cpu[1]

    def whole(pid: int) -> tuple[float, float]:
        threads = _thread_cpu(pid).values()
        return sum(u for u, _ in threads), sum(k for _, k in threads)

    if kind == "app":
        add("arbiter", whole(root))
        for pid in descendants(root)[1:]:
            for tid, cpu in _thread_cpu(pid).items():
                add("workers' main threads (poller)" if tid == pid else "workers' request threads", cpu)
    elif kind == "postgres":
        fields = _stat(root)
        if fields:
            add("exited backends", (int(fields[13]) / CLK_TCK, int(fields[14]) / CLK_TCK))
            add("background", (int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK))  # the postmaster itself
        for pid in descendants(root)[1:]:
            words = _cmdline(pid).split()
            is_backend = len(words) >= 4 and ("(" in words[3] or words[3] == "[local]")
            if is_backend and database and words[2] == database:
                add("backends of this run", whole(pid))
            elif is_backend:
                add("other backends", whole(pid))
            else:
                add("background", whole(pid))
    elif kind == "nginx":
        add("master", whole(root))
        for pid in descendants(root)[1:]:
            add("workers", whole(pid))
    else:
        fields = _stat(root)
        main = _thread_cpu(root).get(root, (0.0, 0.0))
        add("main thread", main)
        if fields:  # the process's own figures keep the CPU of threads that have ended
            add("other threads", (int(fields[11]) / CLK_TCK - main[0], int(fields[12]) / CLK_TCK - main[1]))
    return parts


def postmaster_pid(port: int) -> int | None:
    """The PostgreSQL server listening on ``port`` (its command line names the port)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"postgres") and b"-p" in argv and str(port).encode() in argv:
            return int(entry.name)
    return None


# -- the check -------------------------------------------------------------------------------------------


@dataclass
class AnswerRecord:
    """What the client knows of one answer it sent: its session, key, trial and response."""

    token: str
    key: str
    trial: str
    judged_fake: bool


@dataclass
class DatabaseCheck:
    stored: int = 0
    acknowledged: int = 0
    missing: list[str] = field(default_factory=list)  # acknowledged, not stored (or stored differently)
    duplicated: list[str] = field(default_factory=list)  # one trial or key stored more than once
    refused_but_stored: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)  # stored, never sent or never settled by the client
    out_of_order: list[str] = field(default_factory=list)  # a session's answers are not a prefix of its plan
    stages: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicated or self.refused_but_stored or self.unexplained or self.out_of_order)

    def summary(self) -> str:
        parts = [f"stored {self.stored}", f"acknowledged {self.acknowledged}", f"missing {len(self.missing)}",
                 f"duplicated {len(self.duplicated)}", f"refused-but-stored {len(self.refused_but_stored)}",
                 f"unexplained {len(self.unexplained)}", f"out-of-order {len(self.out_of_order)}"]
        stages = ", ".join(f"{k} {v}" for k, v in sorted(self.stages.items()))
        return "; ".join(parts) + f" | sessions: {stages}"


def check_database(database_url: str, study_ids: list[int], acknowledged: list[AnswerRecord],
                   refused: list[AnswerRecord], unsettled: list[AnswerRecord]) -> DatabaseCheck:
    """Every acknowledged answer stored exactly once with what was sent; no refused answer stored;
    nothing stored that the client never sent; each session's answers fill its plan in order.

    "Stored twice" is also what the schema forbids (judgments.trial_id and idempotency_key are
    unique); it is checked anyway, so that a schema change cannot make this check blind to it.

    ``unsettled`` answers (the client gave up without a reply) may or may not be stored; they are the
    only ones allowed to be either.
    """
    engine = make_engine(database_url)
    result = DatabaseCheck(acknowledged=len(acknowledged))
    try:
        with make_session_factory(engine)() as session:
            rows = session.execute(
                select(Assignment.token, Assignment.id, Judgment.idempotency_key, Trial.image_token, Judgment.judged_fake,
                       Judgment.trial_id)
                .join(Judgment, Judgment.assignment_id == Assignment.id)
                .join(Trial, Trial.id == Judgment.trial_id)
                .where(Assignment.study_id.in_(study_ids))
            ).all()
            result.stored = len(rows)
            stored: dict[tuple[str, str], list[tuple[str, bool]]] = {}
            per_trial = Counter(row.trial_id for row in rows)
            result.duplicated += [f"trial {t} judged {n} times" for t, n in per_trial.items() if n > 1]
            for row in rows:
                key = row.idempotency_key.split(":", 1)[1]
                stored.setdefault((row.token, key), []).append((row.image_token, bool(row.judged_fake)))
            result.duplicated += [f"{tok[:8]}:{key} stored {len(v)} times" for (tok, key), v in stored.items() if len(v) > 1]
            for answer in acknowledged:
                got = stored.get((answer.token, answer.key))
                if got != [(answer.trial, answer.judged_fake)]:
                    result.missing.append(f"{answer.token[:8]}:{answer.key} -> {got}")
            for answer in refused:
                if (answer.token, answer.key) in stored:
                    result.refused_but_stored.append(f"{answer.token[:8]}:{answer.key}")
            known = {(a.token, a.key) for a in [*acknowledged, *unsettled]}
            result.unexplained = [f"{tok[:8]}:{key}" for tok, key in stored if (tok, key) not in known]
            result.out_of_order = _gaps(session, study_ids)
            stages = session.execute(
                select(Assignment.stage, func.count()).where(Assignment.study_id.in_(study_ids)).group_by(Assignment.stage)
            ).all()
            result.stages = Counter({stage: int(n) for stage, n in stages})
    finally:
        engine.dispose()
    return result


def _gaps(session, study_ids: list[int]) -> list[str]:
    """Sessions whose answered trials are not the first k of each phase (an answer skipped or lost)."""
    rows = session.execute(
        select(Trial.assignment_id, Trial.phase, Trial.position, Judgment.id.is_not(None))
        .outerjoin(Judgment, Judgment.trial_id == Trial.id)
        .join(Assignment, Assignment.id == Trial.assignment_id)
        .where(Assignment.study_id.in_(study_ids))
        .order_by(Trial.assignment_id, Trial.phase, Trial.position)
    ).all()
    bad, seen_gap = set(), {}
    for assignment_id, phase, _position, answered in rows:
        slot = (assignment_id, phase)
        if not answered:
            seen_gap[slot] = True
        elif seen_gap.get(slot):
            bad.add(f"assignment {assignment_id} {phase}")
    return sorted(bad)


def truth_by_token(database_url: str):
    """The client's oracle: a session's trials -> is_fake, read from the database once per session (the
    API never tells; the simulated observer needs the truth to answer like a person of given skill)."""
    engine = make_engine(database_url, pool_size=4)
    factory = make_session_factory(engine)

    def lookup(token: str) -> dict[str, bool]:
        with factory() as session:
            rows = session.execute(
                select(Trial.image_token, Trial.is_fake).join(Assignment, Assignment.id == Trial.assignment_id)
                .where(Assignment.token == token)
            ).all()
        return {image_token: bool(is_fake) for image_token, is_fake in rows}

    lookup.dispose = engine.dispose  # type: ignore[attr-defined]
    return lookup
