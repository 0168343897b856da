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
    values.update(overrides)
    return Config(data_dir=data_dir, database_url=database_url, secret_key=secret_key, **values)


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
