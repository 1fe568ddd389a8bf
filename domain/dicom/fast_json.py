"""DICOM JSON (PS3.18 Annex F) straight from pydicom's raw elements.

pydicom's `to_json_dict` converts every element into a DataElement first, which costs more
than reading the header. Here the common value representations are encoded from the raw
bytes; anything unusual (sequences, other character sets, ambiguous VRs, values that do not
parse) is handed to pydicom element by element, so the output equals pydicom's.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset

_TEXT_MULTI = {"AE", "AS", "CS", "DA", "DT", "LO", "SH", "TM", "UC"}
_TEXT_SINGLE = {"LT", "ST", "UT", "UR"}
_BINARY_NUMBERS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "UV": "Q", "SV": "q"}
_BULK = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
# Character sets whose text decodes byte for byte (PS3.3 C.12.1.1.2), so no escape handling.
_SIMPLE_CHARSETS = {"": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}

Fallback = Callable[[int], dict[str, Any] | None]


def header_json(
    ds: Dataset, *, inline_limit: int, pydicom_json: Callable[[Dataset], dict[str, Any]]
) -> dict[str, Any]:
    """The dataset as DICOM JSON, binary values over `inline_limit` base64 bytes left out."""
    charset = ds.get("SpecificCharacterSet", "") if 0x00080005 in ds else ""
    if isinstance(charset, list) or str(charset).strip() not in _SIMPLE_CHARSETS:
        return pydicom_json(ds)
    encoding = _SIMPLE_CHARSETS[str(charset).strip()]
    body: dict[str, Any] = {}
    for raw in ds.elements():
        tag = raw.tag
        if tag.element == 0 or tag.group == 0x0002:
            continue  # group lengths, and file meta kept apart
        try:
            encoded = _encode(raw, encoding, inline_limit)
        except (ValueError, UnicodeDecodeError, struct.error):
            encoded = None
        if encoded is None:
            encoded = _by_pydicom(ds, tag, inline_limit)
            if encoded is None:
                continue
        if encoded:
            body[f"{tag:08X}"] = encoded
    return body


def _encode(raw: Any, encoding: str, inline_limit: int) -> dict[str, Any] | None:
    """An element from its raw bytes; None when pydicom should do it; {} to leave it out."""
    if not hasattr(raw, "value_tell") or raw.length == 0xFFFFFFFF or raw.VR == "SQ" or raw.is_buffered:
        return None  # already a DataElement, or a sequence / encapsulated value
    vr = raw.VR or _dictionary_vr(raw.tag)
    if vr is None or (vr == "UN" and _dictionary_vr(raw.tag) not in (None, "UN")):
        return None  # pydicom replaces UN by the dictionary's VR
    value: bytes | None = raw.value
    if not value:
        return {"vr": vr}
    if vr in _BULK:
        if len(value) > (inline_limit // 4) * 3:
            return {}
        return {"vr": vr, "InlineBinary": base64.b64encode(value).decode("ascii")}
    if vr in _BINARY_NUMBERS:
        code = _BINARY_NUMBERS[vr]
        size = struct.calcsize(code)
        if len(value) % size:
            return None
        order = "<" if raw.is_little_endian else ">"
        return {"vr": vr, "Value": list(struct.unpack(f"{order}{len(value) // size}{code}", value))}
    if vr in ("IS", "DS"):
        return {"vr": vr, "Value": _numbers(value, vr)}
    if vr == "UI":
        return _strings(vr, value.decode("ascii").rstrip("\x00 ").split("\\"))
    if vr == "PN":
        names = [_person_name(v) for v in value.decode(encoding).rstrip("\x00 ").split("\\")]
        return {"vr": vr, "Value": names}
    if vr in _TEXT_MULTI:
        return _strings(vr, value.decode(encoding).rstrip(" \x00").split("\\"))
    if vr in _TEXT_SINGLE:
        return {"vr": vr, "Value": [value.decode(encoding).rstrip(" \x00")]}
    return None


def _strings(vr: str, values: list[str]) -> dict[str, Any]:
    if values == [""]:
        return {"vr": vr}
    return {"vr": vr, "Value": values}


def _numbers(value: bytes, vr: str) -> list[int | float | None]:
    number = int if vr == "IS" else float
    out: list[int | float | None] = []
    for text in value.decode("ascii").split("\\"):
        text = text.strip(" \x00")
        out.append(
            None if text == "" else number(float(text)) if vr == "IS" and "." in text else number(text)
        )
    return out


def _person_name(value: str) -> dict[str, str] | None:
    groups = value.split("=")
    name = dict(zip(("Alphabetic", "Ideographic", "Phonetic"), groups, strict=False))
    return name


def _dictionary_vr(tag: int) -> str | None:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return None
    return None if " or " in vr else vr


def _by_pydicom(ds: Dataset, tag: int, inline_limit: int) -> dict[str, Any] | None:
    try:
        element = ds[tag]
        return element.to_json_dict(_leave_in_file, inline_limit)
    except Exception:
        return None


IN_FILE = "\x00in-file"


def _leave_in_file(_: Any) -> str:
    return IN_FILE
