"""Bulk update of patient and study attributes (Azure `POST /studies/$bulkUpdate`).

Each instance of the studies is rewritten with the new values into a new blob. The file as
first stored is kept (`original_blob_key`) and stays retrievable; a second update replaces
only the intermediate version. In one transaction per study the index follows the new
headers, each instance's `version` goes up, and an `Update` entry joins the change feed.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pydicom
from pydicom.dataset import Dataset
from sqlalchemy import Connection, Table, select, update

from domain.blobs import BlobStore, new_blob_key
from domain.db import Database
from domain.dicom.header import Header, read_header
from domain.dicom.uids import is_valid_uid
from domain.errors import InvalidRequest, NotFound
from domain.model import Instance, Series, Study
from domain.services.changefeed import UPDATE, Change, record_changes
from domain.services.extended_index import index_new_instances, stored_targets
from domain.services.indexing import refresh_from_newest
from domain.services.ingest import zero_preamble_and_hash
from domain.services.operations import OPERATIONS, queue_operation

INSTANCES: Table = Instance.__table__  # type: ignore[assignment]
MAX_STUDIES = 50
# The patient and study attributes Azure lets a bulk update change.
UPDATABLE = frozenset(
    {
        "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "PatientComments",
        "OtherPatientIDs", "OtherPatientNames", "IssuerOfPatientID", "AccessionNumber", "StudyDescription",
        "ReferringPhysicianName", "StudyID", "StudyDate", "StudyTime",
    }
)  # fmt: skip


@dataclass(frozen=True)
class UpdateRequest:
    study_uids: list[str]
    change: Dataset


def validate_update(body: Any) -> UpdateRequest:
    """The request body, checked; InvalidRequest says what to fix."""
    if not isinstance(body, dict):
        raise InvalidRequest(
            'the body must be a JSON object {"studyInstanceUids": [...], "changeDataset": {...}}'
        )
    uids = body.get("studyInstanceUids")
    if not isinstance(uids, list) or not uids or len(uids) > MAX_STUDIES:
        raise InvalidRequest(f"studyInstanceUids must list 1 to {MAX_STUDIES} StudyInstanceUIDs")
    for uid in uids:
        if not isinstance(uid, str) or not is_valid_uid(uid):
            raise InvalidRequest(f"studyInstanceUids holds {uid!r}, which is not a valid UID")
    change_json = body.get("changeDataset")
    if not isinstance(change_json, dict) or not change_json:
        raise InvalidRequest("changeDataset must be a non-empty DICOM JSON object")
    try:
        change = Dataset.from_json(change_json)
    except Exception as exc:  # pydicom raises several types for malformed DICOM JSON
        raise InvalidRequest(f"changeDataset is not valid DICOM JSON: {exc}") from None
    refused = sorted({e.keyword or f"{e.tag}" for e in change} - UPDATABLE)
    if refused:
        raise InvalidRequest(
            f"bulk update cannot change {', '.join(refused)}; it changes {', '.join(sorted(UPDATABLE))}"
        )
    return UpdateRequest(list(dict.fromkeys(uids)), change)


async def start_bulk_update(db: Database, request: UpdateRequest) -> str:
    """Queue the update as an operation (the operation worker runs it); returns its id.
    NotFound names the studies that are not stored."""
    async with db.read() as conn:
        stored = set(
            await conn.scalars(select(Study.study_uid).where(Study.study_uid.in_(request.study_uids)))
        )
    missing = [uid for uid in request.study_uids if uid not in stored]
    if missing:
        raise NotFound(f"not stored here: study {', '.join(missing)}")
    operation_id = uuid.uuid4().hex
    change = json.dumps(request.change.to_json_dict())
    total = len(request.study_uids)  # last_instance_pk counts the studies done
    await db.write(queue_operation, operation_id, "update", request.study_uids, total, change)
    return operation_id


async def run_bulk_update(
    db: Database, blobs: BlobStore, spool_dir: Path, operation_id: str, owner: str, lease_ms: int
) -> None:
    """One study per transaction; the operation records how many are done in that same
    transaction, so a process taking the operation over after a crash resumes at the next."""
    while step := await db.write(_next_study, operation_id, owner, lease_ms):
        index, study_uid, change_json = step
        change = Dataset.from_json(change_json)
        await _update_study(db, blobs, spool_dir, study_uid, change, (operation_id, owner, index))


@dataclass
class _Target:
    pk: int
    version: int
    series_pk: int
    series_uid: str
    sop_instance_uid: str
    blob_key: str
    original_blob_key: str | None
    size: int
    original_size: int | None


@dataclass
class _Rewritten:
    target: _Target
    header: Header
    sha256: str
    size: int
    blob_key: str


async def _update_study(
    db: Database,
    blobs: BlobStore,
    spool_dir: Path,
    study_uid: str,
    change: Dataset,
    step: tuple[str, str, int],
) -> None:
    targets = await db.write(_targets, study_uid)  # none if the study was deleted meanwhile
    rewritten = []
    for target in targets:
        out = spool_dir / f"update-{uuid.uuid4().hex}"
        async with blobs.local_file(target.blob_key) as source:
            header, sha256, size = await anyio.to_thread.run_sync(_rewrite, source, change, out)
        rewritten.append(_Rewritten(target, header, sha256, size, new_blob_key()))
        await blobs.put([(rewritten[-1].blob_key, out)])
    superseded = await db.write(_apply, study_uid, rewritten, step)
    for key in superseded:
        await blobs.delete(key)


def _rewrite(source: Path, change: Dataset, out: Path) -> tuple[Header, str, int]:
    ds = pydicom.dcmread(source)
    for element in change:
        ds[element.tag] = element
    ds.save_as(out, enforce_file_format=True)
    header = read_header(out)
    sha256, size = zero_preamble_and_hash(out)
    return header, sha256, size


def _targets(conn: Connection, study_uid: str) -> list[_Target]:
    rows = conn.execute(
        select(
            Instance.id,
            Instance.version,
            Instance.series_pk,
            Series.series_uid,
            Instance.sop_instance_uid,
            Instance.blob_key,
            Instance.original_blob_key,
            Instance.size,
            Instance.original_size,
        )
        .join(Study, Study.id == Instance.study_pk)
        .join(Series, Series.id == Instance.series_pk)
        .where(Study.study_uid == study_uid)
        .order_by(Instance.id)
    )
    return [_Target(*row) for row in rows]


def _apply(
    conn: Connection, study_uid: str, rewritten: list[_Rewritten], step: tuple[str, str, int]
) -> list[str]:
    """Point the index at the new files and count the study done; returns the intermediate
    blobs no longer needed. Raises (so nothing commits) if the operation changed hands."""
    operation_id, owner, index = step
    done = conn.execute(
        update(OPERATIONS)
        .where(
            OPERATIONS.c.id == operation_id,
            OPERATIONS.c.owner == owner,
            OPERATIONS.c.last_instance_pk == index,
        )
        .values(last_instance_pk=index + 1, processed_instances=index + 1, updated_at=dt.datetime.now(dt.UTC))
    )
    if done.rowcount != 1:
        raise LeaseLost(f"operation {operation_id} was taken over by another process")
    study_pk = conn.scalar(select(Study.id).where(Study.study_uid == study_uid).with_for_update())
    superseded = []
    for item in rewritten:
        t = item.target
        conn.execute(
            update(INSTANCES)
            .where(INSTANCES.c.id == t.pk)
            .values(
                blob_key=item.blob_key,
                sha256=item.sha256,
                size=item.size,
                dicom_json=item.header.dicom_json,
                version=t.version + 1,
                original_blob_key=t.original_blob_key or t.blob_key,
                original_size=t.original_size if t.original_blob_key else t.size,
            )
        )
        if t.original_blob_key:  # the first version stays; an intermediate one goes
            superseded.append(t.blob_key)
    refresh_from_newest(conn, {study_pk} if study_pk else set(), {i.target.series_pk for i in rewritten})
    updated = INSTANCES.c.id.in_([i.target.pk for i in rewritten])
    index_new_instances(conn, stored_targets(conn, updated))  # extended query tags follow too
    record_changes(
        conn,
        [
            Change(
                UPDATE,
                study_uid,
                i.target.series_uid,
                i.target.sop_instance_uid,
                i.target.pk,
                i.target.version + 1,
            )
            for i in rewritten
        ],
    )
    return superseded


class LeaseLost(Exception):
    """Another process runs the operation now; this one's work must not commit."""


def _next_study(
    conn: Connection, operation_id: str, owner: str, lease_ms: int
) -> tuple[int, str, dict[str, Any]] | None:
    """Renew the lease and name the next study, or finish the operation; None when done."""
    now = dt.datetime.now(dt.UTC)
    renewed = conn.execute(
        update(OPERATIONS)
        .where(OPERATIONS.c.id == operation_id, OPERATIONS.c.owner == owner, OPERATIONS.c.status == "running")
        .values(lease_until_ms=int(time.time() * 1000) + lease_ms, updated_at=now)
    )
    if renewed.rowcount != 1:
        return None  # taken over by another process
    index, resources, parameters = conn.execute(
        select(OPERATIONS.c.last_instance_pk, OPERATIONS.c.resources, OPERATIONS.c.parameters).where(
            OPERATIONS.c.id == operation_id
        )
    ).one()
    study_uids = json.loads(resources)
    finished = index >= len(study_uids)
    values: dict[str, Any] = {"percent_complete": index * 100 // len(study_uids)}
    if finished:
        values |= {"status": "succeeded", "percent_complete": 100, "owner": None, "lease_until_ms": 0}
    conn.execute(update(OPERATIONS).where(OPERATIONS.c.id == operation_id).values(**values))
    return None if finished else (index, study_uids[index], json.loads(parameters))
