"""STOW-RS (PS3.18 10.5): POST /v2/studies[/{study}] with multipart/related or application/dicom."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response, post

from api.deps import PathStr, RuntimeDep
from api.dicomweb.media import DICOM, DICOM_JSON, MULTIPART, parse_accept, parse_media_type
from api.dicomweb.multipart import spool_body, spool_parts
from api.dicomweb.urls import dicomweb_base
from domain.dicom.codes import FailureReason
from domain.dicom.uids import check_uid
from domain.errors import InvalidRequest, NotAcceptable, UnsupportedMediaType
from domain.services.ingest import FailedInstance, IncomingFile, StoreOutcome
from domain.services.search import retrieve_url

BATCH = 100  # instances indexed per transaction


@post("/studies", status_code=200)
async def store_instances(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[Any]:
    return await _store(request, runtime, None)


@post("/studies/{study:str}", status_code=200)
async def store_instances_in_study(
    request: Request[Any, Any, Any], runtime: RuntimeDep, study: PathStr
) -> Response[Any]:
    return await _store(request, runtime, check_uid(study, "StudyInstanceUID"))


async def _store(
    request: Request[Any, Any, Any], runtime: RuntimeDep, study_uid: str | None
) -> Response[Any]:
    _check_accept(request.headers.get("accept"))
    files, refused = await _receive(request, runtime.settings.spool_dir)
    if not files and not refused:
        raise InvalidRequest("the request holds no DICOM instance")
    outcome = StoreOutcome(failed=refused)
    for start in range(0, len(files), BATCH):
        batch = await runtime.ingest.store_instances(files[start : start + BATCH], study_uid)
        outcome.stored += batch.stored
        outcome.failed += batch.failed
    body = _response(outcome, dicomweb_base(request), study_uid)
    return Response(body, status_code=_status(outcome), media_type=DICOM_JSON)


def _check_accept(header: str | None) -> None:
    if not any(r.matches(DICOM_JSON) or r.matches("application/json") for r in parse_accept(header)):
        raise NotAcceptable(f"STOW-RS answers in {DICOM_JSON}; the Accept header {header!r} excludes it")


async def _receive(
    request: Request[Any, Any, Any], spool_dir: Path
) -> tuple[list[IncomingFile], list[FailedInstance]]:
    """Spool the body to disk; parts that are not application/dicom are refused one by one."""
    content_type = parse_media_type(request.headers.get("content-type", ""))
    if content_type.type == DICOM:
        return [IncomingFile(await spool_body(request.stream(), spool_dir))], []
    if content_type.type != MULTIPART:
        given = content_type.type or "no content type"
        raise UnsupportedMediaType(f'STOW-RS takes multipart/related; type="{DICOM}" or {DICOM}, not {given}')
    root_type = content_type.params.get("type", DICOM).lower()
    if root_type != DICOM:
        raise UnsupportedMediaType(f"only {DICOM} parts can be stored, not {root_type}")
    boundary = content_type.params.get("boundary")
    if not boundary:
        raise InvalidRequest("the multipart/related Content-Type has no boundary parameter")
    files, refused = [], []
    for part in await spool_parts(request.stream(), boundary, spool_dir):
        part_type = parse_media_type(part.content_type).type if part.content_type else DICOM
        if part_type == DICOM:
            files.append(IncomingFile(part.path))
        else:
            part.path.unlink(missing_ok=True)
            refused.append(
                FailedInstance(FailureReason.CANNOT_UNDERSTAND, f"a part of type {part_type} is not {DICOM}")
            )
    return files, refused


def _status(outcome: StoreOutcome) -> int:
    """PS3.18 10.5.3: 200 all stored, 202 some failed or stored with warnings, 409 none stored."""
    if not outcome.stored:
        return 409
    if outcome.failed or any(s.warnings for s in outcome.stored):
        return 202
    return 200


def _response(outcome: StoreOutcome, base: str, study_uid: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    studies = {s.study_uid for s in outcome.stored}
    if outcome.stored and (study_uid or len(studies) == 1):
        body["00081190"] = _ur(retrieve_url(base, study_uid or studies.pop()))
    if outcome.failed:
        body["00081198"] = {"vr": "SQ", "Value": [_failed_item(f) for f in outcome.failed]}
    if outcome.stored:
        referenced = []
        for s in outcome.stored:
            item = {
                "00081150": _ui(s.sop_class_uid),
                "00081155": _ui(s.sop_instance_uid),
                "00081190": _ur(retrieve_url(base, s.study_uid, s.series_uid, s.sop_instance_uid)),
            }
            if s.warning_reason is not None:
                item["00081196"] = {"vr": "US", "Value": [int(s.warning_reason)]}
                item["00741048"] = {
                    "vr": "SQ",
                    "Value": [{"00000902": {"vr": "LO", "Value": [w]}} for w in s.warnings],
                }
            referenced.append(dict(sorted(item.items())))
        body["00081199"] = {"vr": "SQ", "Value": referenced}
    return body


def _failed_item(failed: FailedInstance) -> dict[str, Any]:
    item: dict[str, Any] = {
        "00000902": {"vr": "LO", "Value": [failed.message]},
        "00081197": {"vr": "US", "Value": [int(failed.reason)]},
    }
    if failed.sop_class_uid:
        item["00081150"] = _ui(failed.sop_class_uid)
    if failed.sop_instance_uid:
        item["00081155"] = _ui(failed.sop_instance_uid)
    return dict(sorted(item.items()))


def _ui(value: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]}


def _ur(value: str) -> dict[str, Any]:
    return {"vr": "UR", "Value": [value]}
