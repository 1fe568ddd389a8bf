"""DICOM JSON (PS3.18 Annex F) straight from pydicom's raw elements.

pydicom's `to_json_dict` converts every element into a DataElement first, which costs more
than reading the header. Here the common value representations are encoded from the raw
bytes; anything else (sequences, text in other character sets, ambiguous VRs) is handed to
pydicom element by element, so the output equals pydicom's. An element whose value does not
conform to its VR is left out of the JSON (no DICOM JSON reader could load it; Azure does the
same) and reported, so the store can warn about it; the file keeps it.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset

_TEXT_MULTI = {"AE", "AS", "CS", "DA", "DT", "LO", "SH", "TM", "UC"}
_TEXT_SINGLE = {"LT", "ST", "UT", "UR"}
_CHARSET_TEXT = {"LO", "SH", "UC", "LT", "ST", "UT", "PN"}  # PS3.5 6.1.2.3: these follow (0008,0005)
_BINARY_NUMBERS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "UV": "Q", "SV": "q"}
_BULK = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
# Character sets whose text decodes byte for byte (PS3.3 C.12.1.1.2), so no escape handling.
_SIMPLE_CHARSETS = {"": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}
IN_FILE = "\x00in-file"  # marks a binary value left to the file (pixel data, large blobs)
# A top-level binary value left to the file is referenced relative to its instance's URL;
# the metadata route makes it absolute (PS3.18 F.2.6).
BULK_DATA_PREFIX = "bulkdata/"


@dataclass
class HeaderJson:
    body: dict[str, Any]
    invalid: list[int] = field(default_factory=list)  # tags left out: values not of their VR


def header_json(ds: Dataset, *, inline_limit: int) -> HeaderJson:
    """The dataset as DICOM JSON; binary values over `inline_limit` bytes are left out."""
    charset = ds.get("SpecificCharacterSet", "") if 0x00080005 in ds else ""
    key = "" if isinstance(charset, list) else str(charset).strip()
    encoding = _SIMPLE_CHARSETS.get(key)  # None: pydicom decodes the text
    result = HeaderJson({})
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
            result.invalid.append(tag)
            continue
        if encoded and encoded.get("BulkDataURI") != IN_FILE:
            result.body[f"{tag:08X}"] = _without_bulk_data(encoded)
    return result


def _encode(raw: Any, encoding: str | None, inline_limit: int) -> dict[str, Any] | None:
    """An element from its raw bytes; None when pydicom should do it; {} to leave it out."""
    if not hasattr(raw, "value_tell") or raw.length == 0xFFFFFFFF or raw.VR == "SQ" or raw.is_buffered:
        return None  # already a DataElement, or a sequence / encapsulated value
    vr = raw.VR or _dictionary_vr(raw.tag)
    if vr is None or (vr == "UN" and _dictionary_vr(raw.tag) not in (None, "UN")):
        return None  # pydicom replaces UN by the dictionary's VR
    if vr in _CHARSET_TEXT and encoding is None:
        return None
    value: bytes | None = raw.value
    if not value:
        return {"vr": vr}
    if vr in _BULK:
        if len(value) > inline_limit:
            return {"vr": vr, "BulkDataURI": f"{BULK_DATA_PREFIX}{raw.tag:08X}"}
        return {"vr": vr, "InlineBinary": base64.b64encode(value).decode("ascii")}
    if vr in _BINARY_NUMBERS:
        code = _BINARY_NUMBERS[vr]
        order = "<" if raw.is_little_endian else ">"
        return {
            "vr": vr,
            "Value": list(struct.unpack(f"{order}{len(value) // struct.calcsize(code)}{code}", value)),
        }
    if vr in ("IS", "DS"):
        return {"vr": vr, "Value": _numbers(value, vr)}
    if vr == "UI":
        return _strings(vr, value.decode("ascii").rstrip("\x00 ").split("\\"))
    if vr == "PN":
        assert encoding is not None
        names = [_person_name(v) for v in value.decode(encoding).rstrip("\x00 ").split("\\")]
        return {"vr": vr, "Value": names}
    if vr in _TEXT_MULTI or vr in _TEXT_SINGLE:
        text = value.decode(encoding or "ascii").rstrip(" \x00")
        return _strings(vr, [text] if vr in _TEXT_SINGLE else text.split("\\"))
    return None


def _strings(vr: str, values: list[str]) -> dict[str, Any]:
    return {"vr": vr} if values == [""] else {"vr": vr, "Value": values}


def _numbers(value: bytes, vr: str) -> list[int | float | None]:
    out: list[int | float | None] = []
    for text in value.decode("ascii").split("\\"):
        text = text.strip(" \x00")
        if text == "":
            out.append(None)
        elif vr == "DS":
            out.append(float(text))
        else:
            number = float(text)  # PS3.5 allows "12.0"? no, but pydicom reads it as 12
            if not number.is_integer() or not text.lstrip("+-").replace(".", "", 1).isdigit():
                raise ValueError(text)
            out.append(int(number))
    return out


def _person_name(value: str) -> dict[str, str]:
    return dict(zip(("Alphabetic", "Ideographic", "Phonetic"), value.split("="), strict=False))


def _dictionary_vr(tag: int) -> str | None:
    try:
        vr: str = dictionary_VR(tag)
    except KeyError:
        return None
    return None if " or " in vr else vr


def _by_pydicom(ds: Dataset, tag: int, inline_limit: int) -> dict[str, Any] | None:
    # pydicom's threshold counts base64 characters: 4 for every 3 bytes
    threshold = (inline_limit + 2) // 3 * 4
    try:
        encoded: dict[str, Any] = ds[tag].to_json_dict(lambda _: IN_FILE, threshold)
    except Exception:
        return None
    return encoded


def _without_bulk_data(element: dict[str, Any]) -> dict[str, Any]:
    """Sequence items from pydicom may hold values marked as left to the file: drop those."""
    if element.get("vr") == "SQ":
        for item in element.get("Value", ()):
            for tag in [t for t, e in item.items() if e.get("BulkDataURI") == IN_FILE]:
                del item[tag]
            for nested in item.values():
                _without_bulk_data(nested)
    return element
