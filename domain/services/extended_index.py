"""Index writes of extended query tags, for new instances (STOW) and for the re-index.

Study- and series-level tags keep one row per study or series: the newest instance with a
value wins, as for the built-in columns. A value that cannot be indexed is recorded as an
error of the tag, which then stops being queried (Azure flips its queryStatus to Disabled);
the instance itself stays stored.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from domain.dicom.attributes import Level
from domain.dicom.tag_paths import indexed_value
from domain.model import Instance, Series, Study
from domain.services.extended_query_tags import ADDING, DISABLED, ERRORS, READY, TAGS, VALUES, QueryTag

_VALUE_COLUMNS = ("value", "value_norm", "value_words", "value_number", "value_date")


@dataclass(frozen=True)
class Target:
    """One stored instance to index: its rows' keys, its UIDs and its stored DICOM JSON."""

    instance_pk: int
    series_pk: int
    study_pk: int
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    dicom_json: str


def indexing_tags(conn: Connection) -> list[QueryTag]:
    """Tags that new instances must be indexed for: those being added and those ready."""
    rows = conn.execute(select(TAGS).where(TAGS.c.status.in_((ADDING, READY))))
    return [QueryTag.of(row) for row in rows]


def index_new_instances(conn: Connection, targets: Sequence[Target]) -> None:
    """Called by the STOW index write, in its transaction."""
    if targets:
        tags = indexing_tags(conn)
        if tags:
            index_instances(conn, tags, targets)


def index_instances(conn: Connection, tags: Sequence[QueryTag], targets: Sequence[Target]) -> None:
    """Index `targets` (in instance order) for `tags`; idempotent, so a batch may be redone."""
    values: dict[tuple[int, int], dict[str, Any]] = {}
    errors: list[dict[str, Any]] = []
    now = dt.datetime.now(dt.UTC)
    for target in targets:
        body = json.loads(target.dicom_json)
        for tag in tags:
            try:
                columns = indexed_value(body, tag.path, tag.vr, tag.private_creator)
            except (ValueError, TypeError, OverflowError) as exc:
                errors.append(_error(tag, target, f"{tag.name} ({tag.vr}): {exc}", now))
                continue
            if columns is not None:
                row = _value_row(tag, target, columns)
                values[(tag.key, row["owner_pk"])] = row  # the newest instance wins
    if values:
        conn.execute(_upsert_values(conn.dialect.name), list(values.values()))
    errors = _new_errors(conn, errors)
    if errors:  # the tag stops being queried until its queryStatus is set back to Enabled
        conn.execute(_insert_errors(conn.dialect.name), errors)
        keys = sorted({e["tag_key"] for e in errors})
        count = select(func.count()).where(ERRORS.c.tag_key == TAGS.c.key).scalar_subquery()
        conn.execute(
            update(TAGS).where(TAGS.c.key.in_(keys)).values(error_count=count, query_status=DISABLED)
        )


def refresh_owners(conn: Connection, study_pks: set[int], series_pks: set[int]) -> None:
    """After a delete, study- and series-level values are those of the newest remaining instance
    with a value (called with the built-in columns' refresh)."""
    tags = indexing_tags(conn)
    instance = Instance.__table__
    for level, pks, parent in (
        (Level.STUDY, study_pks, instance.c.study_pk),
        (Level.SERIES, series_pks, instance.c.series_pk),
    ):
        level_tags = [t for t in tags if t.level is level]
        if level_tags and pks:
            keys = [t.key for t in level_tags]
            conn.execute(delete(VALUES).where(VALUES.c.tag_key.in_(keys), VALUES.c.owner_pk.in_(pks)))
            index_instances(conn, level_tags, stored_targets(conn, parent.in_(sorted(pks))))


def stored_targets(conn: Connection, where: ColumnElement[bool], limit: int | None = None) -> list[Target]:
    """Stored instances in id order, as targets to index."""
    instance = Instance.__table__
    statement = (
        select(
            instance.c.id,
            instance.c.series_pk,
            instance.c.study_pk,
            Study.study_uid,
            Series.series_uid,
            instance.c.sop_instance_uid,
            instance.c.dicom_json,
        )
        .join(Series, Series.id == instance.c.series_pk)
        .join(Study, Study.id == instance.c.study_pk)
        .where(where)
        .order_by(instance.c.id)
        .limit(limit)
    )
    return [Target(*row) for row in conn.execute(statement)]


def _new_errors(conn: Connection, errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Errors not recorded yet (a batch redone, or a refresh after a delete, adds none)."""
    if not errors:
        return errors
    pairs = [(e["tag_key"], e["instance_pk"]) for e in errors]
    known = {
        (key, pk)
        for key, pk in conn.execute(
            select(ERRORS.c.tag_key, ERRORS.c.instance_pk).where(
                tuple_(ERRORS.c.tag_key, ERRORS.c.instance_pk).in_(pairs)
            )
        )
    }
    unique = {
        (e["tag_key"], e["instance_pk"]): e for e in errors if (e["tag_key"], e["instance_pk"]) not in known
    }
    return list(unique.values())


def _value_row(tag: QueryTag, target: Target, columns: dict[str, Any]) -> dict[str, Any]:
    owner = {Level.STUDY: target.study_pk, Level.SERIES: target.series_pk, Level.INSTANCE: target.instance_pk}
    return {
        "tag_key": tag.key,
        "owner_pk": owner[tag.level],
        "study_pk": target.study_pk,
        "series_pk": target.series_pk if tag.level is not Level.STUDY else None,
        "instance_pk": target.instance_pk if tag.level is Level.INSTANCE else None,
        **{name: columns.get(name) for name in _VALUE_COLUMNS},
    }


def _error(tag: QueryTag, target: Target, message: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "tag_key": tag.key,
        "instance_pk": target.instance_pk,
        "study_uid": target.study_uid,
        "series_uid": target.series_uid,
        "sop_instance_uid": target.sop_instance_uid,
        "message": message,
        "created_at": now,
    }


@cache
def _upsert_values(dialect: str) -> Any:
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    statement = insert(VALUES)
    changed = ("series_pk", "instance_pk", *_VALUE_COLUMNS)
    return statement.on_conflict_do_update(
        index_elements=["tag_key", "owner_pk"], set_={name: statement.excluded[name] for name in changed}
    )


@cache
def _insert_errors(dialect: str) -> Any:
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    return insert(ERRORS).on_conflict_do_nothing(index_elements=["tag_key", "instance_pk"])
