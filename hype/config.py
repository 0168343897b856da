"""Settings from the environment, read once at app/CLI start-up.

One frozen object so a test can build an app on its own data dir and database without touching
process-wide state.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000  # larger is treated as a decompression bomb


@dataclass(frozen=True)
class Config:
    data_dir: Path
    database_url: str
    secret_key: str
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_upload_bytes: int = 512 * 1024 * 1024
    testing: bool = False
    # The address workers and platforms reach this server at (https://..., behind a reverse proxy);
    # links, MTurk XML and platform listings use it. None: the address of each request.
    public_url: str | None = None
    # How many reverse proxies in front may set X-Forwarded-For/-Proto/-Host/-Prefix (0: trust none).
    trusted_proxies: int = 0
    # Below this base pay per hour the dashboard and `hype prolific/mturk create` warn (hype.effort).
    min_hourly_usd: float = 8.00
    # Folders researchers may import from in the dashboard (hype.server_folders); none by default.
    import_roots: tuple[Path, ...] = ()
    # Rate-limit storage shared by all server processes (HYPE_REDIS_URL); None = each process its own.
    redis_url: str | None = None
    # Behind the nginx that `hype nginx-config` configures: the client's address comes from
    # X-Forwarded-For (one proxy hop), and images go out as X-Accel-Redirect (hype.proxy).
    behind_nginx: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def image_store(self) -> Path:
        return self.data_dir / "images"

    @property
    def staging_dir(self) -> Path:
        return self.data_dir / "staging"

    @property
    def served_dir(self) -> Path:
        """Constant-size copies of pool images as workers receive them (see images.served_png)."""
        return self.data_dir / "served"

    @property
    def feature_cache_dir(self) -> Path:
        return self.data_dir / "features"

    def with_overrides(self, **changes: Any) -> "Config":
        return replace(self, **changes)


def default_data_dir() -> Path:
    return Path(os.environ.get("HYPE_DATA_DIR", "hype-data")).resolve()


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'hype.db'}"


def load_config(**overrides: Any) -> Config:
    """Read HYPE_* variables; keyword overrides win (used by tests and the CLI's --data-dir)."""
    data_dir = Path(overrides.pop("data_dir", None) or default_data_dir()).resolve()
    database_url = overrides.pop("database_url", None) or os.environ.get("HYPE_DATABASE_URL") or sqlite_url(data_dir)
    secret_key = overrides.pop("secret_key", None) or os.environ.get("HYPE_SECRET_KEY") or _persistent_secret(data_dir)
    env_ints = {
        "max_image_bytes": "HYPE_MAX_IMAGE_BYTES",
        "max_image_pixels": "HYPE_MAX_IMAGE_PIXELS",
        "max_upload_bytes": "HYPE_MAX_UPLOAD_BYTES",
    }
    values: dict[str, Any] = {}
    for name, var in env_ints.items():
        if var in os.environ:
            try:
                values[name] = int(os.environ[var])
            except ValueError as exc:
                raise ValueError(f"{var} must be an integer number of bytes/pixels, not {os.environ[var]!r}") from exc
    public = os.environ.get("HYPE_PUBLIC_URL", "").strip()
    if public:
        values["public_url"] = check_public_url(public)
    if "HYPE_TRUSTED_PROXIES" in os.environ:
        try:
            values["trusted_proxies"] = int(os.environ["HYPE_TRUSTED_PROXIES"])
        except ValueError as exc:
            raise ValueError(f"HYPE_TRUSTED_PROXIES must be a number of proxies (0, 1, ...), not {os.environ['HYPE_TRUSTED_PROXIES']!r}") from exc
    if "HYPE_MIN_HOURLY_USD" in os.environ:
        try:
            values["min_hourly_usd"] = float(os.environ["HYPE_MIN_HOURLY_USD"])
        except ValueError as exc:
            raise ValueError(f"HYPE_MIN_HOURLY_USD must be dollars per hour, not {os.environ['HYPE_MIN_HOURLY_USD']!r}") from exc
    if "HYPE_IMPORT_ROOTS" in os.environ:
        from hype.server_folders import parse_roots

        values["import_roots"] = parse_roots(os.environ["HYPE_IMPORT_ROOTS"])
    if os.environ.get("HYPE_REDIS_URL"):
        values["redis_url"] = os.environ["HYPE_REDIS_URL"]
    if "HYPE_BEHIND_NGINX" in os.environ:
        values["behind_nginx"] = os.environ["HYPE_BEHIND_NGINX"].strip().lower() in ("1", "true", "yes", "on")
    values.update(overrides)
    return Config(data_dir=data_dir, database_url=database_url, secret_key=secret_key, **values)


def check_public_url(url: str) -> str:
    """An absolute http(s) URL without query or fragment, kept without its trailing slash."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"HYPE_PUBLIC_URL must look like https://hype.example.org (optionally with a path), not {url!r}")
    return url.strip().rstrip("/")


def _persistent_secret(data_dir: Path) -> str:
    """A secret kept in the data dir, so sessions survive restarts without the user setting one."""
    path = data_dir / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(key)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        return key
