"""Fixtures: a real SQLite and a real PostgreSQL index, a test client, pydicom's test files.

PostgreSQL comes from TESSERA_TEST_POSTGRES_URL (default: the local server's `test` database);
each pytest worker gets a database of its own, emptied between tests. Without a reachable
server the PostgreSQL variants are skipped with the reason shown, except under CI=true, where
a missing service is a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pydicom.data
import pytest
from litestar.testing import TestClient

from api.app import create_app
from domain.settings import Settings, normalize_database_url

POSTGRES_URL = os.environ.get("TESSERA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TEST_FILES = Path(pydicom.data.get_testdata_file("CT_small.dcm")).parent  # type: ignore[arg-type]
BACKENDS = ["sqlite", "postgresql"]


def dicom_file(name: str) -> Path:
    """A file from pydicom's own test data."""
    path = TEST_FILES / name
    assert path.exists(), path
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database for this pytest worker and run, dropped at the end of the session."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", uuid.uuid4().hex)[:12]
    name = f"tessera_test_{run}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    try:
        asyncio.run(_recreate(POSTGRES_URL, name))
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required under CI: {exc}")
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}")
    base = POSTGRES_URL.rsplit("/", 1)[0]
    yield normalize_database_url(f"{base}/{name}")
    asyncio.run(_drop(POSTGRES_URL, name))


async def _recreate(url: str, name: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop(url: str, name: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _empty(url: str) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        names = ", ".join(f'"{t["tablename"]}"' for t in tables if t["tablename"] != "alembic_version")
        if names:
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for one test on each index backend, with a data dir of its own."""
    database_url = None
    if request.param == "postgresql":
        database_url = request.getfixturevalue("postgres_url")
        asyncio.run(_empty(database_url))
    return Settings(data_dir=tmp_path / "data", database_url=database_url, fsync=False)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with TestClient(create_app(settings), base_url="http://testserver.local") as test_client:
        yield test_client
