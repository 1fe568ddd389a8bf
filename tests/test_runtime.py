"""Start-up: the schema is created, and uploads a crash left in the spool are swept."""

import asyncio
import os
import time
from pathlib import Path

from domain.runtime import STALE_SPOOL_SECONDS, Runtime
from domain.settings import Settings


def test_start_up_sweeps_stale_uploads_but_keeps_fresh_ones(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, fsync=False)
    settings.spool_dir.mkdir(parents=True)
    stale, fresh = settings.spool_dir / "part-stale", settings.spool_dir / "part-fresh"
    stale.write_bytes(b"left by a crash")
    fresh.write_bytes(b"another worker's upload in flight")
    old = time.time() - STALE_SPOOL_SECONDS - 60
    os.utime(stale, (old, old))

    async def start_and_stop() -> None:
        runtime = await Runtime.start(settings)
        await runtime.stop()

    asyncio.run(start_and_stop())
    assert not stale.exists()
    assert fresh.exists()
    assert (tmp_path / "index.db").exists()


def test_settings_come_from_tessera_environment_variables(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "TESSERA_DATA_DIR": str(tmp_path),
            "TESSERA_DATABASE_URL": "postgresql://someone@db:5432/tessera",
            "TESSERA_MAX_REQUEST_BYTES": "1048576",
            "TESSERA_FSYNC": "0",
        }
    )
    assert settings.data_dir == tmp_path
    assert settings.database_url == "postgresql+asyncpg://someone@db:5432/tessera"
    assert settings.max_request_bytes == 1048576
    assert settings.fsync is False
    assert Settings.from_env(settings.to_env()) == settings


def test_a_malformed_setting_is_a_clear_error() -> None:
    for env, message in (
        ({"TESSERA_MAX_REQUEST_BYTES": "lots"}, "TESSERA_MAX_REQUEST_BYTES must be a whole number"),
        ({"TESSERA_WORKERS": "0"}, "TESSERA_WORKERS must be positive"),
        ({"TESSERA_DATABASE_URL": "mysql://x/y"}, "is not supported"),
    ):
        try:
            Settings.from_env(env)
        except ValueError as exc:
            assert message in str(exc)
        else:
            raise AssertionError(f"{env} was accepted")
