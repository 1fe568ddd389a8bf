"""Extended query tag paths, and the value of such a tag in an instance's stored DICOM JSON.

Only the first value of an element is indexed, as Azure does; empty values are not indexed.
A value that does not fit its VR raises ValueError with a message for the tag's error list.
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from domain.dicom.header import parse_date, parse_time
from domain.dicom.names import name_words, normalize_person_name
from domain.dicom.uids import is_valid_uid

# Azure's list (PS3.5 VRs where matching makes sense), plus DS, which Azure rejects.
SUPPORTED_VRS = frozenset(
    [
        "AE",
        "AS",
        "CS",
        "DA",
        "DS",
        "DT",
        "FD",
        "FL",
        "IS",
        "LO",
        "PN",
        "SH",
        "SL",
        "SS",
        "TM",
        "UI",
        "UL",
        "US",
    ]
)
INTEGER_VRS = {"IS": (-(2**31), 2**31 - 1), "SL": (-(2**31), 2**31 - 1), "SS": (-(2**15), 2**15 - 1)}
INTEGER_VRS |= {"UL": (0, 2**32 - 1), "US": (0, 2**16 - 1)}
NUMBER_VRS = frozenset({*INTEGER_VRS, "DS", "FL", "FD"})
# PS3.5 Table 6.2-1 maximum lengths, in characters
MAX_LENGTH = {"AE": 16, "AS": 4, "CS": 16, "LO": 64, "SH": 16, "UI": 64, "PN": 64 * 3 + 2}
_BINARY = {"US": "<H", "SS": "<h", "UL": "<I", "SL": "<i", "FL": "<f", "FD": "<d"}
_HEX = set("0123456789abcdefABCDEF")


def parse_tag_path(path: str) -> tuple[str, str | None]:
    """A path (eight hex digits or a keyword) as (tag, keyword); ValueError when it is neither."""
    if len(path) == 8 and set(path) <= _HEX:
        tag = path.upper()
        return tag, keyword_for_tag(int(tag, 16)) or None
    number = tag_for_keyword(path)
    if number is None:
        raise ValueError(f"{path!r} is neither a DICOM keyword nor a tag of eight hex digits")
    return f"{number:08X}", path


def is_private(tag: str) -> bool:
    return int(tag[:4], 16) % 2 == 1


def is_private_creator(tag: str) -> bool:
    """PS3.5 7.8.1: (gggg,0010-00FF) of an odd group reserve the blocks of private elements."""
    return is_private(tag) and 0x10 <= int(tag[4:], 16) <= 0xFF


def indexed_value(
    body: dict[str, Any], tag: str, vr: str, private_creator: str | None
) -> dict[str, Any] | None:
    """The index columns of the tag's first value in `body`, or None when it has no value."""
    if private_creator is not None and _creator_of(body, tag) != private_creator:
        return None
    first = _first_value(body.get(tag), vr)
    if first is None or first == "":
        return None
    return _columns(vr, first)


def _creator_of(body: dict[str, Any], tag: str) -> str | None:
    block = int(tag[4:], 16) >> 8
    value = _first_value(body.get(f"{tag[:4]}00{block:02X}"), "LO")
    return str(value).strip() if value is not None else None


def _first_value(element: dict[str, Any] | None, vr: str) -> Any:
    if not element:
        return None
    values = element.get("Value")
    if values:
        return values[0]
    if "InlineBinary" in element:  # a private element read with implicit VR arrives as UN
        raw = base64.b64decode(element["InlineBinary"])
        if vr in _BINARY:
            size = struct.calcsize(_BINARY[vr])
            if len(raw) < size:
                raise ValueError(f"the value is {len(raw)} bytes, too short for {vr}")
            return struct.unpack(_BINARY[vr], raw[:size])[0]
        return raw.decode("latin-1").split("\\")[0].strip(" \x00")
    return None


def _columns(vr: str, value: Any) -> dict[str, Any]:
    if vr in NUMBER_VRS:
        return {"value_number": _number(vr, value)}
    if vr == "DA":
        return {"value_date": parse_date(str(value))}
    if vr == "TM":
        return {"value": parse_time(str(value))}
    if vr == "DT":
        return {"value": parse_datetime(str(value))}
    if vr == "PN":
        text = _person_name(value)
        _check_length(vr, text)
        norm = normalize_person_name(text)
        return {"value": text, "value_norm": norm, "value_words": name_words(norm)}
    text = str(value).strip()
    _check_length(vr, text)
    if vr == "UI" and not is_valid_uid(text):
        raise ValueError(f"{text!r} is not a valid UID")
    return {"value": text}


def _number(vr: str, value: Any) -> float:
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    if vr in INTEGER_VRS:
        low, high = INTEGER_VRS[vr]
        if not number.is_integer() or not low <= number <= high:
            raise ValueError(f"{value!r} is not a whole number between {low} and {high}")
    return number


def _person_name(value: Any) -> str:
    if isinstance(value, dict):  # PS3.18 F.2.2
        groups = [value.get(k, "") for k in ("Alphabetic", "Ideographic", "Phonetic")]
        return "=".join(groups).rstrip("=")
    return str(value).strip()


def _check_length(vr: str, text: str) -> None:
    limit = MAX_LENGTH.get(vr, 400)
    if len(text) > limit:
        raise ValueError(f"the value is {len(text)} characters, longer than the {limit} that {vr} allows")


_DT_LOW = "00000101000000.000000"
_DT_HIGH = "99991231235959.999999"


def parse_datetime(value: str, *, upper: bool = False) -> str:
    """DT (PS3.5 6.2): YYYY[MM[DD[HH[MM[SS[.F{1-6}]]]]]][&ZZXX] as fixed-width text that sorts
    as time; missing parts are the earliest instant, or with `upper` the latest (range ends).
    The offset from UTC is ignored, as for TM."""
    text = value.strip()
    for sign in "+-":
        if sign in text[4:]:
            text = text[: 4 + text[4:].index(sign)]
    whole, _, fraction = text.partition(".")
    if (
        not whole.isdigit()
        or len(whole) not in (4, 6, 8, 10, 12, 14)
        or (fraction and not fraction.isdigit())
    ):
        raise ValueError(f"{value!r} is not a date and time in the form YYYYMMDDHHMMSS.FFFFFF")
    if len(fraction) > 6 or (fraction and len(whole) != 14):
        raise ValueError(f"{value!r} is not a valid date and time")
    fill = _DT_HIGH if upper else _DT_LOW
    padded = whole + fill[len(whole) : 14]
    if int(padded[4:6]) > 12 or int(padded[6:8]) > 31 or int(padded[8:10]) > 23 or int(padded[10:12]) > 59:
        raise ValueError(f"{value!r} is not a valid date and time")
    if len(whole) == 14:
        return f"{padded}.{fraction.ljust(6, '9' if upper else '0')}"
    return padded + fill[14:]
