"""The index database: SQLite (WAL) by default, PostgreSQL for scale-out; Alembic migrations."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from domain.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x7E55E7A  # PostgreSQL advisory lock id: one migrator at a time
T = TypeVar("T")


class Database:
    """Reads are async; a write is one synchronous function run as one transaction.

    On SQLite the whole write runs in a worker thread on a plain sqlite3 connection (one thread
    hop instead of one per statement), queued in-process and taking the write lock up front
    (BEGIN IMMEDIATE). On PostgreSQL it runs on the async connection through `run_sync`.
    """

    def __init__(self, url: str, *, durable: bool = True) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
            self.reader = _sqlite_async_engine(url, durable=durable)
            self._sqlite_writer: Engine | None = _sqlite_writer(url, durable=durable)
        else:
            self.reader = create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
            self._sqlite_writer = None
        self._write_lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(settings.effective_database_url, durable=settings.fsync)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.reader.connect() as conn:
            yield conn

    async def write(self, work: Callable[..., T], *args: Any) -> T:
        """`work(connection, *args)` in one transaction, committed when it returns."""
        if self._sqlite_writer is None:
            async with self.reader.begin() as conn:
                return await conn.run_sync(work, *args)
        async with self._write_lock:  # writers queue here rather than spin on SQLITE_BUSY
            return await anyio.to_thread.run_sync(self._write_sqlite, work, args)

    def _write_sqlite(self, work: Callable[..., T], args: tuple[Any, ...]) -> T:
        assert self._sqlite_writer is not None
        with self._sqlite_writer.begin() as conn:
            return work(conn, *args)

    async def migrate(self) -> None:
        """Create or upgrade the schema to the newest migration; safe with several processes."""
        if self._sqlite_writer is None:
            async with self.reader.begin() as conn:
                await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK})
                await conn.run_sync(_upgrade)
            return
        await self.write(_upgrade)

    async def dispose(self) -> None:
        await self.reader.dispose()
        if self._sqlite_writer is not None:
            self._sqlite_writer.dispose()


def _upgrade(connection: Connection) -> None:
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per start is noise
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _sqlite_async_engine(url: str, *, durable: bool) -> AsyncEngine:
    engine = create_async_engine(url, connect_args={"timeout": 60})
    _configure_sqlite(engine.sync_engine, begin="BEGIN", durable=durable)
    return engine


def _sqlite_writer(url: str, *, durable: bool) -> Engine:
    sync_url = url.replace("sqlite+aiosqlite://", "sqlite+pysqlite://")
    engine = create_engine(sync_url, connect_args={"timeout": 60, "check_same_thread": False})
    _configure_sqlite(engine, begin="BEGIN IMMEDIATE", durable=durable)
    return engine


def _configure_sqlite(engine: Engine, *, begin: str, durable: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN below be the only one
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            # FULL: a commit survives power loss, as the fsynced files it indexes do
            "synchronous=FULL" if durable else "synchronous=NORMAL",
            "foreign_keys=ON",
            "busy_timeout=60000",
            "case_sensitive_like=ON",  # PS3.4 C.2.2.2.4: wildcard matching is case-sensitive
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)
