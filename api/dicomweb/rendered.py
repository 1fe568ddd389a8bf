"""WADO-RS rendered resources and thumbnails (PS3.18 10.4.1.1.3, 10.4.1.1.4): JPEG, PNG or GIF."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from api.deps import PathStr, RuntimeDep
from api.dicomweb.media import parse_accept
from api.dicomweb.urls import path_uids
from domain.dicom.frames import parse_frame_list
from domain.dicom.render import (
    JPEG,
    RENDERED_TYPES,
    RenderOptions,
    Viewport,
    parse_quality,
    parse_viewport,
    parse_window,
)
from domain.errors import InvalidRequest, NotAcceptable
from domain.services.rendered import retrieve_rendered

THUMBNAIL = Viewport(128, 128)
THUMBNAIL_QUALITY = 75


def choose_rendered_type(accept: str | None) -> str:
    """PS3.18 8.7.4: the first acceptable consumer media type; JPEG for `*/*` or `image/*`."""
    for media in parse_accept(accept):
        if media.type in ("*/*", "image/*"):
            return JPEG
        if media.type in RENDERED_TYPES:
            return media.type
    raise NotAcceptable(
        f"rendered images are served as {', '.join(RENDERED_TYPES)}; the Accept header {accept!r} "
        "allows none of them"
    )


def render_options(request: Request[Any, Any, Any], *, thumbnail: bool) -> RenderOptions:
    """PS3.18 8.3.5.1: the quality, window and viewport query parameters, each checked."""
    query = request.query_params
    media_type = choose_rendered_type(request.headers.get("accept"))
    quality = query.get("quality")
    window = query.get("window")
    viewport = query.get("viewport")
    default_quality = THUMBNAIL_QUALITY if thumbnail else RenderOptions.quality
    return RenderOptions(
        media_type=media_type,
        quality=default_quality if quality is None else parse_quality(quality),
        window=None if window is None else parse_window(window),
        viewport=(THUMBNAIL if thumbnail else None) if viewport is None else parse_viewport(viewport),
    )


def single_frame(frames: str) -> int:
    numbers = parse_frame_list(frames)
    if len(numbers) != 1:
        raise InvalidRequest(f"a rendered frame is one frame: frames/{frames}/rendered names {len(numbers)}")
    return numbers[0]


async def _render(
    request: Request[Any, Any, Any],
    runtime: RuntimeDep,
    uids: tuple[str, str | None, str | None],
    frame: int = 1,
    *,
    thumbnail: bool = False,
) -> Response[bytes]:
    options = render_options(request, thumbnail=thumbnail)
    image = await retrieve_rendered(runtime.db, runtime.blobs, uids, frame, options)
    return Response(image, media_type=options.media_type)


INSTANCE = "/studies/{study:str}/series/{series:str}/instances/{instance:str}"


@get("/studies/{study:str}/rendered")
async def retrieve_study_rendered(
    request: Request[Any, Any, Any], runtime: RuntimeDep, study: PathStr
) -> Response[bytes]:
    return await _render(request, runtime, path_uids(study, None, None))


@get("/studies/{study:str}/series/{series:str}/rendered")
async def retrieve_series_rendered(
    request: Request[Any, Any, Any], runtime: RuntimeDep, study: PathStr, series: PathStr
) -> Response[bytes]:
    return await _render(request, runtime, path_uids(study, series, None))


@get(INSTANCE + "/rendered")
async def retrieve_instance_rendered(
    request: Request[Any, Any, Any], runtime: RuntimeDep, study: PathStr, series: PathStr, instance: PathStr
) -> Response[bytes]:
    return await _render(request, runtime, path_uids(study, series, instance))


@get(INSTANCE + "/frames/{frames:str}/rendered")
async def retrieve_frame_rendered(
    request: Request[Any, Any, Any],
    runtime: RuntimeDep,
    study: PathStr,
    series: PathStr,
    instance: PathStr,
    frames: PathStr,
) -> Response[bytes]:
    frame = single_frame(frames)
    return await _render(request, runtime, path_uids(study, series, instance), frame)


@get("/studies/{study:str}/thumbnail")
async def retrieve_study_thumbnail(
    request: Request[Any, Any, Any], runtime: RuntimeDep, study: PathStr
) -> Response[bytes]:
    return await _render(request, runtime, path_uids(study, None, None), thumbnail=True)


@get("/studies/{study:str}/series/{series:str}/thumbnail")
async def retrieve_series_thumbnail(
    request: Request[Any, Any, Any], runtime: RuntimeDep, study: PathStr, series: PathStr
) -> Response[bytes]:
    return await _render(request, runtime, path_uids(study, series, None), thumbnail=True)


@get(INSTANCE + "/thumbnail")
async def retrieve_instance_thumbnail(
    request: Request[Any, Any, Any], runtime: RuntimeDep, study: PathStr, series: PathStr, instance: PathStr
) -> Response[bytes]:
    return await _render(request, runtime, path_uids(study, series, instance), thumbnail=True)


@get(INSTANCE + "/frames/{frames:str}/thumbnail")
async def retrieve_frame_thumbnail(
    request: Request[Any, Any, Any],
    runtime: RuntimeDep,
    study: PathStr,
    series: PathStr,
    instance: PathStr,
    frames: PathStr,
) -> Response[bytes]:
    frame = single_frame(frames)
    return await _render(request, runtime, path_uids(study, series, instance), frame, thumbnail=True)


ROUTES = [
    retrieve_study_rendered,
    retrieve_series_rendered,
    retrieve_instance_rendered,
    retrieve_frame_rendered,
    retrieve_study_thumbnail,
    retrieve_series_thumbnail,
    retrieve_instance_thumbnail,
    retrieve_frame_thumbnail,
]
