"""The index writes of one STOW batch, in one transaction.

Studies are upserted first, in UID order: on PostgreSQL that takes each study's row lock in
one order, so concurrent requests into one study queue instead of racing on its summaries.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from domain.dicom.attributes import Level
from domain.dicom.header import Header, index_values
from domain.model import Instance, Series, Study
from domain.services.changefeed import CREATE, Change, record_changes
from domain.services.extended_index import Target, index_new_instances, refresh_owners

STUDIES: Table = Study.__table__  # type: ignore[assignment]
SERIES: Table = Series.__table__  # type: ignore[assignment]
INSTANCES: Table = Instance.__table__  # type: ignore[assignment]
_UID_COLUMN = {"studies": "study_uid", "series": "series_uid"}


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


def index_batch(conn: Connection, rows: Sequence[Row]) -> BatchResult:
    dialect = conn.dialect.name
    studies = _claim(conn, dialect, STUDIES, {r.header.study_uid: r.header.study for r in rows})
    study_pks = {uid: pk for uid, (pk, _) in studies.items()}
    series = _claim(
        conn,
        dialect,
        SERIES,
        {r.header.series_uid: {**r.header.series, "study_pk": study_pks[r.header.study_uid]} for r in rows},
    )
    series_pks = {uid: pk for uid, (pk, _) in series.items()}
    new_series_studies = {
        study_pks[r.header.study_uid] for r in rows if series.get(r.header.series_uid, (0, 1))[1] == 0
    }
    placed = [r for r in rows if r.header.series_uid in series_pks]
    misplaced = _misplaced([r for r in rows if r.header.series_uid not in series_pks], conn)
    unique = list({r.header.sop_instance_uid: r for r in reversed(placed)}.values())[::-1]
    inserted_pks: dict[str, int] = {}
    if unique:
        result = conn.execute(
            _insert_instances(dialect), [_instance_values(r, study_pks, series_pks) for r in unique]
        )
        inserted_pks = {uid: pk for uid, pk in result}
    inserted = [r for r in unique if r.header.sop_instance_uid in inserted_pks]
    others = [r for r in placed if r not in inserted]
    stored = _stored_versions(conn, {r.header.sop_instance_uid for r in others})
    same = [r for r in others if stored.get(r.header.sop_instance_uid) == _identity(r)]
    _add_instances(conn, STUDIES, [(study_pks[r.header.study_uid], r.header.study) for r in inserted])
    _add_instances(conn, SERIES, [(series_pks[r.header.series_uid], r.header.series) for r in inserted])
    if others or misplaced:
        _drop_empty(conn, set(series_pks.values()), set(study_pks.values()))
        new_series_studies |= set(study_pks.values())
    refresh_study_summaries(conn, new_series_studies)
    index_new_instances(conn, [_target(r, inserted_pks, study_pks, series_pks) for r in inserted])
    record_changes(conn, [_created(r, inserted_pks) for r in inserted])
    return BatchResult(inserted, same, [r for r in others if r not in same], misplaced)


_SUMMARY_UPDATE = (
    update(STUDIES)
    .where(STUDIES.c.id == bindparam("pk"))
    .values(number_of_series=bindparam("series"), modalities_in_study=bindparam("modalities"))
)


def refresh_study_summaries(conn: Connection, study_pks: Iterable[int]) -> None:
    """NumberOfStudyRelatedSeries and ModalitiesInStudy, from the study's series."""
    pks = sorted(study_pks)
    if not pks:
        return
    result = conn.execute(
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
    conn.execute(
        _SUMMARY_UPDATE,
        [
            {"pk": pk, "series": counts[pk], "modalities": "\\".join(sorted(modalities[pk])) or None}
            for pk in pks
        ],
    )


def refresh_from_newest(conn: Connection, study_pks: set[int], series_pks: set[int]) -> None:
    """After a delete, study and series attributes are those of their newest remaining instance."""
    for table, parent, pks, level in (
        (Study, Instance.study_pk, study_pks, Level.STUDY),
        (Series, Instance.series_pk, series_pks, Level.SERIES),
    ):
        for pk in sorted(pks):
            newest = conn.scalar(
                select(Instance.dicom_json).where(parent == pk).order_by(Instance.id.desc()).limit(1)
            )
            if newest is not None:
                values = index_values(json.loads(newest), level)
                conn.execute(update(table).where(table.id == pk).values(**values))
    refresh_owners(conn, study_pks, series_pks)


def _claim(
    conn: Connection, dialect: str, table: Table, rows: dict[str, dict[str, Any]]
) -> dict[str, tuple[int, int]]:
    """Create missing rows, and lock existing ones without changing them yet.

    Returns UID -> (id, number of instances before this batch): 0 for a row just created.
    A series that exists under another study is left alone and not returned.
    """
    key = _UID_COLUMN[table.name]
    values = [{key: uid, **fields} for uid, fields in sorted(rows.items())]
    result = conn.execute(_claim_statement(dialect, table.name), values)
    return {uid: (pk, count) for uid, pk, count in result}


@cache
def _claim_statement(dialect: str, table_name: str) -> Any:
    table = STUDIES if table_name == "studies" else SERIES
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    statement = insert(table)
    key = table.c[_UID_COLUMN[table_name]]
    where = table.c.study_pk == statement.excluded.study_pk if table is SERIES else None
    statement = statement.on_conflict_do_update(
        index_elements=[key.name], set_={"updated_at": func.now()}, where=where
    )
    return statement.returning(key, table.c.id, table.c.number_of_instances)


@cache
def _insert_instances(dialect: str) -> Any:
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    statement = insert(INSTANCES).on_conflict_do_nothing(index_elements=["sop_instance_uid"])
    return statement.returning(INSTANCES.c.sop_instance_uid, INSTANCES.c.id)


def _add_instances(conn: Connection, table: Table, added: list[tuple[int, dict[str, Any]]]) -> None:
    """Count the instances this transaction inserted (the row locks make that exact), and let the
    study or series attributes follow the newest of them where it has a value; a rejected
    instance changes nothing."""
    if not added:
        return
    latest = dict(added)
    counts = Counter(pk for pk, _ in added)
    names = tuple(next(iter(latest.values())))
    conn.execute(
        _add_statement(table.name, names),
        [
            {"pk": pk, "added": counts[pk], **{f"new_{name}": fields[name] for name in names}}
            for pk, fields in sorted(latest.items())
        ],
    )


@cache
def _add_statement(table_name: str, names: tuple[str, ...]) -> Any:
    table = STUDIES if table_name == "studies" else SERIES
    values: dict[str, Any] = {
        name: func.coalesce(bindparam(f"new_{name}", type_=table.c[name].type), table.c[name])
        for name in names
    }
    values["number_of_instances"] = table.c.number_of_instances + bindparam("added")
    return update(table).where(table.c.id == bindparam("pk")).values(values)


def _misplaced(rows: list[Row], conn: Connection) -> list[tuple[Row, str]]:
    if not rows:
        return []
    result = conn.execute(
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


def _created(row: Row, pks: dict[str, int]) -> Change:
    h = row.header
    return Change(CREATE, h.study_uid, h.series_uid, h.sop_instance_uid, pks[h.sop_instance_uid])


def _target(row: Row, pks: dict[str, int], study_pks: dict[str, int], series_pks: dict[str, int]) -> Target:
    h = row.header
    return Target(
        pks[h.sop_instance_uid],
        series_pks[h.series_uid],
        study_pks[h.study_uid],
        h.study_uid,
        h.series_uid,
        h.sop_instance_uid,
        h.dicom_json,
    )


def _identity(row: Row) -> tuple[str, str, str]:
    return (row.sha256, row.header.study_uid, row.header.series_uid)


def _stored_versions(conn: Connection, uids: set[str]) -> dict[str, tuple[str, str, str]]:
    if not uids:
        return {}
    result = conn.execute(
        select(Instance.sop_instance_uid, Instance.sha256, Study.study_uid, Series.series_uid)
        .join(Series, Series.id == Instance.series_pk)
        .join(Study, Study.id == Instance.study_pk)
        .where(Instance.sop_instance_uid.in_(uids))
    )
    return {uid: (sha, study, series) for uid, sha, study, series in result}


def _drop_empty(conn: Connection, series_pks: set[int], study_pks: set[int]) -> None:
    """A batch whose every instance was rejected must not leave an empty series or study."""
    conn.execute(delete(Series).where(Series.id.in_(series_pks), Series.number_of_instances == 0))
    conn.execute(delete(Study).where(Study.id.in_(study_pks), Study.number_of_instances == 0))
