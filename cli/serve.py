"""`tessera serve`: migrate once, then run uvicorn with one or more worker processes."""

from __future__ import annotations

import asyncio
import os

import uvicorn

from domain.db import Database
from domain.settings import Settings


def serve(settings: Settings) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(_migrate(settings))
    os.environ.update(settings.to_env())  # each worker builds the same Settings from these
    print(
        f"Tessera serving DICOMweb at http://{settings.host}:{settings.port}/v2/ "
        f"(data in {settings.data_dir.resolve()}, index {_describe(settings)})",
        flush=True,
    )
    uvicorn.run(
        "api.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="warning",
        timeout_keep_alive=30,
    )
    return 0


async def _migrate(settings: Settings) -> None:
    db = Database.from_settings(settings)
    try:
        await db.migrate()
    finally:
        await db.dispose()


def _describe(settings: Settings) -> str:
    url = settings.effective_database_url
    return url.split("@")[-1] if "@" in url else url.split("///")[-1]
