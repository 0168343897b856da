"""Load benchmark: a simulated crowd against the production server, on SQLite and PostgreSQL in turn.

    python experiments/load_crowd.py                          # N = 50, 200, 500, 1000 on both databases
    python experiments/load_crowd.py --workers 200 --db sqlite --think-scale 0.3
    python experiments/load_crowd.py --nginx --app-servers 2 --db postgres   # the production topology
    python experiments/load_crowd.py --nginx --app-servers 2 --server-workers 2 --db postgres --own-postgres \
        --workers 100,200,300,400,1000 --stop-above-p99 100 --idle 10      # issue 18's sweep (serving.md)

For each (database, N): a fresh database and data dir, two load studies (HYPE-infinity and HYPE-time,
workers spread over both), `hype serve --production` on 127.0.0.1, N simulated workers doing whole
sessions (experiments/crowd_client.py), then the database check (experiments/crowd_setup.py): every
answer that got a 2xx stored exactly once with what was sent, none that got a 4xx stored, nothing
stored that was never sent, every session's answers a prefix of its plan. Exit status 1 if any check
fails or any worker did not finish.

Every run prints where the CPU went by process part (crowd_setup.cpu_parts) and ends with a Markdown row
per N (serving.md's tables); --split-cpu adds the app servers' CPU by endpoint, --idle the fixed cost per
second, --pages has the crowd load the pages as a browser does.

Latencies are measured by the clients, which share this machine's cores with the server: they include
the time a request waited for the client's own event loop, so they are upper bounds on the server's.
PostgreSQL: --postgres-url (or HYPE_TEST_POSTGRES_URL) names a server to create fresh databases on;
without either, a throwaway cluster is started from Debian's binaries.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crowd_client import CrowdLog, CrowdPlan, percentile_table, run_crowd_blocking  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from hype.db import scratch_postgres_database  # noqa: E402
from hype.web import request_cpu  # noqa: E402
from crowd_setup import (  # noqa: E402
    DatabaseCheck,
    Nginx,
    KERNEL,
    cpu_parts,
    cpu_seconds,
    descendants,
    postmaster_pid,
    Server,
    build_load_studies,
    check_database,
    load_server_config,
    throwaway_postgres,
    truth_by_token,
)


@dataclass
class LoadResult:
    database: str
    n_workers: int
    log: CrowdLog
    check: DatabaseCheck
    topology: str = ""
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds of each process tree during the crowd
    # --split-cpu: the app servers' CPU by endpoint (hype.web.request_cpu): name -> (requests, CPU seconds)
    by_endpoint: dict[str, tuple[int, float]] = field(default_factory=dict)
    # each process tree's parts (crowd_setup.cpu_parts): (tree, part) -> CPU seconds during the crowd
    by_part: dict[tuple[str, str], float] = field(default_factory=dict)
    # the same parts' CPU per second with the servers up and no crowd (--idle): the fixed cost
    idle_per_s: dict[tuple[str, str], float] = field(default_factory=dict)
    load_average: str = ""  # /proc/loadavg's 1, 5 and 15 minute figures as the crowd started

    @property
    def ok(self) -> bool:
        return self.check.ok and not self.log.unfinished and not self.log.unsettled

    @property
    def judgments_per_s(self) -> float:
        return len(self.log.acknowledged) / self.log.wall_s if self.log.wall_s else 0.0


@contextmanager
def fresh_database(kind: str, data_dir: Path, postgres_admin: str | None) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{data_dir / 'hype.db'}"
    else:
        assert postgres_admin, "PostgreSQL needs a server"
        with scratch_postgres_database(postgres_admin, prefix="hype_load") as url:
            yield url


def run_load(database_url: str, data_dir: Path, n_workers: int, *, server_workers: int = 3, server_threads: int = 2,
             think_scale: float = 1.0, ramp_s: float = 10.0, deadline_s: float = 900.0, image_size: int = 128,
             seed: int = 0, nginx: bool = False, app_servers: int = 1, split_cpu: bool = False,
             idle_s: float = 0.0, pages: bool = False) -> LoadResult:
    """One benchmark run on an empty database: studies, server(s), crowd, check.

    ``nginx``: the production topology, nginx in front of ``app_servers`` app servers (each
    server_workers x server_threads), images sent by nginx. The result has the CPU each server's
    processes (and PostgreSQL's, when it runs here) spent during the crowd; ``split_cpu``: also the
    app servers' CPU by endpoint, counted in the server processes (hype.web.request_cpu); ``idle_s``:
    first that long with the servers up and no crowd, to measure what every process costs per second
    doing nothing (gunicorn's wake-ups, PostgreSQL's background)."""
    config = load_server_config(data_dir, database_url)
    studies = build_load_studies(config, image_size=image_size, seed=seed)
    cpu_dir = data_dir / "request-cpu"
    env = {request_cpu.ENV_VAR: str(cpu_dir)} if split_cpu else {}
    with ExitStack() as stack:
        servers = [Server(config, workers=server_workers, threads=server_threads, behind_nginx=nginx, env=env)
                   for _ in range(app_servers if nginx else 1)]
        for server in servers:
            server.start()
            stack.callback(server.stop)
        base_url = servers[0].base_url
        if nginx:
            front = Nginx(config, [f"127.0.0.1:{server.port}" for server in servers])
            front.start()
            stack.callback(front.stop)
            base_url = front.base_url
        oracle = truth_by_token(database_url)
        stack.callback(oracle.dispose)
        processes = {f"app server {k + 1}": server.process.pid for k, server in enumerate(servers)}
        if nginx:
            processes["nginx"] = front.process.pid
        postgres = postmaster_pid(make_url(database_url).port or 5432) if not database_url.startswith("sqlite") else None
        if postgres:
            processes["PostgreSQL"] = postgres
        processes["crowd client"] = os.getpid()
        database = make_url(database_url).database if postgres else None

        def parts() -> dict[tuple[str, str], float]:
            return {(name, part): seconds for name, pid in processes.items()
                    for part, seconds in cpu_parts(_part_kind(name), pid, database=database).items()}

        idle = {}
        if idle_s > 0:  # the fixed cost: every process with nobody working, for idle_s seconds
            parts_before, begun = parts(), time.monotonic()
            time.sleep(idle_s)
            idle_after = parts()
            idle_wall = time.monotonic() - begun
            idle = {key: (seconds - parts_before.get(key, 0.0)) / idle_wall for key, seconds in idle_after.items()}
        trees = {name: descendants(pid) if name != "crowd client" else [pid] for name, pid in processes.items()}
        before = {name: cpu_seconds(pids) for name, pids in trees.items()}
        parts_before = parts()
        counted_before = request_cpu.read_totals(cpu_dir) if split_cpu else {}
        plan = CrowdPlan(base_url=base_url, slugs=tuple(s.slug for s in studies), n_workers=n_workers,
                         ramp_s=ramp_s, think_scale=think_scale, deadline_s=deadline_s, seed=seed, pages=pages)
        load_average = _load_average()
        log = run_crowd_blocking(plan, oracle)
        # the trees again: PostgreSQL starts a backend per new connection during the crowd
        after = {name: trees[name] if name == "crowd client" else descendants(processes[name]) for name in trees}
        cpu = {name: cpu_seconds(after[name]) - before[name] for name in trees}
        parts_after = parts()
        by_part = {key: seconds - parts_before.get(key, 0.0) for key, seconds in parts_after.items()}
    by_endpoint = {}
    if split_cpu:  # the servers have stopped: each process wrote its last totals on the way out
        counted = request_cpu.read_totals(cpu_dir)
        for name, entry in counted.items():
            old = counted_before.get(name, {"requests": 0, "cpu_s": 0.0})
            by_endpoint[name] = (int(entry["requests"] - old["requests"]), entry["cpu_s"] - old["cpu_s"])
    check = check_database(database_url, [s.study_id for s in studies], log.acknowledged, log.refused,
                           [*log.unsettled, *log.abandoned])
    kind = "sqlite" if database_url.startswith("sqlite") else "postgres"
    topology = f" via nginx, {len(servers)} app servers x {server_workers} x {server_threads}" if nginx else ""
    return LoadResult(kind, n_workers, log, check, topology, cpu, by_endpoint, by_part, idle, load_average)


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _part_kind(name: str) -> str:
    return ("app" if name.startswith("app server") else "postgres" if name == "PostgreSQL" else "nginx" if name == "nginx"
            else "process")


def print_result(result: LoadResult) -> None:
    log = result.log
    print(f"\n== {result.database}{result.topology}, {result.n_workers} workers (load average {result.load_average}): {len(log.acknowledged)} judgments in {log.wall_s:.1f} s "
          f"= {result.judgments_per_s:.1f} judgments/s; sessions finished {len(log.final_stage)}/{result.n_workers}")
    print(f"{'endpoint':<13}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for endpoint, n, p50, p95, p99, top in percentile_table(log):
        print(f"{endpoint:<13}{n:>9}{p50:>9.1f}{p95:>9.1f}{p99:>9.1f}{top:>9.1f}")
    if result.cpu_s:
        n = max(1, len(log.acknowledged))
        print("CPU during the crowd (s; ms per judgment): " + ", ".join(
            f"{name} {seconds:.1f} ({seconds * 1000 / n:.2f})" for name, seconds in result.cpu_s.items()))
    if result.by_part:
        print_cpu_parts(result)
    if result.by_endpoint:
        print_cpu_split(result)
    errors = ", ".join(f"{endpoint} {what} x{n}" for (endpoint, what), n in sorted(log.errors.items())) or "none"
    print(f"errors (retried or final): {errors}")
    for line in log.unfinished[:5]:
        print(f"  unfinished: {line}")
    print(f"database check: {'PASS' if result.check.ok else 'FAIL'} - {result.check.summary()}")
    for name in ("missing", "duplicated", "refused_but_stored", "unexplained", "out_of_order"):
        for line in getattr(result.check, name)[:5]:
            print(f"  {name}: {line}")


def _cpu_ms(result: LoadResult, *trees: str) -> float:
    """ms of CPU per judgment of these process trees. PostgreSQL: this run's backends and the cluster's
    background work, not other databases' backends nor backends that exited, which on a shared
    cluster are other jobs' (this run's connections are pooled and live through the crowd)."""
    n = max(1, len(result.log.acknowledged))
    total = 0.0
    for tree in trees:
        if tree == "PostgreSQL" and result.by_part:
            total += sum(s for (t, part), s in result.by_part.items()
                         if t == tree and part in ("backends of this run", "background"))
        else:
            total += result.cpu_s.get(tree, 0.0)
    return total * 1000 / n


def print_summary(results: list[LoadResult]) -> None:
    """One Markdown row per run: what experiments/serving.md's sweep tables hold."""
    print("| workers | judgments/s | answer p50 / p95 / p99 (ms) | image p99 (ms) | CPU per judgment (ms): app servers "
          "| PostgreSQL | crowd client | nginx | load average at the start | database check |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in results:
        rows = {row[0]: row for row in percentile_table(r.log)}
        answer, image = rows.get("answer"), rows.get("image")
        p50, p95, p99 = (answer[2], answer[3], answer[4]) if answer else (float("nan"),) * 3
        apps = [name for name in r.cpu_s if name.startswith("app server")]
        app_ms = " + ".join(f"{_cpu_ms(r, name):.2f}" for name in apps)
        check = f"{'pass' if r.ok else 'FAIL'} ({r.check.stored:,} stored{', errors ' + str(sum(r.log.errors.values())) if r.log.errors else ''})"
        print(f"| {r.n_workers} | {r.judgments_per_s:.1f} | {p50:.0f} / {p95:.0f} / **{p99:.0f}** | "
              f"{image[4] if image else float('nan'):.0f} | {app_ms} | {_cpu_ms(r, 'PostgreSQL'):.2f} | "
              f"{_cpu_ms(r, 'crowd client'):.2f} | {_cpu_ms(r, 'nginx'):.2f} | {r.load_average} | {check} |")


def answer_p99(result: LoadResult) -> float:
    answer = next((row for row in percentile_table(result.log) if row[0] == "answer"), None)
    return answer[4] if answer else float("nan")


def print_cpu_parts(result: LoadResult) -> None:
    """Each process tree's CPU by part (crowd_setup.cpu_parts) per judgment; with --idle, also what the
    part costs per second with nobody working, and that fixed cost spread over this run's judgments."""
    n = max(1, len(result.log.acknowledged))
    idle = result.idle_per_s
    print("CPU by process part:" + (" (idle: ms of CPU per second with no crowd; fixed: that rate over this run, "
                                    "per judgment)" if idle else ""))
    print(f"  {'part':<52}{'CPU s':>8}{'ms per judgment':>16}" + (f"{'idle ms/s':>11}{'fixed ms/judgment':>19}" if idle else ""))
    for (tree, part), seconds in result.by_part.items():
        line = f"  {tree + ': ' + part:<52}{seconds:>8.2f}{seconds * 1000 / n:>16.2f}"
        if idle:
            rate = idle.get((tree, part), 0.0)
            line += f"{rate * 1000:>11.2f}{rate * result.log.wall_s * 1000 / n:>19.2f}"
        print(line)


def print_cpu_split(result: LoadResult) -> None:
    """The app servers' CPU by endpoint (thread CPU inside each request), and what the server
    processes spent outside requests (gunicorn's HTTP handling, polling): their /proc CPU less the sum."""
    n = max(1, len(result.log.acknowledged))
    app_cpu = sum(s for name, s in result.cpu_s.items() if name.startswith("app server"))
    naming = result.by_endpoint.get("(naming)", (0, 0.0))[1]
    rows = sorted(((name, k, s) for name, (k, s) in result.by_endpoint.items() if name != "(naming)"),
                  key=lambda row: -row[2])
    inside = sum(s for _, _, s in rows)
    requests = sum(k for _, k, _ in rows)
    print(f"app servers' CPU by endpoint ({app_cpu:.1f} s in all = {app_cpu * 1000 / n:.2f} ms per judgment):")
    print(f"  {'endpoint':<34}{'requests':>9}{'per judgment':>13}{'ms each':>9}{'ms per judgment':>16}{'share':>7}")
    for name, k, s in rows:
        print(f"  {name:<34}{k:>9}{k / n:>13.2f}{s * 1000 / max(1, k):>9.2f}{s * 1000 / n:>16.2f}{s / app_cpu:>7.0%}")
    outside = app_cpu - inside - naming
    print(f"  {'outside requests (gunicorn, idle)':<34}{requests:>9}{requests / n:>13.2f}{outside * 1000 / max(1, requests):>9.2f}"
          f"{outside * 1000 / n:>16.2f}{outside / app_cpu:>7.0%}")
    print(f"  {'(the counter itself)':<34}{'':>9}{'':>13}{'':>9}{naming * 1000 / n:>16.2f}{naming / app_cpu:>7.0%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--workers", default="50,200,500,1000", help="comma-separated crowd sizes")
    parser.add_argument("--server-workers", type=int, default=3, help="gunicorn processes")
    parser.add_argument("--server-threads", type=int, default=2, help="threads per gunicorn process")
    parser.add_argument("--nginx", action="store_true",
                        help="the production topology: nginx in front (hype nginx-config), images sent by nginx")
    parser.add_argument("--app-servers", type=int, default=2, help="with --nginx: app servers behind it")
    parser.add_argument("--think-scale", type=float, default=1.0, help="1 = a person's pace")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which workers arrive")
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds before clients stop retrying")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--postgres-url", default=os.environ.get("HYPE_TEST_POSTGRES_URL"))
    parser.add_argument("--own-postgres", action="store_true",
                        help="a throwaway PostgreSQL cluster of the run's own even when HYPE_TEST_POSTGRES_URL is set, "
                             "so nothing else uses it while it is measured")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stop-above-p99", type=float, default=None, metavar="MS",
                        help="a sweep: no larger N once an N's answer p99 is above this (ms)")
    parser.add_argument("--split-cpu", action="store_true",
                        help="count the app servers' CPU by endpoint inside the server processes (hype.web.request_cpu)")
    parser.add_argument("--pages", action="store_true",
                        help="the crowd loads the pages too (start page, each stage's page, its stylesheet and script, "
                             "a trial page's progress), as a browser does; off: the JSON API and the images only")
    parser.add_argument("--idle", type=float, default=0.0, metavar="S",
                        help="before each crowd, S seconds with the servers up and nobody working: each process's fixed cost")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    unknown = set(kinds) - {"sqlite", "postgres"}
    if unknown:
        parser.error(f"unknown database kind(s): {', '.join(sorted(unknown))}")
    sizes = [int(n) for n in args.workers.split(",")]
    print(f"load average at the start: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}", flush=True)
    results = []
    with ExitStack() as stack:
        admin = None if args.own_postgres else args.postgres_url
        if "postgres" in kinds and not admin:
            admin = stack.enter_context(throwaway_postgres())
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hype-load.")))
        for kind in kinds:
            for n in sizes:
                data_dir = root / f"{kind}-{n}"
                with fresh_database(kind, data_dir, admin) as url:
                    result = run_load(url, data_dir, n, server_workers=args.server_workers,
                                      server_threads=args.server_threads, think_scale=args.think_scale,
                                      ramp_s=args.ramp, deadline_s=args.deadline, image_size=args.image_size,
                                      seed=args.seed, nginx=args.nginx, app_servers=args.app_servers,
                                      split_cpu=args.split_cpu, idle_s=args.idle, pages=args.pages)
                print_result(result)
                results.append(result)
                if args.stop_above_p99 is not None and answer_p99(result) > args.stop_above_p99:
                    print(f"answer p99 {answer_p99(result):.0f} ms > {args.stop_above_p99:.0f} ms: no larger N")
                    break
    print("\nsummary")
    print(f"load average at the end: {_load_average()}")
    print_summary(results)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
