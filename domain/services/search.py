"""QIDO-RS: search for studies, series and instances (PS3.18 10.6), answered from the index."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, select

from domain.db import Database
from domain.dicom.attributes import (
    BY_KEYWORD,
    BY_TAG,
    DEFAULT_RETURN,
    LEVELS_OF_RESOURCE,
    Attribute,
    Level,
    resolve_attribute_id,
)
from domain.dicom.json_values import element
from domain.dicom.matching import match
from domain.errors import InvalidRequest
from domain.model import Instance, Series, Study
from domain.services.extended_query_tags import QueryTag
from domain.services.extended_search import extended_condition, queryable

MAX_RESULTS = 1000
_CONTROL = {"includefield", "limit", "offset", "fuzzymatching"}
_TABLES = {Level.STUDY: Study.__table__, Level.SERIES: Series.__table__, Level.INSTANCE: Instance.__table__}
_UID_OF = {
    Level.STUDY: "StudyInstanceUID",
    Level.SERIES: "SeriesInstanceUID",
    Level.INSTANCE: "SOPInstanceUID",
}
# What `includefield=all` adds beyond the defaults, taken from the newest instance's header
# (the study and series attributes of PS3.18 Tables 10.6.3-3 and -4 that have no column).
ALL_EXTRA: dict[Level, tuple[str, ...]] = {
    Level.STUDY: (
        "00080005",
        "00080201",
        "00080063",
        "00081032",
        "00081060",
        "00081080",
        "00081110",
        "00101010",
        "00101020",
        "00101030",
        "00102180",
        "001021B0",
    ),
    Level.SERIES: (
        "00080005",
        "00080201",
        "00081050",
        "00200060",
        "00080021",
        "00080031",
        "00400245",
        "00400275",
    ),
    Level.INSTANCE: (),
}


@dataclass(frozen=True)
class Scope:
    """What a QIDO resource searches: its result level and the UIDs in its path."""

    level: Level
    study_uid: str | None = None
    series_uid: str | None = None

    @property
    def levels(self) -> tuple[Level, ...]:
        return LEVELS_OF_RESOURCE[(self.level, self.study_uid is not None, self.series_uid is not None)]


@dataclass
class Query:
    filters: list[tuple[Attribute, str]] = field(default_factory=list)
    extended: list[tuple[QueryTag, str]] = field(default_factory=list)  # extended query tags
    include: list[str] = field(default_factory=list)  # tags beyond the defaults
    include_all: bool = False
    limit: int = MAX_RESULTS
    offset: int = 0
    fuzzy: bool = False
    limit_is_the_servers: bool = True  # no limit given, or one above MAX_RESULTS


@dataclass
class SearchResult:
    matches: list[dict[str, Any]]
    cut_short: bool  # PS3.18 8.3.4.4: the server's maximum, not the client's limit, ended it


def parse_query(
    scope: Scope, params: Sequence[tuple[str, str]], extended: Mapping[str, QueryTag] | None = None
) -> Query:
    """Validate the query parameters; every mistake is an InvalidRequest naming the parameter.
    `extended` holds the extended query tags by tag (services/extended_search.tags_for_query)."""
    query = Query()
    seen: set[str] = set()
    for key, value in params:
        if key in _CONTROL:
            _control(query, key, value)
            continue
        extended_tag = _extended_tag(key, extended or {})
        if extended_tag is not None:
            if extended_tag.path in seen:
                raise InvalidRequest(f"{extended_tag.name} is given more than once")
            seen.add(extended_tag.path)
            query.extended.append((queryable(extended_tag, scope.levels), value))
            query.include.append(extended_tag.path)  # returned from the stored header
            continue
        attribute = _searchable(scope, key)
        if attribute.tag in seen:
            raise InvalidRequest(f"{attribute.keyword} is given more than once")
        seen.add(attribute.tag)
        query.filters.append((attribute, value))
    return query


def _control(query: Query, key: str, value: str) -> None:
    if key == "includefield":
        for item in filter(None, (v.strip() for v in value.split(","))):
            if item == "all":
                query.include_all = True
                continue
            try:
                tag, _ = resolve_attribute_id(item)
            except KeyError:
                raise InvalidRequest(f"includefield {item!r} is not a DICOM keyword or tag") from None
            query.include.append(tag)
    elif key in ("limit", "offset"):
        try:
            number = int(value)
        except ValueError:
            raise InvalidRequest(f"{key} must be a whole number, got {value!r}") from None
        if number < (1 if key == "limit" else 0):
            raise InvalidRequest(f"{key} must be at least {1 if key == 'limit' else 0}, got {number}")
        if key == "limit":
            query.limit_is_the_servers = number > MAX_RESULTS
            number = min(number, MAX_RESULTS)
        setattr(query, key, number)
    else:
        if value.lower() not in ("true", "false"):
            raise InvalidRequest(f"fuzzymatching must be true or false, got {value!r}")
        query.fuzzy = value.lower() == "true"


def _extended_tag(key: str, extended: Mapping[str, QueryTag]) -> QueryTag | None:
    try:
        tag, _ = resolve_attribute_id(key)
    except KeyError:
        return None
    known = BY_TAG.get(tag)
    return None if known is not None and known.searchable else extended.get(tag)


def _searchable(scope: Scope, key: str) -> Attribute:
    try:
        tag, keyword = resolve_attribute_id(key)
    except KeyError:
        raise InvalidRequest(
            f"{key!r} is not a DICOM attribute keyword or tag (keywords are case-sensitive, "
            "tags are eight hex digits)"
        ) from None
    attribute = BY_TAG.get(tag)
    if attribute is None or not attribute.searchable or attribute.level not in scope.levels:
        allowed = ", ".join(
            a.keyword for a in BY_KEYWORD.values() if a.searchable and a.level in scope.levels
        )
        raise InvalidRequest(f"{keyword or tag} cannot be searched here; searchable attributes: {allowed}")
    return attribute


async def search(db: Database, scope: Scope, query: Query, base_url: str) -> SearchResult:
    statement = _statement(scope, query)
    async with db.read() as conn:
        rows = (await conn.execute(statement)).all()
    cut_short = query.limit_is_the_servers and len(rows) > query.limit
    plan = _plan(scope, query)
    answers = [_answer(scope, query, plan, row._mapping, base_url) for row in rows[: query.limit]]
    return SearchResult(answers, cut_short)


def _statement(scope: Scope, query: Query) -> Select[Any]:
    study, series, instance = (_TABLES[level] for level in Level)
    columns: list[Any] = [c.label(f"study.{c.name}") for c in study.c]
    source: Any = study
    if scope.level in (Level.SERIES, Level.INSTANCE):
        source = source.join(series, series.c.study_pk == study.c.id)
        columns += [c.label(f"series.{c.name}") for c in series.c]
    if scope.level is Level.INSTANCE:
        source = source.join(instance, instance.c.series_pk == series.c.id)
        columns += [c.label(f"instance.{c.name}") for c in instance.c if c.name != "dicom_json"]
    if query.include_all or any(tag not in BY_TAG for tag in query.include):
        columns.append(_header_json(scope.level).label("header"))
    statement = select(*columns).select_from(source)
    if scope.study_uid:
        statement = statement.where(study.c.study_uid == scope.study_uid)
    if scope.series_uid:
        statement = statement.where(series.c.series_uid == scope.series_uid)
    for attribute, value in query.filters:
        statement = statement.where(_condition(attribute, value, query.fuzzy))
    for tag, value in query.extended:
        statement = statement.where(extended_condition(tag, value, query.fuzzy))
    primary = _TABLES[scope.level].c.id
    return statement.order_by(primary).limit(query.limit + 1).offset(query.offset)


def _condition(attribute: Attribute, value: str, fuzzy: bool) -> Any:
    if attribute.keyword == "ModalitiesInStudy":  # any series of the study has the modality
        series = Series.__table__
        matching = select(series.c.study_pk).where(match(attribute, value, series.c.modality, fuzzy, series))
        return Study.__table__.c.id.in_(matching)
    table = _TABLES[attribute.level]
    return match(attribute, value, table.c[attribute.column], fuzzy, table)


def _header_json(level: Level) -> Any:
    """The newest instance's stored header stands for its series or study."""
    if level is Level.INSTANCE:
        return Instance.__table__.c.dicom_json
    parent = Instance.study_pk if level is Level.STUDY else Instance.series_pk
    owner = _TABLES[level].c.id
    return (
        select(Instance.dicom_json).where(parent == owner).order_by(Instance.id.desc()).limit(1)
    ).scalar_subquery()


def _plan(scope: Scope, query: Query) -> list[tuple[str, str, str]]:
    """(tag, VR, row key) of every attribute answered from the index's own columns."""
    plan: dict[str, tuple[str, str, str]] = {}
    present = {Level.STUDY, *scope.levels, scope.level}
    if scope.level is not Level.STUDY:
        present.add(Level.SERIES)
    wanted = [BY_KEYWORD[_UID_OF[level]] for level in Level if level in present]
    wanted += [BY_KEYWORD[keyword] for level in scope.levels for keyword in DEFAULT_RETURN[level]]
    wanted += [attribute for attribute, _ in query.filters]
    wanted += [BY_TAG[tag] for tag in query.include if tag in BY_TAG and BY_TAG[tag].level in present]
    for attribute in wanted:
        plan.setdefault(
            attribute.tag, (attribute.tag, attribute.vr, f"{attribute.level.value}.{attribute.column}")
        )
    return list(plan.values())


def _answer(
    scope: Scope, query: Query, plan: list[tuple[str, str, str]], row: Any, base_url: str
) -> dict[str, Any]:
    answer = {tag: element(vr, row[key]) for tag, vr, key in plan}
    if "header" in row:
        header = json.loads(row["header"]) if row["header"] else {}
        for tag in query.include:
            if tag in header:
                answer.setdefault(tag, header[tag])
        if query.include_all:
            extra = (
                [t for t in header if not t.startswith("0002")]
                if scope.level is Level.INSTANCE
                else [t for t in ALL_EXTRA[scope.level] if t in header]
            )
            for tag in extra:
                answer.setdefault(tag, header[tag])
    uids = [row[key] for key in _UID_KEYS if key in row]
    answer["00080056"] = _ONLINE
    answer["00081190"] = element("UR", retrieve_url(base_url, *uids))
    return dict(sorted(answer.items()))


_ONLINE = {"vr": "CS", "Value": ["ONLINE"]}
_UID_KEYS = ("study.study_uid", "series.series_uid", "instance.sop_instance_uid")


def retrieve_url(
    base_url: str, study_uid: str, series_uid: str | None = None, sop_instance_uid: str | None = None
) -> str:
    url = f"{base_url}/studies/{study_uid}"
    if series_uid:
        url += f"/series/{series_uid}"
    if sop_instance_uid:
        url += f"/instances/{sop_instance_uid}"
    return url
