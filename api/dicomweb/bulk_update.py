"""`POST /v2/studies/$bulkUpdate` (Azure): change patient and study attributes of up to 50
studies; answers 202 with the operation, which the server processes' operation worker runs."""

from __future__ import annotations

import json
from typing import Any

from litestar import Request, Response, post

from api.deps import RuntimeDep
from api.dicomweb.urls import dicomweb_base
from domain.errors import InvalidRequest
from domain.services.bulk_update import start_bulk_update, validate_update


@post("/studies/$bulkUpdate", status_code=202)
async def update_studies(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise InvalidRequest("the body is not JSON") from None
    update = validate_update(body)
    operation_id = await start_bulk_update(runtime.db, update)
    if runtime.operations is not None:
        runtime.operations.wake()
    href = f"{dicomweb_base(request)}/operations/{operation_id}"
    return Response({"id": operation_id, "href": href}, status_code=202, headers={"Location": href})


ROUTES = [update_studies]
