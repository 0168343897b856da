"""Running the app: Flask's threaded server on one machine, gunicorn for production."""

from __future__ import annotations

from hype.config import Config


def serve(config: Config, *, host: str, port: int, production: bool, workers: int, threads: int = 2) -> None:
    if not production:
        from hype.app import create_app

        create_app(config).run(host=host, port=port, threaded=True, use_reloader=False)
        return
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

            # Each gunicorn worker has its own pool: workers x pool_size stays under the server's max.
            return create_app(config.with_overrides(extra={**config.extra, "pool_size": config.extra.get("pool_size", 10)}))

    _Gunicorn().run()
