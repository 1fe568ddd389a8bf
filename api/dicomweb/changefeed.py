"""The change feed (Azure DICOM service, /changefeed and /changefeed/latest).

Without a time window, `offset` is the last sequence the reader has seen and entries follow in
sequence order, which is commit order: paging by sequence never misses an entry. With
`startTime`/`endTime` (both with a time zone), entries of the window follow in time order and
`offset` skips that many of them, as Azure's v2 does.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from litestar import Request, Response, get

from api.deps import RuntimeDep
from api.dicomweb.params import integer_param
from api.dicomweb.urls import dicomweb_base, with_absolute_bulk_data_uris
from domain.errors import InvalidRequest
from domain.services.changefeed import ChangeFeedEntry, latest_change, read_changes

MAX_LIMIT = 200


@get("/changefeed")
async def read_change_feed(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[Any]:
    query = request.query_params
    offset = integer_param(query, "offset", 0, minimum=0)
    limit = integer_param(query, "limit", 100, minimum=1, maximum=MAX_LIMIT)
    start, end = _time(query, "startTime"), _time(query, "endTime")
    if start is not None and end is not None and end <= start:
        raise InvalidRequest("endTime must be later than startTime")
    include = _flag(query, "includeMetadata")
    windowed = start is not None or end is not None
    entries = await read_changes(
        runtime.db,
        after_sequence=0 if windowed else offset,
        skip=offset if windowed else 0,
        limit=limit,
        start=start,
        end=end,
        include_metadata=include,
    )
    base = dicomweb_base(request)
    body = "[" + ",".join(_json(e, base, include) for e in entries) + "]"
    return Response(body.encode(), media_type="application/json")


@get("/changefeed/latest")
async def read_latest_change(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[Any]:
    include = _flag(request.query_params, "includeMetadata")
    entry = await latest_change(runtime.db, include_metadata=include)
    if entry is None:  # Azure answers an empty feed with an empty body
        return Response(None, status_code=204)
    body = _json(entry, dicomweb_base(request), include)
    return Response(body.encode(), media_type="application/json")


def _json(entry: ChangeFeedEntry, base: str, include_metadata: bool) -> str:
    """One entry as JSON text; the stored DICOM JSON is spliced in, never parsed again."""
    fields = json.dumps(
        {
            "Sequence": entry.sequence,
            "StudyInstanceUID": entry.study_uid,
            "SeriesInstanceUID": entry.series_uid,
            "SOPInstanceUID": entry.sop_instance_uid,
            "Action": entry.action,
            "Timestamp": entry.timestamp.isoformat(),
            "State": entry.state,
        },
        separators=(",", ":"),
    )
    if not include_metadata or entry.dicom_json is None:
        return fields
    instance_url = (
        f"{base}/studies/{entry.study_uid}/series/{entry.series_uid}/instances/{entry.sop_instance_uid}/"
    )
    return f'{fields[:-1]},"Metadata":{with_absolute_bulk_data_uris(entry.dicom_json, instance_url)}}}'


def _time(query: Any, name: str) -> dt.datetime | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace(" ", "+"))  # a '+' arrives as a space
    except ValueError:
        raise InvalidRequest(f"{name} {raw!r} is not an ISO 8601 date and time") from None
    if value.tzinfo is None:
        raise InvalidRequest(f"{name} {raw!r} must specify a time zone, such as Z or +01:00")
    return value.astimezone(dt.UTC)  # entries are stamped in UTC


def _flag(query: Any, name: str) -> bool:
    raw = query.get(name, "true").lower()
    if raw not in ("true", "false"):
        raise InvalidRequest(f"{name} must be true or false, got {raw!r}")
    return bool(raw == "true")


ROUTES = [read_change_feed, read_latest_change]
