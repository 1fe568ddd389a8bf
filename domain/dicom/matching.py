"""QIDO matching (PS3.4 C.2.2.2) as SQL conditions over the index columns."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.sql.elements import ColumnElement as Column

from domain.dicom.attributes import Attribute
from domain.dicom.header import parse_date, parse_time
from domain.dicom.names import normalize_person_name
from domain.dicom.uids import is_valid_uid
from domain.errors import InvalidRequest

_WILDCARD = re.compile(r"[*?]")


def match(
    attribute: Attribute, value: str, column: Column[Any], fuzzy: bool, table: Any
) -> ColumnElement[bool]:
    """The condition for `attribute=value`; InvalidRequest names the attribute when it is malformed."""
    if value == "":
        raise InvalidRequest(f"{attribute.keyword} has an empty value; omit it to match everything")
    vr = attribute.vr
    if vr == "UI":
        return _uid_list(attribute, value, column)
    if vr in ("DA", "TM"):
        return _range(attribute, value, column)
    if vr == "IS":
        try:
            return column == int(value)
        except ValueError:
            raise InvalidRequest(f"{attribute.keyword} must be a whole number, got {value!r}") from None
    if vr == "PN":
        return _person_name(attribute, value, table, fuzzy)
    return _string(value, column)


def _uid_list(attribute: Attribute, value: str, column: Column[Any]) -> ColumnElement[bool]:
    """PS3.4 C.2.2.2.2: a list of UIDs matches any of them (comma or backslash separated)."""
    uids = [uid.strip() for uid in re.split(r"[,\\]", value)]
    for uid in uids:
        if not is_valid_uid(uid):
            raise InvalidRequest(f"{attribute.keyword} value {uid!r} is not a valid UID")
    return column == uids[0] if len(uids) == 1 else column.in_(uids)


def _range(attribute: Attribute, value: str, column: Column[Any]) -> ColumnElement[bool]:
    """PS3.4 C.2.2.2.5: `a`, `a-b`, `a-` and `-b`; the ends are inclusive."""
    parse = parse_date if attribute.vr == "DA" else parse_time
    if value.count("-") > 1 or value.strip() == "-":
        raise InvalidRequest(f"{attribute.keyword} range {value!r} must look like a-b, a- or -b")
    try:
        if "-" not in value:
            return column == parse(value)
        low, high = (parse(part) if part else None for part in value.split("-"))
    except ValueError as exc:
        raise InvalidRequest(f"{attribute.keyword}: {exc}") from None
    if low is not None and high is not None and low > high:  # type: ignore[operator]
        raise InvalidRequest(f"{attribute.keyword} range {value!r} starts after it ends")
    conditions = [column >= low] if low is not None else []
    if high is not None:
        conditions.append(column <= high)
    return and_(*conditions)


def _person_name(attribute: Attribute, value: str, table: Any, fuzzy: bool) -> ColumnElement[bool]:
    """Case- and accent-insensitive; with fuzzy matching, every word of the value must start
    some component of the name ("joh do" finds Doe^John)."""
    normalized = normalize_person_name(value)
    if fuzzy and not _WILDCARD.search(value):
        words = [w for w in re.split(r"[\^= ,]+", normalized) if w]
        column = table.c[f"{attribute.column}_words"]
        return and_(*(column.like(f"% {_escape(word)}%", escape="\\") for word in words))
    return _string(normalized, table.c[f"{attribute.column}_norm"])


def _string(value: str, column: Column[Any]) -> ColumnElement[bool]:
    """PS3.4 C.2.2.2.4: `*` any run, `?` one character; a lone `*` matches everything."""
    if not _WILDCARD.search(value):
        return column == value
    if value.strip("*") == "":
        return or_(column.is_(None), column.is_not(None))
    prefix = value[:-1]
    if value.endswith("*") and not _WILDCARD.search(prefix):
        return and_(column >= prefix, column < prefix[:-1] + chr(ord(prefix[-1]) + 1))
    pattern = _escape(value).replace("*", "%").replace("?", "_")
    return column.like(pattern, escape="\\")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
