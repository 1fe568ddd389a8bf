"""Bulk data (PS3.18 10.4.1.1.5): the binary values that metadata references by BulkDataURI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pydicom
from pydicom.encaps import generate_frames

from domain.blobs import CHUNK, BlobStore
from domain.db import Database
from domain.dicom.header import PIXEL_DATA, locate_pixel_data
from domain.errors import InvalidRequest, NotFound
from domain.services.retrieve import find_files

BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}


@dataclass
class BulkData:
    """The value as parts: one for a native value, one per frame of encapsulated pixel data."""

    transfer_syntax_uid: str
    parts: list[AsyncIterator[bytes]]


async def retrieve_bulk_data(
    db: Database, blobs: BlobStore, study_uid: str, series_uid: str, sop_instance_uid: str, tag: str
) -> BulkData:
    if len(tag) != 8 or any(c not in "0123456789abcdefABCDEF" for c in tag):
        raise InvalidRequest(f"bulk data tag {tag!r} must be eight hex digits, such as 7FE00010")
    number = int(tag, 16)
    (stored,) = await find_files(db, study_uid, series_uid, sop_instance_uid)
    async with blobs.local_file(stored.blob_key) as path:
        if number == PIXEL_DATA:
            location = await anyio.to_thread.run_sync(locate_pixel_data, path)
            if location is None:
                raise NotFound(f"instance {sop_instance_uid} has no pixel data")
            if location.length != 0xFFFFFFFF:
                parts = [_byte_range(path, location.start, location.length)]
            else:
                frames = await anyio.to_thread.run_sync(_frames, path, location.start)
                parts = [_one(frame) for frame in frames]
        else:
            value = await anyio.to_thread.run_sync(_element_value, path, number)
            if value is None:
                raise NotFound(f"instance {sop_instance_uid} has no binary value under ({tag[:4]},{tag[4:]})")
            parts = [_one(value)]
    return BulkData(stored.transfer_syntax_uid, parts)


def _element_value(path: Path, tag: int) -> bytes | None:
    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    element = ds.get(tag)
    if element is None or element.VR not in BINARY_VRS or not isinstance(element.value, bytes):
        return None
    return element.value


def _frames(path: Path, start: int) -> list[bytes]:
    """PS3.5 A.4: the frames of encapsulated pixel data, fragments joined per frame."""
    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    with open(path, "rb") as fp:
        fp.seek(start)
        return list(generate_frames(fp, number_of_frames=int(ds.get("NumberOfFrames") or 1)))


async def _byte_range(path: Path, start: int, length: int) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as file:
        await file.seek(start)
        while length > 0:
            chunk = await file.read(min(CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data
