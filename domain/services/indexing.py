"""The index writes of one STOW batch, in one transaction.

Studies are upserted first, in UID order: on PostgreSQL that takes each study's row lock in
one order, so concurrent requests into one study queue instead of racing on its summaries.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.dicom.attributes import Level
from domain.dicom.header import Header, index_values
from domain.model import Instance, Series, Study


@dataclass(eq=False)
class Row:
    """One prepared instance: its header, its stored bytes' digest and size, and its blob."""

    header: Header
    sha256: str
    size: int
    blob_key: str


@dataclass
class BatchResult:
    inserted: list[Row]
    already_present: list[Row]
    conflicting: list[Row]  # other content under the same SOPInstanceUID
    misplaced: list[tuple[Row, str]]  # the series belongs to another study: (row, its study)


async def index_batch(conn: AsyncConnection, rows: Sequence[Row]) -> BatchResult:
    insert = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
    studies = await _claim(
        conn, insert, Study, "study_uid", {r.header.study_uid: r.header.study for r in rows}
    )
    study_pks = {uid: pk for uid, (pk, _) in studies.items()}
    series = await _claim(
        conn,
        insert,
        Series,
        "series_uid",
        {r.header.series_uid: {**r.header.series, "study_pk": study_pks[r.header.study_uid]} for r in rows},
        parent="study_pk",
    )
    series_pks = {uid: pk for uid, (pk, _) in series.items()}
    new_series_studies = {
        study_pks[r.header.study_uid] for r in rows if series.get(r.header.series_uid, (0, 1))[1] == 0
    }
    placed = [r for r in rows if r.header.series_uid in series_pks]
    misplaced = await _misplaced([r for r in rows if r.header.series_uid not in series_pks], conn)
    unique = list({r.header.sop_instance_uid: r for r in reversed(placed)}.values())[::-1]
    inserted_uids: set[str] = set()
    if unique:
        stmt = insert(Instance).on_conflict_do_nothing(index_elements=["sop_instance_uid"])
        result = await conn.execute(
            stmt.returning(Instance.sop_instance_uid),
            [_instance_values(r, study_pks, series_pks) for r in unique],
        )
        inserted_uids = {uid for (uid,) in result}
    inserted = [r for r in unique if r.header.sop_instance_uid in inserted_uids]
    others = [r for r in placed if r not in inserted]
    stored = await _stored_versions(conn, {r.header.sop_instance_uid for r in others})
    same = [r for r in others if stored.get(r.header.sop_instance_uid) == _identity(r)]
    await _count_instances(conn, inserted, study_pks, series_pks)
    await _apply_latest(conn, Study, {study_pks[r.header.study_uid]: r.header.study for r in inserted})
    await _apply_latest(conn, Series, {series_pks[r.header.series_uid]: r.header.series for r in inserted})
    if others or misplaced:
        await _drop_empty(conn, set(series_pks.values()), set(study_pks.values()))
        new_series_studies |= set(study_pks.values())
    await refresh_study_summaries(conn, new_series_studies)
    return BatchResult(inserted, same, [r for r in others if r not in same], misplaced)


async def refresh_study_summaries(conn: AsyncConnection, study_pks: Iterable[int]) -> None:
    """NumberOfStudyRelatedSeries and ModalitiesInStudy, from the study's series."""
    pks = sorted(study_pks)
    if not pks:
        return
    result = await conn.execute(
        select(Series.study_pk, Series.modality, func.count())
        .where(Series.study_pk.in_(pks))
        .group_by(Series.study_pk, Series.modality)
    )
    modalities: dict[int, set[str]] = defaultdict(set)
    counts: Counter[int] = Counter()
    for study_pk, modality, n in result:
        counts[study_pk] += n
        if modality:
            modalities[study_pk].add(modality)
    for pk in pks:
        await conn.execute(
            update(Study)
            .where(Study.id == pk)
            .values(
                number_of_series=counts[pk],
                modalities_in_study="\\".join(sorted(modalities[pk])) or None,
            )
        )


async def refresh_from_newest(conn: AsyncConnection, study_pks: set[int], series_pks: set[int]) -> None:
    """After a delete, study and series attributes are those of their newest remaining instance."""
    for table, parent, pks, level in (
        (Study, Instance.study_pk, study_pks, Level.STUDY),
        (Series, Instance.series_pk, series_pks, Level.SERIES),
    ):
        for pk in sorted(pks):
            newest = await conn.scalar(
                select(Instance.dicom_json).where(parent == pk).order_by(Instance.id.desc()).limit(1)
            )
            if newest is not None:
                values = index_values(json.loads(newest), level)
                await conn.execute(update(table).where(table.id == pk).values(**values))


async def _claim(
    conn: AsyncConnection,
    insert: Any,
    table: Any,
    key: str,
    rows: dict[str, dict[str, Any]],
    parent: str | None = None,
) -> dict[str, tuple[int, int]]:
    """Create missing rows, and lock existing ones without changing them yet.

    Returns key -> (id, number of instances before this batch): 0 for a row just created.
    With `parent`, an existing row under another parent is left alone and not returned.
    """
    values = [{key: uid, **fields} for uid, fields in sorted(rows.items())]
    stmt = insert(table)
    columns = table.__table__.c
    where = None if parent is None else columns[parent] == stmt.excluded[parent]
    stmt = stmt.on_conflict_do_update(index_elements=[key], set_={"updated_at": func.now()}, where=where)
    result = await conn.execute(stmt.returning(columns[key], columns.id, columns.number_of_instances), values)
    return {uid: (pk, count) for uid, pk, count in result}


async def _apply_latest(conn: AsyncConnection, table: Any, latest: dict[int, dict[str, Any]]) -> None:
    """Study and series attributes follow the newest stored instance where it has a value;
    a rejected instance changes nothing."""
    if not latest:
        return
    columns = table.__table__.c
    names = list(next(iter(latest.values())))
    statement = (
        update(table)
        .where(columns.id == bindparam("pk"))
        .values(
            {
                name: func.coalesce(bindparam(f"new_{name}", type_=columns[name].type), columns[name])
                for name in names
            }
        )
    )
    await conn.execute(
        statement,
        [
            {"pk": pk, **{f"new_{name}": fields[name] for name in names}}
            for pk, fields in sorted(latest.items())
        ],
    )


async def _misplaced(rows: list[Row], conn: AsyncConnection) -> list[tuple[Row, str]]:
    if not rows:
        return []
    result = await conn.execute(
        select(Series.series_uid, Study.study_uid)
        .join(Study, Study.id == Series.study_pk)
        .where(Series.series_uid.in_({r.header.series_uid for r in rows}))
    )
    owner = dict(result.all())
    return [(r, owner.get(r.header.series_uid, "?")) for r in rows]


def _instance_values(row: Row, study_pks: dict[str, int], series_pks: dict[str, int]) -> dict[str, Any]:
    h = row.header
    return {
        **h.instance,
        "study_pk": study_pks[h.study_uid],
        "series_pk": series_pks[h.series_uid],
        "sop_instance_uid": h.sop_instance_uid,
        "sop_class_uid": h.sop_class_uid,
        "transfer_syntax_uid": h.transfer_syntax_uid,
        "blob_key": row.blob_key,
        "size": row.size,
        "sha256": row.sha256,
        "dicom_json": h.dicom_json,
    }


def _identity(row: Row) -> tuple[str, str, str]:
    return (row.sha256, row.header.study_uid, row.header.series_uid)


async def _stored_versions(conn: AsyncConnection, uids: set[str]) -> dict[str, tuple[str, str, str]]:
    if not uids:
        return {}
    result = await conn.execute(
        select(Instance.sop_instance_uid, Instance.sha256, Study.study_uid, Series.series_uid)
        .join(Series, Series.id == Instance.series_pk)
        .join(Study, Study.id == Instance.study_pk)
        .where(Instance.sop_instance_uid.in_(uids))
    )
    return {uid: (sha, study, series) for uid, sha, study, series in result}


async def _count_instances(
    conn: AsyncConnection, rows: list[Row], study_pks: dict[str, int], series_pks: dict[str, int]
) -> None:
    """Counters move by what this transaction inserted; the row locks make that exact."""
    study_counts = Counter(study_pks[r.header.study_uid] for r in rows)
    series_counts = Counter(series_pks[r.header.series_uid] for r in rows)
    for table, added in ((Study, study_counts), (Series, series_counts)):
        for pk, n in sorted(added.items()):
            await conn.execute(
                update(table).where(table.id == pk).values(number_of_instances=table.number_of_instances + n)
            )


async def _drop_empty(conn: AsyncConnection, series_pks: set[int], study_pks: set[int]) -> None:
    """A batch whose every instance was rejected must not leave an empty series or study."""
    await conn.execute(delete(Series).where(Series.id.in_(series_pks), Series.number_of_instances == 0))
    await conn.execute(delete(Study).where(Study.id.in_(study_pks), Study.number_of_instances == 0))
