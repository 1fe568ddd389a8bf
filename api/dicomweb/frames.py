"""WADO-RS frames (PS3.18 10.4.1.1.2): `.../instances/{instance}/frames/{list}` as multipart/related."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, get

from api.deps import PathStr, RuntimeDep
from api.dicomweb.media import MULTIPART, parse_accept
from api.dicomweb.urls import dicomweb_base
from domain.dicom.frames import parse_frame_list
from domain.dicom.uids import check_uid
from domain.services.frames import retrieve_frames


def accepted_frame_types(accept: str | None) -> list[tuple[str, str | None]]:
    """PS3.18 8.7.3.5: (part media type, transfer syntax) of each multipart range, best first."""
    accepted: list[tuple[str, str | None]] = []
    for media in parse_accept(accept):
        syntax = media.params.get("transfer-syntax")
        if media.type in ("*/*", "multipart/*"):
            accepted.append(("*/*", syntax))
        elif media.type == MULTIPART:
            accepted.append((media.params.get("type", "*/*").strip().lower(), syntax))
    return accepted


@get("/studies/{study:str}/series/{series:str}/instances/{instance:str}/frames/{frames:str}")
async def retrieve_instance_frames(
    request: Request[Any, Any, Any],
    runtime: RuntimeDep,
    study: PathStr,
    series: PathStr,
    instance: PathStr,
    frames: PathStr,
) -> Response[bytes]:
    numbers = parse_frame_list(frames)
    uids = (
        check_uid(study, "StudyInstanceUID"),
        check_uid(series, "SeriesInstanceUID"),
        check_uid(instance, "SOPInstanceUID"),
    )
    answer = await retrieve_frames(
        runtime.db,
        runtime.blobs,
        uids,
        numbers,
        accepted_frame_types(request.headers.get("accept")),
    )
    encoding = answer.encoding
    boundary = uuid.uuid4().hex
    location = f"{dicomweb_base(request)}/studies/{uids[0]}/series/{uids[1]}/instances/{uids[2]}/frames"
    chunks: list[bytes] = []
    for number, frame in zip(numbers, answer.frames, strict=True):
        chunks.append(
            f"--{boundary}\r\nContent-Type: {encoding.media_type}; "
            f"transfer-syntax={encoding.transfer_syntax_uid}\r\n"
            f"Content-Length: {len(frame)}\r\nContent-Location: {location}/{number}\r\n\r\n".encode()
        )
        chunks += [frame, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return Response(
        b"".join(chunks),
        media_type=f'{MULTIPART}; type="{encoding.media_type}"; boundary={boundary}',
    )


ROUTES = [retrieve_instance_frames]
