"""QIDO-RS (PS3.18 10.6): the six search resources."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from api.deps import PathStr, RuntimeDep
from api.dicomweb.media import DICOM_JSON, parse_accept
from api.dicomweb.urls import dicomweb_base
from domain.dicom.attributes import Level
from domain.dicom.uids import check_uid
from domain.errors import NotAcceptable
from domain.services.extended_search import tags_for_query
from domain.services.search import Scope, parse_query, search


async def _search(request: Request[Any, Any, Any], runtime: RuntimeDep, scope: Scope) -> Response[Any]:
    accept = request.headers.get("accept")
    if not any(r.matches(DICOM_JSON) or r.matches("application/json") for r in parse_accept(accept)):
        raise NotAcceptable(f"QIDO-RS answers in {DICOM_JSON}; the Accept header {accept!r} excludes it")
    params = list(request.query_params.multi_items())
    query = parse_query(scope, params, await tags_for_query(runtime.db, [key for key, _ in params]))
    result = await search(runtime.db, scope, query, dicomweb_base(request))
    headers = {}
    if result.cut_short:  # PS3.18 8.3.4.4
        headers["Warning"] = (
            '299 tessera: "The number of results exceeded the maximum supported by the server. '
            'Additional results can be requested with offset."'
        )
    return Response(result.matches, media_type=DICOM_JSON, headers=headers)


@get("/studies")
async def search_for_studies(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[Any]:
    return await _search(request, runtime, Scope(Level.STUDY))


@get("/series")
async def search_for_series(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[Any]:
    return await _search(request, runtime, Scope(Level.SERIES))


@get("/instances")
async def search_for_instances(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[Any]:
    return await _search(request, runtime, Scope(Level.INSTANCE))


@get("/studies/{study:str}/series")
async def search_for_series_in_study(
    request: Request[Any, Any, Any], runtime: RuntimeDep, study: PathStr
) -> Response[Any]:
    return await _search(request, runtime, Scope(Level.SERIES, check_uid(study, "StudyInstanceUID")))


@get("/studies/{study:str}/instances")
async def search_for_instances_in_study(
    request: Request[Any, Any, Any], runtime: RuntimeDep, study: PathStr
) -> Response[Any]:
    return await _search(request, runtime, Scope(Level.INSTANCE, check_uid(study, "StudyInstanceUID")))


@get("/studies/{study:str}/series/{series:str}/instances")
async def search_for_instances_in_series(
    request: Request[Any, Any, Any], runtime: RuntimeDep, study: PathStr, series: PathStr
) -> Response[Any]:
    scope = Scope(
        Level.INSTANCE, check_uid(study, "StudyInstanceUID"), check_uid(series, "SeriesInstanceUID")
    )
    return await _search(request, runtime, scope)


ROUTES = [
    search_for_studies,
    search_for_series,
    search_for_instances,
    search_for_series_in_study,
    search_for_instances_in_study,
    search_for_instances_in_series,
]
