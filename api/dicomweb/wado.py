"""WADO-RS (PS3.18 10.4): studies, series and instances as Part-10 files, and their metadata."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from litestar import Request, Response, get
from litestar.response import Stream

from api.deps import PathStr, RuntimeDep
from api.dicomweb.media import DICOM, DICOM_JSON, MULTIPART, MediaRange, parse_accept
from api.dicomweb.urls import path_uids
from domain.blobs import BlobStore
from domain.dicom.uids import EXPLICIT_VR_LITTLE_ENDIAN
from domain.errors import NotAcceptable
from domain.services.retrieve import StoredFile, find_files, retrieve_metadata

AS_STORED = "*"


def choose_representation(
    accept: str | None, files: Sequence[StoredFile], *, single: bool
) -> tuple[str, str]:
    """PS3.18 8.7: the first acceptable (media type, transfer syntax), most preferred first.

    `*` keeps the stored syntax; a media type without transfer-syntax means Explicit VR Little
    Endian (PS3.18 8.7.3.5.2). Until transcoding lands, a syntax other than the stored one is 406.
    """
    stored = {f.transfer_syntax_uid for f in files}
    for media in parse_accept(accept):
        candidate = _candidate(media, single)
        if candidate is None:
            continue
        media_type, syntax = candidate
        if syntax == AS_STORED or stored == {syntax}:
            return media_type, syntax
    raise NotAcceptable(
        f"cannot answer Accept {accept!r}: the instances are stored as {', '.join(sorted(stored))}; "
        f'ask for multipart/related; type="{DICOM}"; transfer-syntax=* to get them as stored'
    )


def _candidate(media: MediaRange, single: bool) -> tuple[str, str] | None:
    syntax = media.params.get("transfer-syntax", EXPLICIT_VR_LITTLE_ENDIAN)
    if media.type in ("*/*", "multipart/*") or (media.type == MULTIPART and "type" not in media.params):
        return (DICOM if single and media.type == "*/*" else MULTIPART), media.params.get(
            "transfer-syntax", AS_STORED
        )
    if media.type == MULTIPART and media.params["type"].lower() == DICOM:
        return MULTIPART, syntax
    if single and media.type in (DICOM, "application/*"):
        return DICOM, syntax
    return None


async def _retrieve(
    request: Request[Any, Any, Any],
    runtime: RuntimeDep,
    study: PathStr,
    series: str | None = None,
    instance: str | None = None,
) -> Stream:
    files = await find_files(runtime.db, *path_uids(study, series, instance))
    media_type, _ = choose_representation(request.headers.get("accept"), files, single=instance is not None)
    if media_type == DICOM:
        (stored,) = files
        return Stream(
            runtime.blobs.open(stored.blob_key),
            media_type=f"{DICOM}; transfer-syntax={stored.transfer_syntax_uid}",
            headers={"Content-Length": str(stored.size)},
        )
    boundary = uuid.uuid4().hex
    heads = [_part_head(boundary, f) for f in files]
    closing = f"--{boundary}--\r\n".encode()
    length = sum(len(h) + f.size + 2 for h, f in zip(heads, files, strict=True)) + len(closing)
    return Stream(
        _multipart(runtime.blobs, files, heads, closing),
        media_type=f'{MULTIPART}; type="{DICOM}"; boundary={boundary}',
        headers={"Content-Length": str(length)},
    )


def _part_head(boundary: str, stored: StoredFile) -> bytes:
    return (
        f"--{boundary}\r\nContent-Type: {DICOM}; transfer-syntax={stored.transfer_syntax_uid}\r\n"
        f"Content-Length: {stored.size}\r\n\r\n"
    ).encode()


async def _multipart(
    blobs: BlobStore, files: Sequence[StoredFile], heads: list[bytes], closing: bytes
) -> AsyncIterator[bytes]:
    """One instance at a time, in chunks: memory stays flat however large the study."""
    for head, stored in zip(heads, files, strict=True):
        yield head
        async for chunk in blobs.open(stored.blob_key):
            yield chunk
        yield b"\r\n"
    yield closing


async def _metadata(
    request: Request[Any, Any, Any],
    runtime: RuntimeDep,
    study: PathStr,
    series: str | None = None,
    instance: str | None = None,
) -> Response[bytes]:
    accept = request.headers.get("accept")
    if not any(r.matches(DICOM_JSON) or r.matches("application/json") for r in parse_accept(accept)):
        raise NotAcceptable(f"metadata is served as {DICOM_JSON}; the Accept header {accept!r} excludes it")
    documents = await retrieve_metadata(runtime.db, *path_uids(study, series, instance))
    body = ("[" + ",".join(documents) + "]").encode()
    return Response(body, media_type=DICOM_JSON)


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


@get("/studies/{study:str}/metadata")
async def retrieve_study_metadata(
    request: Request[Any, Any, Any], runtime: RuntimeDep, study: PathStr
) -> Response[bytes]:
    return await _metadata(request, runtime, study)


@get("/studies/{study:str}/series/{series:str}/metadata")
async def retrieve_series_metadata(
    request: Request[Any, Any, Any], runtime: RuntimeDep, study: PathStr, series: PathStr
) -> Response[bytes]:
    return await _metadata(request, runtime, study, series)


@get("/studies/{study:str}/series/{series:str}/instances/{instance:str}/metadata")
async def retrieve_instance_metadata(
    request: Request[Any, Any, Any], runtime: RuntimeDep, study: PathStr, series: PathStr, instance: PathStr
) -> Response[bytes]:
    return await _metadata(request, runtime, study, series, instance)


ROUTES = [
    retrieve_study,
    retrieve_series,
    retrieve_instance,
    retrieve_study_metadata,
    retrieve_series_metadata,
    retrieve_instance_metadata,
]
