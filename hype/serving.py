"""Running the app: Flask's threaded server on one machine, gunicorn for production."""

from __future__ import annotations

from hype.config import Config


def serve(config: Config, *, host: str, port: int, production: bool, workers: int, threads: int = 2) -> None:
    """Production: gunicorn gthread, ``workers`` processes x ``threads`` threads.

    Few threads per process: a request is mostly Python (the GIL), so more threads only queue behind
    it (experiments/load_crowd.py, 2 cores, one saturated run each: 3 x 2 and 2 x 4 served the same,
    4 x 1 a seventh less). Each process keeps a pool of 10 PostgreSQL connections (+ 10 overflow), so
    the server needs max_connections >= workers x 20 beside its other clients; a smaller pool
    (`threads`) measured the same.
    """
    from hype.accounts import warm_up

    warm_up()  # before serving: the first sign-in with an unknown address must not take longer
    if not production:
        from hype.app import create_app

        create_app(config).run(host=host, port=port, threaded=True, use_reloader=False)
        return
    if not config.redis_url:
        import click

        click.echo(f"warning: HYPE_REDIS_URL is not set, so each of the {workers} server processes limits failed "
                   f"sign-ins on its own (up to {workers} times the limit); set it to share the counts.", err=True)
    from gunicorn.app.base import BaseApplication

    class _Gunicorn(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", threads)
            self.cfg.set("timeout", 60)
            self.cfg.set("graceful_timeout", 10)

        def load(self):
            from hype.app import create_app

            pool_size = config.extra.get("pool_size", 10)
            return create_app(config.with_overrides(extra={**config.extra, "pool_size": pool_size}))

    _Gunicorn().run()
