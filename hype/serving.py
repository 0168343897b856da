"""Running the app: Flask's threaded server on one machine, gunicorn for production."""

from __future__ import annotations

from hype.config import Config


WORKER_CLASSES = ("sync", "gthread")


def worker_class_for(requested: str | None = None) -> str:
    """gunicorn's worker model: gthread, unless an experiment asks for sync.

    gunicorn's docs suggest the sync worker behind a buffering proxy, and gthread's poller and 2 threads
    passing the GIL around each database call cost context switches on every request. Measured behind
    nginx (experiments/bench_serving.py --against-worker-class, experiments/serving.md) sync cost more,
    not less (figures in serving.md's fourth pass), on the bare Flask apps too, so it is gunicorn's own
    cost: a sync worker has no keep-alive, so every request is a new connection from nginx, which wakes every idle process for one to accept it; the same requests
    also took 1.5-2.5x the wall time at 3 processes. One thread per gthread process instead of two
    measured the same within the noise. Without nginx, gthread's threads also keep one slow client
    from holding a whole process.
    """
    chosen = requested or "gthread"
    if chosen not in WORKER_CLASSES:
        raise ValueError(f"worker class is one of {', '.join(WORKER_CLASSES)}, not {chosen!r}")
    return chosen


def serve(config: Config, *, host: str, port: int, production: bool, workers: int, threads: int = 2,
          job_worker: bool = True, worker_class: str | None = None) -> None:
    """Production: gunicorn gthread, ``workers`` processes x ``threads`` threads (sync, one thread a
    process, only when ``worker_class`` asks: see worker_class_for).

    Few threads per process: a request is mostly Python (the GIL), so more threads only queue behind
    it (experiments/load_crowd.py, 2 cores, one saturated run each: 3 x 2 and 2 x 4 served the same,
    4 x 1 a seventh less). Each process keeps a pool of 10 PostgreSQL connections (+ 10 overflow), so
    the server needs max_connections >= workers x 20 beside its other clients; a smaller pool
    (`threads`) measured the same.

    Background jobs: Flask's server runs one job worker in its own process beside it (`job_worker`),
    so "Compute metrics" works out of the box; a process, because a job's numeric work would
    otherwise share the server's GIL and slow every request. Production runs `hype worker` itself.
    """
    from hype.accounts import warm_up

    warm_up()  # before serving: the first sign-in with an unknown address must not take longer
    if not production:
        from hype.app import create_app

        worker = start_worker_process(config) if job_worker else None
        try:
            create_app(config).run(host=host, port=port, threaded=True, use_reloader=False)
        finally:
            if worker is not None:
                worker.terminate()
                worker.join(10)
        return
    if not config.redis_url:
        import click

        click.echo(f"warning: HYPE_REDIS_URL is not set, so each of the {workers} server processes limits failed "
                   f"sign-ins on its own (up to {workers} times the limit); set it to share the counts.", err=True)
    from gunicorn.app.base import BaseApplication

    chosen = worker_class_for(worker_class)

    class _Gunicorn(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", chosen)
            self.cfg.set("threads", threads if chosen == "gthread" else 1)  # gunicorn turns sync with threads into gthread
            self.cfg.set("timeout", 60)
            self.cfg.set("graceful_timeout", 10)

        def load(self):
            from hype.app import create_app

            # Per thread: the image gate's and the usual answer's kept connections (hype.direct_sql) and
            # an ORM session's; the pool allows pool_size + as many again in overflow.
            pool_size = config.extra.get("pool_size", max(10, 2 * threads))
            app = create_app(config.with_overrides(extra={**config.extra, "pool_size": pool_size}))
            freeze_start_up_objects()
            return app

    _Gunicorn().run()


def freeze_start_up_objects() -> None:
    """Move everything a server process holds after start-up (modules, the app, its caches so far) out
    of the garbage collector's sight: none of it is ever garbage, and the collector's full passes
    would otherwise walk all of it again and again while serving (gc.freeze, as Python's docs suggest
    for long-lived server processes). In process, per answer: 0.07-0.15 ms less CPU on average
    (experiments/serving.md, sixth pass)."""
    import gc

    gc.collect()
    gc.freeze()


def _worker_main(config: Config) -> None:
    import os
    import signal

    from hype.jobs.queue import make_consumer

    os.nice(10)  # requests first: jobs take what CPU the server leaves
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's Ctrl-C reaches the whole group; the server stops us
    make_consumer(config, workers=1).run()


def start_worker_process(config: Config):
    """A `hype worker` in a child process (spawned: no inherited sockets or DB connections)."""
    import multiprocessing

    proc = multiprocessing.get_context("spawn").Process(target=_worker_main, args=(config,), name="hype-job-worker",
                                                        daemon=True)
    proc.start()
    return proc
