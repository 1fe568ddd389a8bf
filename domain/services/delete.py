"""Delete a study, series or instance: index rows first, in one transaction, then the blobs.

A crash between the two leaves orphan blobs (harmless, removable), never an index row
pointing at a missing file.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import delete, select, update

from domain.blobs import BlobStore
from domain.db import Database
from domain.errors import NotFound
from domain.model import Instance, Series, Study
from domain.services.indexing import refresh_study_summaries
from domain.services.retrieve import _narrow, _what


async def delete_instances(
    db: Database,
    blobs: BlobStore,
    study_uid: str,
    series_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> int:
    """Remove what the URL names; returns how many instances went. NotFound when nothing."""
    statement = (
        select(Instance.id, Instance.blob_key, Instance.series_pk, Instance.study_pk)
        .join(Study, Study.id == Instance.study_pk)
        .where(Study.study_uid == study_uid)
    )
    statement = _narrow(statement, series_uid, sop_instance_uid)
    async with db.write() as conn:
        rows = (await conn.execute(statement)).all()
        if not rows:
            raise NotFound(_what(study_uid, series_uid, sop_instance_uid) + " is not stored here")
        await conn.execute(delete(Instance).where(Instance.id.in_([r.id for r in rows])))
        for table, counts in (
            (Series, Counter(r.series_pk for r in rows)),
            (Study, Counter(r.study_pk for r in rows)),
        ):
            for pk, n in sorted(counts.items()):
                await conn.execute(
                    update(table)
                    .where(table.id == pk)
                    .values(number_of_instances=table.number_of_instances - n)
                )
        study_pks = {r.study_pk for r in rows}
        await conn.execute(
            delete(Series).where(Series.study_pk.in_(study_pks), Series.number_of_instances <= 0)
        )
        await conn.execute(delete(Study).where(Study.id.in_(study_pks), Study.number_of_instances <= 0))
        await refresh_study_summaries(conn, study_pks)
    for row in rows:
        await blobs.delete(row.blob_key)
    return len(rows)
