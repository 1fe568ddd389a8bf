"""QIDO matching on extended query tags: the rules of the built-in attributes, over extended_values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, select

from domain.db import Database
from domain.dicom.attributes import BY_TAG, Attribute, Level, resolve_attribute_id
from domain.dicom.matching import match
from domain.dicom.tag_paths import NUMBER_VRS, parse_datetime
from domain.errors import InvalidRequest
from domain.model import Instance, Series, Study
from domain.services.extended_query_tags import DISABLED, READY, VALUES, QueryTag, all_tags

_OWNERS = {Level.STUDY: Study.__table__, Level.SERIES: Series.__table__, Level.INSTANCE: Instance.__table__}
_CONTROL = {"includefield", "limit", "offset", "fuzzymatching"}


async def tags_for_query(db: Database, keys: Iterable[str]) -> dict[str, QueryTag]:
    """The extended query tags, read only when some key is not a built-in searchable attribute."""
    for key in keys:
        if key in _CONTROL:
            continue
        try:
            tag, _ = resolve_attribute_id(key)
        except KeyError:
            continue
        known = BY_TAG.get(tag)
        if known is None or not known.searchable:
            return await all_tags(db)
    return {}


def queryable(tag: QueryTag, levels: Iterable[Level]) -> QueryTag:
    """The tag if it can be matched here; InvalidRequest says why not (Azure's messages)."""
    if tag.status != READY:
        raise InvalidRequest(f"extended query tag {tag.name} is not queryable yet: it is {tag.status}")
    if tag.query_status == DISABLED:
        raise InvalidRequest(
            f"query is disabled on extended query tag {tag.name}: some values could not be indexed "
            "(see its errors); PATCH its queryStatus to Enabled to query it anyway"
        )
    if tag.level not in levels:
        raise InvalidRequest(
            f"extended query tag {tag.name} is a {tag.level.value}-level tag; it cannot be searched here"
        )
    return tag


def extended_condition(tag: QueryTag, value: str, fuzzy: bool) -> ColumnElement[bool]:
    """The owners (studies, series or instances of the tag's level) whose value matches."""
    name = tag.name
    if value == "":
        raise InvalidRequest(f"{name} has an empty value; omit it to match everything")
    if tag.vr in NUMBER_VRS:
        condition: ColumnElement[bool] = VALUES.c.value_number == _number(name, value)
    elif tag.vr == "DT":
        condition = _datetime_range(name, value)
    else:
        attribute = Attribute(name, tag.path, tag.vr, tag.level, "value")
        column = VALUES.c.value_date if tag.vr == "DA" else VALUES.c.value
        condition = match(attribute, value, column, fuzzy, VALUES)
    owners = select(VALUES.c.owner_pk).where(VALUES.c.tag_key == tag.key, condition)
    owner_id: Any = _OWNERS[tag.level].c.id
    return owner_id.in_(owners)  # type: ignore[no-any-return]


def _number(name: str, value: str) -> float:
    """Numeric VRs match by value, so 5, 5.0 and 5e0 are one number."""
    try:
        return float(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be a number, got {value!r}") from None


def _datetime_range(name: str, value: str) -> ColumnElement[bool]:
    """PS3.4 C.2.2.2.5: `a`, `a-b`, `a-`, `-b`; a partial value covers its whole period."""
    if value.count("-") > 1 or value.strip() == "-":
        raise InvalidRequest(f"{name} range {value!r} must look like a-b, a- or -b (no UTC offsets)")
    low_text, high_text = value.split("-") if "-" in value else (value, value)
    try:
        low = parse_datetime(low_text) if low_text else None
        high = parse_datetime(high_text, upper=True) if high_text else None
    except ValueError as exc:
        raise InvalidRequest(f"{name}: {exc}") from None
    if low is not None and high is not None and low > high:
        raise InvalidRequest(f"{name} range {value!r} starts after it ends")
    conditions = [VALUES.c.value >= low] if low is not None else []
    if high is not None:
        conditions.append(VALUES.c.value <= high)
    return and_(*conditions)
