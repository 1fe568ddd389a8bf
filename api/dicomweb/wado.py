"""WADO-RS (PS3.18 10.4): studies, series and instances as Part-10 files (or a ZIP of them)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from litestar import Request, get
from litestar.response import Stream

from api.deps import PathStr, RuntimeDep
from api.dicomweb.media import DICOM, MULTIPART
from api.dicomweb.negotiation import ZIP, choose_representation
from api.dicomweb.urls import path_uids, wants_original
from api.dicomweb.zipstream import zip_stream
from domain.blobs import BlobStore
from domain.services.renditions import Rendition, rendition
from domain.services.retrieve import StoredFile, find_files


async def _retrieve(
    request: Request[Any, Any, Any],
    runtime: RuntimeDep,
    study: str,
    series: str | None = None,
    instance: str | None = None,
) -> Stream:
    files = await find_files(
        runtime.db, *path_uids(study, series, instance), original=wants_original(request)
    )
    chosen = choose_representation(request.headers.get("accept"), files, single=instance is not None)
    spool = runtime.settings.spool_dir
    if chosen.media_type == ZIP:
        return Stream(
            zip_stream(_zip_entries(runtime.blobs, files)),
            media_type=ZIP,
            headers={"Content-Disposition": f'attachment; filename="{study}.zip"'},
        )
    # Every transcoding happens before answering, into spooled files, so a codec's refusal is
    # still a 406 (PS3.18 8.7.3.5) and never a stream cut short; files as stored just stream.
    parts = [await rendition(runtime.blobs, f, chosen.transfer_syntax, spool) for f in files]
    if chosen.media_type == DICOM:
        (part,) = parts
        return Stream(
            part.chunks,
            media_type=f"{DICOM}; transfer-syntax={part.transfer_syntax_uid}",
            headers={"Content-Length": str(part.size)},
        )
    boundary = uuid.uuid4().hex
    heads = [_part_head(boundary, p.transfer_syntax_uid, p.size) for p in parts]
    length = sum(len(h) + p.size + 2 for h, p in zip(heads, parts, strict=True)) + len(_closing(boundary))
    return Stream(
        _multipart(parts, heads, boundary),
        media_type=f'{MULTIPART}; type="{DICOM}"; boundary={boundary}',
        headers={"Content-Length": str(length)},
    )


def _part_head(boundary: str, transfer_syntax_uid: str, size: int) -> bytes:
    return (
        f"--{boundary}\r\nContent-Type: {DICOM}; transfer-syntax={transfer_syntax_uid}\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()


def _closing(boundary: str) -> bytes:
    return f"--{boundary}--\r\n".encode()


async def _multipart(parts: Sequence[Rendition], heads: list[bytes], boundary: str) -> AsyncIterator[bytes]:
    """One instance at a time, in chunks: memory stays flat however large the study."""
    for head, part in zip(heads, parts, strict=True):
        yield head
        async for chunk in part.chunks:
            yield chunk
        yield b"\r\n"
    yield _closing(boundary)


async def _zip_entries(
    blobs: BlobStore, files: Sequence[StoredFile]
) -> AsyncIterator[tuple[str, AsyncIterator[bytes]]]:
    for stored in files:
        yield f"{stored.series_uid}/{stored.sop_instance_uid}.dcm", blobs.open(stored.blob_key)


@get("/studies/{study:str}")
async def retrieve_study(request: Request[Any, Any, Any], runtime: RuntimeDep, study: PathStr) -> Stream:
    return await _retrieve(request, runtime, study)


@get("/studies/{study:str}/series/{series:str}")
async def retrieve_series(
    request: Request[Any, Any, Any], runtime: RuntimeDep, study: PathStr, series: PathStr
) -> Stream:
    return await _retrieve(request, runtime, study, series)


@get("/studies/{study:str}/series/{series:str}/instances/{instance:str}")
async def retrieve_instance(
    request: Request[Any, Any, Any], runtime: RuntimeDep, study: PathStr, series: PathStr, instance: PathStr
) -> Stream:
    return await _retrieve(request, runtime, study, series, instance)


ROUTES = [
    retrieve_study,
    retrieve_series,
    retrieve_instance,
]
