"""Delete a study, series or instance: index rows first, in one transaction, then the blobs.

A crash between the two leaves orphan blobs (harmless, removable), never an index row
pointing at a missing file.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import Connection, delete, select, update

from domain.blobs import BlobStore
from domain.db import Database
from domain.errors import NotFound
from domain.model import Instance, Series, Study
from domain.services.changefeed import DELETE, Change, record_changes
from domain.services.indexing import refresh_from_newest, refresh_study_summaries
from domain.services.retrieve import describe, narrow


async def delete_instances(
    db: Database,
    blobs: BlobStore,
    study_uid: str,
    series_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> int:
    """Remove what the URL names; returns how many stored files went. NotFound when nothing."""
    missing = NotFound(describe(study_uid, series_uid, sop_instance_uid) + " is not stored here")
    blob_keys = await db.write(_delete_rows, study_uid, series_uid, sop_instance_uid)
    if not blob_keys:
        raise missing
    for key in blob_keys:
        await blobs.delete(key)
    return len(blob_keys)


def _delete_rows(
    conn: Connection, study_uid: str, series_uid: str | None, sop_instance_uid: str | None
) -> list[str]:
    """The index half of a delete, in one transaction; returns the blobs to remove after it."""
    # The study's row lock first, as ingest takes it: concurrent writers queue, never deadlock.
    study_pk = conn.scalar(select(Study.id).where(Study.study_uid == study_uid).with_for_update())
    if study_pk is None:
        return []
    statement = (
        select(
            Instance.id,
            Instance.blob_key,
            Instance.original_blob_key,
            Instance.series_pk,
            Instance.sop_instance_uid,
            Instance.version,
            Series.series_uid,
        )
        .join(Series, Series.id == Instance.series_pk)
        .where(Instance.study_pk == study_pk)
    )
    rows = conn.execute(narrow(statement, series_uid, sop_instance_uid)).all()
    if not rows:
        return []
    conn.execute(delete(Instance).where(Instance.id.in_([r.id for r in rows])))
    _subtract(conn, Study, Counter({study_pk: len(rows)}))
    series_counts = Counter(r.series_pk for r in rows)
    _subtract(conn, Series, series_counts)
    conn.execute(delete(Series).where(Series.study_pk == study_pk, Series.number_of_instances <= 0))
    conn.execute(delete(Study).where(Study.id == study_pk, Study.number_of_instances <= 0))
    refresh_from_newest(conn, {study_pk}, set(series_counts))
    refresh_study_summaries(conn, {study_pk})
    record_changes(
        conn, [Change(DELETE, study_uid, r.series_uid, r.sop_instance_uid, r.id, r.version) for r in rows]
    )
    return [key for r in rows for key in (r.blob_key, r.original_blob_key) if key]


def _subtract(conn: Connection, table: type[Study] | type[Series], counts: Counter[int]) -> None:
    for pk, n in sorted(counts.items()):
        conn.execute(
            update(table).where(table.id == pk).values(number_of_instances=table.number_of_instances - n)
        )
