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
from api.dicomweb.urls import path_uids
from api.dicomweb.zipstream import zip_stream
from domain.blobs import BlobStore
from domain.services.renditions import AS_STORED, Rendition, rendition
from domain.services.retrieve import StoredFile, find_files


async def _retrieve(
    request: Request[Any, Any, Any],
    runtime: RuntimeDep,
    study: str,
    series: str | None = None,
    instance: str | None = None,
) -> Stream:
    files = await find_files(runtime.db, *path_uids(study, series, instance))
    chosen = choose_representation(request.headers.get("accept"), files, single=instance is not None)
    spool = runtime.settings.spool_dir
    if chosen.media_type == ZIP:
        return Stream(
            zip_stream(_zip_entries(runtime.blobs, files)),
            media_type=ZIP,
            headers={"Content-Disposition": f'attachment; filename="{study}.zip"'},
        )
    # The first instance is prepared before answering, so a codec's refusal is still a 406.
    first = await rendition(runtime.blobs, files[0], chosen.transfer_syntax, spool)
    if chosen.media_type == DICOM:
        return Stream(
            first.chunks,
            media_type=f"{DICOM}; transfer-syntax={first.transfer_syntax_uid}",
            headers={"Content-Length": str(first.size)},
        )
    boundary = uuid.uuid4().hex
    headers = {}
    if chosen.transfer_syntax in (AS_STORED, *{f.transfer_syntax_uid for f in files}) and all(
        f.transfer_syntax_uid == files[0].transfer_syntax_uid or chosen.transfer_syntax == AS_STORED
        for f in files
    ):  # nothing is transcoded: the whole length is known up front
        parts = sum(len(_part_head(boundary, f.transfer_syntax_uid, f.size)) + f.size + 2 for f in files)
        headers["Content-Length"] = str(parts + len(_closing(boundary)))
    return Stream(
        _multipart(runtime, files, chosen.transfer_syntax, first, boundary),
        media_type=f'{MULTIPART}; type="{DICOM}"; boundary={boundary}',
        headers=headers,
    )


def _part_head(boundary: str, transfer_syntax_uid: str, size: int) -> bytes:
    return (
        f"--{boundary}\r\nContent-Type: {DICOM}; transfer-syntax={transfer_syntax_uid}\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()


def _closing(boundary: str) -> bytes:
    return f"--{boundary}--\r\n".encode()


async def _multipart(
    runtime: RuntimeDep, files: Sequence[StoredFile], syntax: str, first: Rendition, boundary: str
) -> AsyncIterator[bytes]:
    """One instance at a time, in chunks, transcoded if asked: memory stays flat."""
    for index, stored in enumerate(files):
        part = (
            first
            if index == 0
            else await rendition(runtime.blobs, stored, syntax, runtime.settings.spool_dir)
        )
        yield _part_head(boundary, part.transfer_syntax_uid, part.size)
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
