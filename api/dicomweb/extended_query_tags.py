"""Extended query tags and operations (Azure DICOM service v2 routes and JSON shapes)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from litestar import Request, Response, delete, get, patch, post

from api.deps import PathStr, RuntimeDep
from api.dicomweb.params import integer_param
from api.dicomweb.urls import dicomweb_base
from domain.errors import InvalidRequest
from domain.services import extended_query_tags as eqt

MAX_LIMIT = 200


async def _body(request: Request[Any, Any, Any]) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        raise InvalidRequest("the body is not valid JSON") from None


@post("/extendedquerytags", status_code=202)
async def add_extended_query_tags(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[Any]:
    specs = eqt.validate_tags(await _body(request))
    operation_id = await eqt.add_tags(runtime.db, specs)
    if runtime.operations is not None:
        runtime.operations.wake()
    href = f"{dicomweb_base(request)}/operations/{operation_id}"
    return Response({"id": operation_id, "href": href}, status_code=202, headers={"Location": href})


@get("/extendedquerytags")
async def list_extended_query_tags(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[Any]:
    limit = integer_param(request.query_params, "limit", 100, minimum=1, maximum=MAX_LIMIT)
    offset = integer_param(request.query_params, "offset", 0, minimum=0)
    tags = await eqt.list_tags(runtime.db, limit, offset)
    base = dicomweb_base(request)
    return Response([_tag_json(tag, base) for tag in tags], media_type="application/json")


@get("/extendedquerytags/{tag:str}")
async def get_extended_query_tag(
    request: Request[Any, Any, Any], runtime: RuntimeDep, tag: PathStr
) -> Response[Any]:
    found = await eqt.get_tag(runtime.db, tag)
    return Response(_tag_json(found, dicomweb_base(request)), media_type="application/json")


@patch("/extendedquerytags/{tag:str}")
async def update_extended_query_tag(
    request: Request[Any, Any, Any], runtime: RuntimeDep, tag: PathStr
) -> Response[Any]:
    updated = await eqt.update_tag(runtime.db, tag, await _body(request))
    return Response(_tag_json(updated, dicomweb_base(request)), media_type="application/json")


@delete("/extendedquerytags/{tag:str}", status_code=204)
async def delete_extended_query_tag(runtime: RuntimeDep, tag: PathStr) -> None:
    await eqt.delete_tag(runtime.db, tag)


@get("/extendedquerytags/{tag:str}/errors")
async def list_extended_query_tag_errors(
    request: Request[Any, Any, Any], runtime: RuntimeDep, tag: PathStr
) -> Response[Any]:
    limit = integer_param(request.query_params, "limit", 100, minimum=1, maximum=MAX_LIMIT)
    offset = integer_param(request.query_params, "offset", 0, minimum=0)
    errors = await eqt.tag_errors(runtime.db, tag, limit, offset)
    body = [
        {
            "studyInstanceUid": e.study_uid,
            "seriesInstanceUid": e.series_uid,
            "sopInstanceUid": e.sop_instance_uid,
            "createdTime": _time(e.created_at),
            "errorMessage": e.message,
        }
        for e in errors
    ]
    return Response(body, media_type="application/json")


@get("/operations/{operation_id:str}")
async def get_operation(
    request: Request[Any, Any, Any], runtime: RuntimeDep, operation_id: PathStr
) -> Response[Any]:
    op = await eqt.get_operation(runtime.db, operation_id)
    base = dicomweb_base(request)
    body = {
        "operationId": op["id"],
        "type": op["type"],
        "createdTime": _time(op["created_at"]),
        "lastUpdatedTime": _time(op["updated_at"]),
        "status": op["status"],
        "percentComplete": op["percent_complete"],
        "resources": [
            f"{base}/studies/{uid}" if op["type"] == "update" else f"{base}/extendedquerytags/{uid}"
            for uid in json.loads(op["resources"])
        ],
    }
    return Response(body, media_type="application/json")


def _tag_json(tag: eqt.QueryTag, base: str) -> dict[str, Any]:
    body: dict[str, Any] = {"path": tag.path, "vr": tag.vr}
    if tag.private_creator is not None:
        body["privateCreator"] = tag.private_creator
    body |= {"level": eqt.LEVEL_NAMES[tag.level], "status": tag.status, "queryStatus": tag.query_status}
    if tag.error_count:
        body["errors"] = {"count": tag.error_count, "href": f"{base}/extendedquerytags/{tag.path}/errors"}
    if tag.status == eqt.ADDING and tag.operation_id:
        body["operation"] = {"id": tag.operation_id, "href": f"{base}/operations/{tag.operation_id}"}
    return body


def _time(value: dt.datetime) -> str:
    if value.tzinfo is None:  # SQLite keeps UTC without its zone
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()


ROUTES = [
    add_extended_query_tags,
    list_extended_query_tags,
    get_extended_query_tag,
    update_extended_query_tag,
    delete_extended_query_tag,
    list_extended_query_tag_errors,
    get_operation,
]
