"""Extended query tags (Azure DICOM service): add, list, read, update, delete, errors.

Adding tags creates a re-index operation (services/reindex.py runs it); each tag is `Adding`
until the operation has indexed every stored instance, then `Ready`, and only then queryable.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.datadict import dictionary_VR
from sqlalchemy import Connection, Row, Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from domain.db import Database
from domain.dicom.attributes import BY_TAG, COMPUTED, Level
from domain.dicom.tag_paths import SUPPORTED_VRS, is_private, is_private_creator, parse_tag_path
from domain.errors import Conflict, InvalidRequest, NotFound
from domain.model import ExtendedQueryTag, ExtendedQueryTagError, ExtendedValue, Instance
from domain.services.operations import OPERATIONS, queue_operation

TAGS: Table = ExtendedQueryTag.__table__  # type: ignore[assignment]
ERRORS: Table = ExtendedQueryTagError.__table__  # type: ignore[assignment]
VALUES: Table = ExtendedValue.__table__  # type: ignore[assignment]
ADDING, READY, DELETING = "Adding", "Ready", "Deleting"
ENABLED, DISABLED = "Enabled", "Disabled"
LEVEL_NAMES = {Level.STUDY: "Study", Level.SERIES: "Series", Level.INSTANCE: "Instance"}
_LEVELS = {name.lower(): level for level, name in LEVEL_NAMES.items()}
MAX_TAGS = 128  # Azure's MaxAllowedCount


@dataclass(frozen=True)
class TagSpec:
    """One entry of an add request, validated."""

    path: str
    vr: str
    private_creator: str | None
    level: Level


@dataclass(frozen=True)
class QueryTag:
    key: int
    path: str
    vr: str
    private_creator: str | None
    level: Level
    status: str
    query_status: str
    error_count: int
    operation_id: str | None

    @property
    def name(self) -> str:
        """The keyword where the dictionary has one, else the tag."""
        return parse_tag_path(self.path)[1] or self.path

    @classmethod
    def of(cls, row: Row[Any]) -> QueryTag:
        m = row._mapping
        return cls(
            m["key"],
            m["path"],
            m["vr"],
            m["private_creator"],
            _LEVELS[m["level"].lower()],
            m["status"],
            m["query_status"],
            m["error_count"],
            m["operation_id"],
        )


@dataclass(frozen=True)
class TagError:
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    created_at: dt.datetime
    message: str


def validate_tags(body: Any) -> list[TagSpec]:
    """The add request's entries; InvalidRequest says which entry is wrong and why."""
    if not isinstance(body, list) or not body:
        raise InvalidRequest("the body must be a non-empty JSON array of {path, vr, privateCreator, level}")
    specs = [_spec(item, i) for i, item in enumerate(body)]
    seen: set[str] = set()
    for spec in specs:
        if spec.path in seen:
            raise InvalidRequest(f"tag {spec.path} is given more than once")
        seen.add(spec.path)
    return specs


def _spec(item: Any, index: int) -> TagSpec:
    where = f"entry {index}"
    if not isinstance(item, dict) or not isinstance(item.get("path"), str) or not item["path"]:
        raise InvalidRequest(f"{where}: each entry must be an object with a path (a keyword or 8 hex digits)")
    try:
        tag, keyword = parse_tag_path(item["path"])
    except ValueError as exc:
        raise InvalidRequest(f"{where}: {exc}") from None
    where = f"{where} ({keyword or tag})"
    level = _LEVELS.get(str(item.get("level", "")).lower())
    if level is None:
        raise InvalidRequest(f"{where}: level must be Study, Series or Instance, got {item.get('level')!r}")
    vr, creator = item.get("vr"), item.get("privateCreator")
    if vr is not None and (not isinstance(vr, str) or not vr):
        raise InvalidRequest(f"{where}: vr must be a two-letter value representation")
    vr = vr.upper() if vr else None
    known = BY_TAG.get(tag)
    if known is not None and (known.searchable or known.keyword in COMPUTED):
        raise InvalidRequest(f"{where}: the tag is already supported by QIDO and cannot be added")
    if is_private(tag):
        vr = _private(where, tag, vr, creator)
    else:
        if creator is not None:
            raise InvalidRequest(f"{where}: privateCreator is only for private tags (odd groups)")
        vr = _standard_vr(where, tag, vr)
    if vr not in SUPPORTED_VRS:
        raise InvalidRequest(
            f"{where}: VR {vr} is not supported; supported: {', '.join(sorted(SUPPORTED_VRS))}"
        )
    return TagSpec(tag, vr, creator, level)


def _private(where: str, tag: str, vr: str | None, creator: Any) -> str:
    if is_private_creator(tag):
        raise InvalidRequest(f"{where}: a private creator element cannot be a query tag")
    if vr is None:
        raise InvalidRequest(f"{where}: a private tag needs a vr")
    if not isinstance(creator, str) or not creator.strip():
        raise InvalidRequest(f"{where}: a private tag needs a privateCreator")
    if len(creator) > 64 or "\\" in creator:
        raise InvalidRequest(f"{where}: privateCreator must be an LO value (at most 64 characters, no '\\')")
    return vr


def _standard_vr(where: str, tag: str, vr: str | None) -> str:
    try:
        allowed = dictionary_VR(int(tag, 16)).split(" or ")
    except KeyError:
        if vr is None:
            raise InvalidRequest(
                f"{where}: the tag is not in the DICOM dictionary, so it needs a vr"
            ) from None
        return vr
    if vr is None:
        if len(allowed) > 1:
            raise InvalidRequest(f"{where}: the dictionary allows VR {' or '.join(allowed)}; give one as vr")
        return allowed[0]
    if vr not in allowed:
        raise InvalidRequest(f"{where}: vr {vr} does not match the dictionary's {' or '.join(allowed)}")
    return vr


async def add_tags(db: Database, specs: Sequence[TagSpec]) -> str:
    """Store the tags as `Adding` with one re-index operation; return the operation's id."""
    operation_id = uuid.uuid4().hex
    try:
        await db.write(_add_tags, specs, operation_id, dt.datetime.now(dt.UTC))
    except IntegrityError:  # another request added one of them meanwhile
        raise Conflict("one of the tags already exists") from None
    return operation_id


def _add_tags(conn: Connection, specs: Sequence[TagSpec], operation_id: str, now: dt.datetime) -> None:
    paths = [s.path for s in specs]
    existing = conn.scalars(select(TAGS.c.path).where(TAGS.c.path.in_(paths))).all()
    if existing:
        raise Conflict(f"extended query tag {', '.join(sorted(existing))} already exists")
    count = conn.scalar(select(func.count()).select_from(TAGS)) or 0
    if count + len(specs) > MAX_TAGS:
        raise InvalidRequest(f"at most {MAX_TAGS} extended query tags are allowed; {count} exist")
    total = conn.scalar(select(func.count()).select_from(Instance.__table__)) or 0
    queue_operation(conn, operation_id, "reindex", paths, total)
    rows = [
        {
            "path": s.path,
            "vr": s.vr,
            "private_creator": s.private_creator,
            "level": LEVEL_NAMES[s.level],
            "status": ADDING,
            "query_status": ENABLED,
            "error_count": 0,
            "operation_id": operation_id,
        }
        for s in specs
    ]
    conn.execute(insert(TAGS), rows)


async def list_tags(db: Database, limit: int, offset: int) -> list[QueryTag]:
    async with db.read() as conn:
        rows = await conn.execute(select(TAGS).order_by(TAGS.c.key).limit(limit).offset(offset))
        return [QueryTag.of(row) for row in rows]


async def all_tags(db: Database) -> dict[str, QueryTag]:
    """Every tag by path, whatever its status (QIDO explains why one is not queryable)."""
    async with db.read() as conn:
        return {tag.path: tag for tag in map(QueryTag.of, await conn.execute(select(TAGS)))}


def tag_of_path(path: str) -> str:
    try:
        return parse_tag_path(path)[0]
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None


async def get_tag(db: Database, path: str) -> QueryTag:
    tag = tag_of_path(path)
    async with db.read() as conn:
        row = (await conn.execute(select(TAGS).where(TAGS.c.path == tag))).first()
    if row is None:
        raise NotFound(f"extended query tag {path} does not exist")
    return QueryTag.of(row)


async def update_tag(db: Database, path: str, body: Any) -> QueryTag:
    """PATCH {"queryStatus": "Enabled" | "Disabled"}."""
    if not isinstance(body, dict) or set(body) != {"queryStatus"}:
        raise InvalidRequest('the body must be {"queryStatus": "Enabled"} or {"queryStatus": "Disabled"}')
    status = {"enabled": ENABLED, "disabled": DISABLED}.get(str(body["queryStatus"]).lower())
    if status is None:
        raise InvalidRequest(f"queryStatus must be Enabled or Disabled, got {body['queryStatus']!r}")
    tag = await get_tag(db, path)
    await db.write(_set_query_status, tag.key, status)
    return await get_tag(db, path)


def _set_query_status(conn: Connection, key: int, status: str) -> None:
    conn.execute(update(TAGS).where(TAGS.c.key == key).values(query_status=status))


async def delete_tag(db: Database, path: str) -> None:
    """The tag, its values and its errors go in one transaction (foreign keys cascade)."""
    tag = await get_tag(db, path)
    await db.write(_delete_tag, tag.key)


def _delete_tag(conn: Connection, key: int) -> None:
    conn.execute(delete(ERRORS).where(ERRORS.c.tag_key == key))
    conn.execute(delete(VALUES).where(VALUES.c.tag_key == key))
    conn.execute(delete(TAGS).where(TAGS.c.key == key))


async def tag_errors(db: Database, path: str, limit: int, offset: int) -> list[TagError]:
    tag = await get_tag(db, path)
    statement = (
        select(
            ERRORS.c.study_uid,
            ERRORS.c.series_uid,
            ERRORS.c.sop_instance_uid,
            ERRORS.c.created_at,
            ERRORS.c.message,
        )
        .where(ERRORS.c.tag_key == tag.key)
        .order_by(ERRORS.c.id)
        .limit(limit)
        .offset(offset)
    )
    async with db.read() as conn:
        return [TagError(*row) for row in await conn.execute(statement)]


async def get_operation(db: Database, operation_id: str) -> dict[str, Any]:
    async with db.read() as conn:
        row = (await conn.execute(select(OPERATIONS).where(OPERATIONS.c.id == operation_id))).first()
    if row is None:
        raise NotFound(f"operation {operation_id} does not exist")
    return dict(row._mapping)
