"""Read a Part-10 header once, up to the pixel data, into everything the index needs."""

from __future__ import annotations

import datetime as dt
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import Tag

from domain.dicom.attributes import BY_KEYWORD, COMPUTED, Level
from domain.dicom.fast_json import BULK_DATA_PREFIX, header_json
from domain.dicom.names import name_words, normalize_person_name
from domain.dicom.uids import is_valid_uid

REQUIRED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
# PS3.18 F.2.7: binary values travel as BulkDataURI or InlineBinary; the stored metadata keeps
# small ones inline and leaves large ones (overlays, waveforms, LUTs) to the file.
INLINE_BINARY_LIMIT = 1024
PIXEL_DATA = 0x7FE00010


class UnreadableInstance(Exception):
    """The part is not a usable DICOM Part-10 instance; the message says why."""


@dataclass
class Header:
    """One instance's index values, its DICOM JSON, and the problems found on the way."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    study: dict[str, Any]
    series: dict[str, Any]
    instance: dict[str, Any]
    dicom_json: str
    warnings: list[str] = field(default_factory=list)
    preamble_missing: bool = False


def read_header(path: Path) -> Header:
    """Parse `path` without its pixel data; raise UnreadableInstance for what cannot be stored."""
    with open(path, "rb") as fp:
        try:
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=_meta_without_preamble(fp))
            position = fp.tell()
            if not getattr(ds, "file_meta", None):
                raise InvalidDicomError
        except InvalidDicomError:
            raise UnreadableInstance(
                "not a DICOM Part-10 file: it lacks the 128-byte preamble, the 'DICM' prefix "
                "and the file meta information (PS3.10 7.1)"
            ) from None
        except Exception as exc:  # pydicom raises many types for broken bytes
            raise UnreadableInstance(f"the DICOM header cannot be read: {exc}") from None
        size = os.fstat(fp.fileno()).st_size
        _check_values_complete(ds, size)
        pixel_data = _check_pixel_data_complete(fp, position, size, ds)
    header = header_of(ds, pixel_data)
    header.preamble_missing = ds.preamble is None
    return header


def _meta_without_preamble(fp: Any) -> bool:
    """Some writers (pydicom's dcmwrite of a dataset built in memory, so dicomweb-client) send
    the file meta group without the preamble and 'DICM' of PS3.10 7.1; such a stream is
    unambiguous, so it is read and stored with a preamble added."""
    head = fp.read(132)
    fp.seek(0)
    return bool(head[128:132] != b"DICM" and head[:2] == b"\x02\x00" and head[4:6].isalpha())


def header_of(ds: Dataset, pixel_data: PixelDataLocation | None = None) -> Header:
    meta = getattr(ds, "file_meta", None)
    transfer_syntax = str(getattr(meta, "TransferSyntaxUID", "") or "").rstrip("\x00 ")
    if not transfer_syntax or not is_valid_uid(transfer_syntax):
        raise UnreadableInstance("the file meta information has no valid TransferSyntaxUID (0002,0010)")
    warnings: list[str] = []
    body = json_dict(ds, transfer_syntax, warnings)
    if pixel_data is not None:  # PS3.18 F.2.6: the pixels are fetched from their BulkDataURI
        body[f"{PIXEL_DATA:08X}"] = {
            "vr": pixel_data.vr,
            "BulkDataURI": f"{BULK_DATA_PREFIX}{PIXEL_DATA:08X}",
        }
    uids = {keyword: _required_uid(body, keyword) for keyword in REQUIRED_UIDS}
    values = {level: _index_values(body, ds, level, warnings) for level in Level}
    return Header(
        study_uid=uids["StudyInstanceUID"],
        series_uid=uids["SeriesInstanceUID"],
        sop_instance_uid=uids["SOPInstanceUID"],
        sop_class_uid=uids["SOPClassUID"],
        transfer_syntax_uid=transfer_syntax,
        study=values[Level.STUDY],
        series=values[Level.SERIES],
        instance=values[Level.INSTANCE],
        dicom_json=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        warnings=warnings,
    )


def json_dict(ds: Dataset, transfer_syntax: str, warnings: list[str]) -> dict[str, Any]:
    """DICOM JSON (PS3.18 Annex F) of the header; large binary values are left to the file."""
    encoded = header_json(ds, inline_limit=INLINE_BINARY_LIMIT)
    for tag in encoded.invalid:
        warnings.append(
            f"DICOM100: {_tag(tag)} - the value does not conform to its VR; left out of the metadata"
        )
    encoded.body["00020010"] = {"vr": "UI", "Value": [transfer_syntax]}
    return dict(sorted(encoded.body.items()))


def _first(body: dict[str, Any], tag: str) -> Any:
    """The first value of an element of DICOM JSON, a PN as its `A=I=P` string; None if empty."""
    values = body.get(tag, {}).get("Value")
    if not values:
        return None
    value = values[0]
    if isinstance(value, dict):  # PN (PS3.18 F.2.2)
        groups = [value.get(k, "") for k in ("Alphabetic", "Ideographic", "Phonetic")]
        return "=".join(groups).rstrip("=")
    return value


def _required_uid(body: dict[str, Any], keyword: str) -> str:
    value = str(_first(body, BY_KEYWORD[keyword].tag) or "").rstrip("\x00 ")
    if not value:
        raise UnreadableInstance(f"required attribute {keyword} ({_tag(keyword)}) is missing")
    if not is_valid_uid(value):
        raise UnreadableInstance(
            f"required attribute {keyword} ({_tag(keyword)}) is not a valid UID: {value!r}"
        )
    return value


def index_values(body: dict[str, Any], level: Level) -> dict[str, Any]:
    """A level's index columns from an instance's stored DICOM JSON."""
    return _index_values(body, Dataset(), level, [])


def _index_values(body: dict[str, Any], ds: Dataset, level: Level, warnings: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for attribute in BY_KEYWORD.values():
        if attribute.level is not level or attribute.vr == "UI":
            continue
        if attribute.keyword in COMPUTED:
            continue
        try:
            value = _convert(attribute.vr, _first(body, attribute.tag))
            if value is None and attribute.tag not in body and int(attribute.tag, 16) in ds:
                raise ValueError("the value does not conform to its VR")
        except (ValueError, TypeError, OverflowError) as exc:
            warnings.append(
                f"DICOM100: {_tag(attribute.keyword)} - {attribute.keyword} is not indexed: {exc}"
            )
            value = None
        if attribute.vr == "PN":
            norm = normalize_person_name(value) if value else None
            values[f"{attribute.column}_norm"] = norm
            values[f"{attribute.column}_words"] = name_words(norm) if norm else None
        values[attribute.column] = value
    return values


def _convert(vr: str, value: Any) -> Any:
    """The first value of an element as the index stores it; ValueError when it is invalid."""
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        value = value[0] if len(value) else None
    if value is None or value == "":
        return None
    if vr == "DA":
        return parse_date(str(value))
    if vr == "TM":
        return parse_time(str(value))
    if vr in ("IS", "US", "UL", "SS", "SL"):
        return int(str(value).strip())
    text = str(value).strip()
    limit = 64 if vr in ("LO", "SH", "CS", "AE") else 400
    if len(text) > limit:
        raise ValueError(f"value longer than {limit} characters")
    return text or None


def parse_date(value: str) -> dt.date:
    """DA (PS3.5 6.2): YYYYMMDD."""
    text = value.strip()
    if len(text) != 8 or not text.isdigit():
        raise ValueError(f"{value!r} is not a date in the form YYYYMMDD")
    return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))


def parse_time(value: str) -> str:
    """TM (PS3.5 6.2): HH[MM[SS[.F{1-6}]]], returned as a fixed-width string that sorts as time."""
    text = value.strip().replace(":", "")  # ACR-NEMA colons are still seen in the wild
    whole, _, fraction = text.partition(".")
    if not whole.isdigit() or len(whole) not in (2, 4, 6) or (fraction and not fraction.isdigit()):
        raise ValueError(f"{value!r} is not a time in the form HHMMSS.FFFFFF")
    hours, minutes, seconds = int(whole[:2]), int(whole[2:4] or 0), int(whole[4:6] or 0)
    if hours > 23 or minutes > 59 or seconds > 60 or len(fraction) > 6:
        raise ValueError(f"{value!r} is not a valid time of day")
    return f"{whole.ljust(6, '0')}.{fraction.ljust(6, '0')}"


def _check_values_complete(ds: Dataset, size: int) -> None:
    """PS3.5 7.1: a value holds exactly its declared length; a shorter one means the file was cut."""
    for raw in ds.elements():
        length, start = getattr(raw, "length", None), getattr(raw, "value_tell", 0)
        if length is None or length == 0xFFFFFFFF or not isinstance(raw.value, bytes):
            continue
        if len(raw.value) != length or start + length > size:
            raise UnreadableInstance(
                f"the value of {_tag(raw.tag)} is {length} bytes but the file ends after "
                f"{max(size - start, 0)} (truncated)"
            )


@dataclass(frozen=True)
class PixelDataLocation:
    """Where the Pixel Data value lies in a Part-10 file."""

    vr: str
    start: int  # offset of the value
    length: int  # 0xFFFFFFFF for encapsulated (undefined length) data


def locate_pixel_data(path: Path) -> PixelDataLocation | None:
    """The Pixel Data element of a stored file, found by reading its header again."""
    with open(path, "rb") as fp:
        ds = pydicom.dcmread(fp, stop_before_pixels=True, force=_meta_without_preamble(fp))
        return _pixel_data_at(fp, fp.tell(), ds)


def _pixel_data_at(fp: Any, position: int, ds: Dataset) -> PixelDataLocation | None:
    fp.seek(position)
    head = fp.read(12)
    if len(head) < 8:
        return None
    order = "<" if ds.is_little_endian in (True, None) else ">"
    group, elem = struct.unpack(order + "HH", head[:4])
    if (group << 16 | elem) != PIXEL_DATA:
        return None
    if head[4:6].isalpha():  # explicit VR: tag, VR, two reserved bytes, 32-bit length
        vr, length, start = head[4:6].decode(), struct.unpack(order + "L", head[8:12])[0], position + 12
    else:  # implicit VR (PS3.5 8.2): OW, or OB for 8-bit data
        vr = "OW" if ds.get("BitsAllocated", 16) > 8 else "OB"
        length, start = struct.unpack(order + "L", head[4:8])[0], position + 8
    return PixelDataLocation(vr, start, length)


def _check_pixel_data_complete(fp: Any, position: int, size: int, ds: Dataset) -> PixelDataLocation | None:
    """Reject a file cut short inside its pixel data, which a header-only read cannot notice."""
    location = _pixel_data_at(fp, position, ds)
    if location is None:
        return None
    if location.length == 0xFFFFFFFF:
        order = "<" if ds.is_little_endian in (True, None) else ">"
        _check_fragments_complete(fp, location.start, size, order)
    elif location.start + location.length > size:
        raise UnreadableInstance(
            f"the pixel data is {location.length} bytes "
            f"but the file holds {size - location.start} (truncated)"
        )
    return location


def _check_fragments_complete(fp: Any, offset: int, size: int, order: str) -> None:
    """PS3.5 A.4: items (FFFE,E000) follow one another until the delimiter (FFFE,E0DD)."""
    while offset + 8 <= size:
        fp.seek(offset)
        group, elem, length = struct.unpack(order + "HHL", fp.read(8))
        if (group, elem) == (0xFFFE, 0xE0DD):
            return
        if (group, elem) != (0xFFFE, 0xE000) or length == 0xFFFFFFFF:
            raise UnreadableInstance("the encapsulated pixel data has a malformed item")
        offset += 8 + length
    raise UnreadableInstance("the encapsulated pixel data ends without its delimiter (truncated)")


def _tag(keyword: str | int) -> str:
    tag = Tag(keyword)
    return f"({tag.group:04X},{tag.element:04X})"
