"""The change feed: every create and delete, in commit order, written with the change itself.

Readers page by sequence (`offset` = the last sequence seen) and must never miss an entry.
On PostgreSQL a sequence value is allocated at insert but becomes visible at commit, so two
transactions could commit out of order and a reader could pass over the late one. Each writer
therefore takes a transaction-level advisory lock just before it appends its entries: the
appends, and so the sequences, are serialized with the commits. SQLite has one writer anyway.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, Table, insert, select, text

from domain.db import Database
from domain.model import ChangeEvent, Instance

CHANGES: Table = ChangeEvent.__table__  # type: ignore[assignment]
INSTANCES: Table = Instance.__table__  # type: ignore[assignment]
_FEED_LOCK = 0x7E55E7B  # PostgreSQL advisory lock id, held from the append to the commit

CREATE, UPDATE, DELETE = "Create", "Update", "Delete"


@dataclass(frozen=True)
class Change:
    action: str
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    instance_pk: int
    instance_version: int = 1


def record_changes(conn: Connection, changes: Sequence[Change]) -> None:
    """Append `changes` to the feed; call it last in the transaction that made them."""
    if not changes:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _FEED_LOCK})
    now = dt.datetime.now(dt.UTC)
    conn.execute(insert(CHANGES), [_row(change, now) for change in changes])


def _row(change: Change, timestamp: dt.datetime) -> dict[str, Any]:
    return {
        "timestamp": timestamp,
        "action": change.action,
        "study_uid": change.study_uid,
        "series_uid": change.series_uid,
        "sop_instance_uid": change.sop_instance_uid,
        "instance_pk": change.instance_pk,
        "instance_version": change.instance_version,
    }


@dataclass(frozen=True)
class ChangeFeedEntry:
    sequence: int
    timestamp: dt.datetime
    action: str
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    state: str  # current, replaced or deleted
    dicom_json: str | None  # the version the entry describes, while it still exists


async def read_changes(
    db: Database,
    *,
    after_sequence: int = 0,
    limit: int = 100,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    skip: int = 0,
    include_metadata: bool = True,
) -> list[ChangeFeedEntry]:
    """Entries after `after_sequence` in sequence order; with a time window, the window's
    entries in (timestamp, sequence) order, skipping `skip` of them."""
    statement = _entries(include_metadata)
    if start is None and end is None:
        statement = statement.where(CHANGES.c.sequence > after_sequence).order_by(CHANGES.c.sequence)
    else:
        if start is not None:
            statement = statement.where(CHANGES.c.timestamp >= start)
        if end is not None:
            statement = statement.where(CHANGES.c.timestamp < end)
        statement = statement.order_by(CHANGES.c.timestamp, CHANGES.c.sequence).offset(skip)
    async with db.read() as conn:
        rows = (await conn.execute(statement.limit(limit))).all()
    return [_entry(row, include_metadata) for row in rows]


async def latest_change(db: Database, *, include_metadata: bool = True) -> ChangeFeedEntry | None:
    statement = _entries(include_metadata).order_by(CHANGES.c.sequence.desc()).limit(1)
    async with db.read() as conn:
        row = (await conn.execute(statement)).first()
    return None if row is None else _entry(row, include_metadata)


def _entries(include_metadata: bool) -> Select[Any]:
    """Each entry beside the instance now stored under its SOPInstanceUID, if any."""
    current = INSTANCES.alias("current")
    columns: list[Any] = [
        *CHANGES.c,
        current.c.id.label("current_pk"),
        current.c.version.label("current_version"),
    ]
    if include_metadata:
        columns.append(current.c.dicom_json)
    return select(*columns).select_from(
        CHANGES.outerjoin(current, current.c.sop_instance_uid == CHANGES.c.sop_instance_uid)
    )


def _entry(row: Any, include_metadata: bool) -> ChangeFeedEntry:
    if row.current_pk is None:
        state = "deleted"
    elif (row.current_pk, row.current_version) != (
        row.instance_pk,
        row.instance_version,
    ) or row.action == DELETE:
        state = "replaced"
    else:
        state = "current"
    metadata = row.dicom_json if include_metadata and state == "current" else None
    timestamp = row.timestamp if row.timestamp.tzinfo else row.timestamp.replace(tzinfo=dt.UTC)
    return ChangeFeedEntry(
        row.sequence,
        timestamp,
        row.action,
        row.study_uid,
        row.series_uid,
        row.sop_instance_uid,
        state,
        metadata,
    )
