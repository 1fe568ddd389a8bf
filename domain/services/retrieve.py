"""WADO-RS: find the stored instances of a study, series or instance, and their metadata."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from sqlalchemy import Select, func, select

from domain.blobs import BlobStore
from domain.db import Database
from domain.dicom.header import read_header
from domain.errors import NotFound
from domain.model import Instance, Series, Study

SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True)
class StoredFile:
    series_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    blob_key: str
    size: int


async def find_files(
    db: Database,
    study_uid: str,
    series_uid: str | None = None,
    sop_instance_uid: str | None = None,
    *,
    original: bool = False,
) -> list[StoredFile]:
    """The instances under the URL, in storage order; NotFound when there are none. With
    `original`, an updated instance is the file as first stored."""
    blob_key, size = Instance.blob_key, Instance.size
    if original:
        blob_key = func.coalesce(Instance.original_blob_key, Instance.blob_key)  # type: ignore[assignment]
        size = func.coalesce(Instance.original_size, Instance.size)  # type: ignore[assignment]
    columns = (Series.series_uid, Instance.sop_instance_uid, Instance.transfer_syntax_uid, blob_key, size)
    rows = await _instances_under(db, columns, study_uid, series_uid, sop_instance_uid)
    return [StoredFile(*row) for row in rows]


@dataclass(frozen=True)
class InstanceMetadata:
    series_uid: str
    sop_instance_uid: str
    sha256: str  # of the stored file: the metadata changes only with it
    dicom_json: str  # BulkDataURIs relative to the instance's URL


async def retrieve_metadata(
    db: Database, study_uid: str, series_uid: str | None = None, sop_instance_uid: str | None = None
) -> list[InstanceMetadata]:
    """Each instance's stored DICOM JSON, as text, ready to be joined into an array."""
    columns = (Series.series_uid, Instance.sop_instance_uid, Instance.sha256, Instance.dicom_json)
    rows = await _instances_under(db, columns, study_uid, series_uid, sop_instance_uid)
    return [InstanceMetadata(*row) for row in rows]


async def _instances_under(
    db: Database,
    columns: tuple[Any, ...],
    study_uid: str,
    series_uid: str | None,
    sop_instance_uid: str | None,
) -> list[Any]:
    statement = (
        select(*columns)
        .join(Study, Study.id == Instance.study_pk)
        .join(Series, Series.id == Instance.series_pk)
        .where(Study.study_uid == study_uid)
        .order_by(Instance.series_pk, Instance.id)
    )
    async with db.read() as conn:
        rows = list(await conn.execute(narrow(statement, series_uid, sop_instance_uid)))
    if not rows:
        raise NotFound(describe(study_uid, series_uid, sop_instance_uid) + " is not stored here")
    return rows


def narrow(statement: SelectT, series_uid: str | None, sop_instance_uid: str | None) -> SelectT:
    """Only the instances of the series, or the one instance, the URL names (the statement
    joins Series)."""
    if series_uid is not None:
        statement = statement.where(Series.series_uid == series_uid)
    if sop_instance_uid is not None:
        statement = statement.where(Instance.sop_instance_uid == sop_instance_uid)
    return statement


def describe(study_uid: str, series_uid: str | None, sop_instance_uid: str | None) -> str:
    if sop_instance_uid:
        return f"instance {sop_instance_uid} of series {series_uid} in study {study_uid}"
    if series_uid:
        return f"series {series_uid} in study {study_uid}"
    return f"study {study_uid}"


async def retrieve_original_metadata(
    db: Database, blobs: BlobStore, study_uid: str, series_uid: str | None, sop_instance_uid: str | None
) -> list[InstanceMetadata]:
    """Metadata of the files as first stored, read from them (only updated instances differ)."""
    documents = []
    for stored in await find_files(db, study_uid, series_uid, sop_instance_uid, original=True):
        async with blobs.local_file(stored.blob_key) as path:
            header = await anyio.to_thread.run_sync(read_header, path)
        documents.append(
            InstanceMetadata(stored.series_uid, stored.sop_instance_uid, stored.blob_key, header.dicom_json)
        )
    return documents
