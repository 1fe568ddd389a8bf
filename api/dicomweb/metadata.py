"""WADO-RS metadata (PS3.18 10.4.1.1.2) with ETag and If-None-Match, and bulk data."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Response, get
from litestar.response import Stream

from api.deps import PathStr, RuntimeDep
from api.dicomweb.media import DICOM_JSON, MULTIPART, parse_accept
from api.dicomweb.urls import dicomweb_base, path_uids, wants_original, with_absolute_bulk_data_uris
from domain.errors import NotAcceptable
from domain.services.bulkdata import BulkData, retrieve_bulk_data
from domain.services.retrieve import InstanceMetadata, retrieve_metadata, retrieve_original_metadata

OCTET_STREAM = "application/octet-stream"


async def _metadata(
    request: Request[Any, Any, Any],
    runtime: RuntimeDep,
    study: str,
    series: str | None = None,
    instance: str | None = None,
) -> Response[bytes]:
    accept = request.headers.get("accept")
    if not any(r.matches(DICOM_JSON) or r.matches("application/json") for r in parse_accept(accept)):
        raise NotAcceptable(f"metadata is served as {DICOM_JSON}; the Accept header {accept!r} excludes it")
    study_uid, series_uid, sop_uid = path_uids(study, series, instance)
    if wants_original(request):
        documents = await retrieve_original_metadata(
            runtime.db, runtime.blobs, study_uid, series_uid, sop_uid
        )
    else:
        documents = await retrieve_metadata(runtime.db, study_uid, series_uid, sop_uid)
    etag = _etag(documents)
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(b"", status_code=304, headers={"ETag": etag})  # RFC 9110 13.1.2
    base = f"{dicomweb_base(request)}/studies/{study_uid}"
    body = "[" + ",".join(_absolute(d, base) for d in documents) + "]"
    return Response(body.encode(), media_type=DICOM_JSON, headers={"ETag": etag})


def _absolute(document: InstanceMetadata, study_url: str) -> str:
    instance_url = f"{study_url}/series/{document.series_uid}/instances/{document.sop_instance_uid}/"
    return with_absolute_bulk_data_uris(document.dicom_json, instance_url)


def _etag(documents: list[InstanceMetadata]) -> str:
    """Changes exactly when an instance is added, removed or rewritten."""
    digest = hashlib.sha256("".join(f"{d.sop_instance_uid}:{d.sha256};" for d in documents).encode())
    return f'"{digest.hexdigest()[:32]}"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


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


@get("/studies/{study:str}/series/{series:str}/instances/{instance:str}/bulkdata/{tag:str}")
async def retrieve_bulk_data_of_instance(
    request: Request[Any, Any, Any],
    runtime: RuntimeDep,
    study: PathStr,
    series: PathStr,
    instance: PathStr,
    tag: PathStr,
) -> Stream:
    """PS3.18 8.7.3.3: bulk data as multipart/related parts of application/octet-stream."""
    accept = request.headers.get("accept")
    if not any(r.matches(MULTIPART) or r.matches(OCTET_STREAM) for r in parse_accept(accept)):
        raise NotAcceptable(f'bulk data is served as {MULTIPART}; type="{OCTET_STREAM}", not {accept!r}')
    study_uid, series_uid, sop_uid = path_uids(study, series, instance)
    assert series_uid is not None and sop_uid is not None
    bulk = await retrieve_bulk_data(runtime.db, runtime.blobs, study_uid, series_uid, sop_uid, tag)
    boundary = uuid.uuid4().hex
    return Stream(
        _parts(bulk, boundary),
        media_type=f'{MULTIPART}; type="{OCTET_STREAM}"; boundary={boundary}',
    )


async def _parts(bulk: BulkData, boundary: str) -> AsyncIterator[bytes]:
    for part in bulk.parts:
        content_type = f"{OCTET_STREAM}; transfer-syntax={bulk.transfer_syntax_uid}"
        yield f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode()
        async for chunk in part:
            yield chunk
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


ROUTES = [
    retrieve_study_metadata,
    retrieve_series_metadata,
    retrieve_instance_metadata,
    retrieve_bulk_data_of_instance,
]
