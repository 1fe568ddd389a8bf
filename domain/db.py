"""The index database: SQLite (WAL) by default, PostgreSQL for scale-out; Alembic migrations."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from domain.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x7E55E7A  # PostgreSQL advisory lock id: one migrator at a time


class Database:
    """Engines for reading and writing; SQLite writers take the write lock up front."""

    def __init__(self, url: str, *, durable: bool = True) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
            self.reader = _sqlite_engine(url, begin="BEGIN", durable=durable)
            self.writer = _sqlite_engine(url, begin="BEGIN IMMEDIATE", durable=durable)
        else:
            self.reader = self.writer = create_async_engine(
                url, pool_size=10, max_overflow=20, pool_pre_ping=True
            )
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(settings.effective_database_url, durable=settings.fsync)

    @property
    def insert(self) -> Any:
        """The dialect's INSERT, which knows ON CONFLICT."""
        return sqlite.insert if self.is_sqlite else postgresql.insert

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.reader.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction; SQLite writers queue in-process rather than spin on SQLITE_BUSY."""
        if self._write_lock is None:
            async with self.writer.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.writer.begin() as conn:
            yield conn

    async def migrate(self) -> None:
        """Create or upgrade the schema to the newest migration; safe with several processes."""
        async with self.writer.begin() as conn:
            if not self.is_sqlite:
                await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK})
            await conn.run_sync(_upgrade)

    async def dispose(self) -> None:
        await self.reader.dispose()
        if self.writer is not self.reader:
            await self.writer.dispose()


def _upgrade(connection: Connection) -> None:
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per start is noise
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _sqlite_engine(url: str, *, begin: str, durable: bool) -> AsyncEngine:
    engine = create_async_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine.sync_engine, "connect")
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

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)

    return engine
