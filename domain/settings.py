"""One frozen Settings, built once by each entry point and passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_MAX_REQUEST_BYTES = 4 * 1024**3  # 4 GiB


@dataclass(frozen=True)
class Settings:
    """Everything configurable; environment variables `TESSERA_*` map onto these fields."""

    data_dir: Path = Path("tessera-data")
    database_url: str | None = None
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    fsync: bool = True
    reindex_batch: int = 100  # instances per re-index transaction (extended query tags)
    reindex_lease_seconds: int = 30  # a crashed process's re-index is taken over after this
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def effective_database_url(self) -> str:
        """The configured database, or SQLite under the data dir (the embedded default)."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'index.db').resolve()}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def spool_dir(self) -> Path:
        """Uploads are spooled here, on the same file system as the blobs, so storing is a rename."""
        return self.data_dir / "spool"

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read `TESSERA_*` variables; unknown or malformed values raise a clear ValueError."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        if "TESSERA_DATA_DIR" in env:
            values["data_dir"] = Path(env["TESSERA_DATA_DIR"])
        if env.get("TESSERA_DATABASE_URL"):
            values["database_url"] = normalize_database_url(env["TESSERA_DATABASE_URL"])
        for name, key in (
            ("max_request_bytes", "TESSERA_MAX_REQUEST_BYTES"),
            ("port", "TESSERA_PORT"),
            ("workers", "TESSERA_WORKERS"),
            ("reindex_batch", "TESSERA_REINDEX_BATCH"),
            ("reindex_lease_seconds", "TESSERA_REINDEX_LEASE_SECONDS"),
        ):
            if key in env:
                values[name] = _positive_int(key, env[key])
        if "TESSERA_HOST" in env:
            values["host"] = env["TESSERA_HOST"]
        if "TESSERA_FSYNC" in env:
            values["fsync"] = env["TESSERA_FSYNC"].strip().lower() not in ("0", "false", "no", "off")
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The inverse of from_env, for handing settings to worker processes."""
        env = {
            "TESSERA_DATA_DIR": str(self.data_dir),
            "TESSERA_MAX_REQUEST_BYTES": str(self.max_request_bytes),
            "TESSERA_HOST": self.host,
            "TESSERA_PORT": str(self.port),
            "TESSERA_WORKERS": str(self.workers),
            "TESSERA_FSYNC": "1" if self.fsync else "0",
            "TESSERA_REINDEX_BATCH": str(self.reindex_batch),
            "TESSERA_REINDEX_LEASE_SECONDS": str(self.reindex_lease_seconds),
        }
        if self.database_url:
            env["TESSERA_DATABASE_URL"] = self.database_url
        return env


def normalize_database_url(url: str) -> str:
    """Accept plain `postgresql://` and `sqlite:///` URLs and pick the async drivers for them."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise ValueError(
        f"TESSERA_DATABASE_URL {url!r} is not supported: use postgresql://user@host:port/db "
        "or sqlite:///path/to/index.db"
    )


def _positive_int(key: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{key} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{key} must be positive, got {value}")
    return value
