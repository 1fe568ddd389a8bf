"""WADO-RS: find the stored instances of a study, series or instance, and their metadata."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, select

from domain.db import Database
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
    db: Database, study_uid: str, series_uid: str | None = None, sop_instance_uid: str | None = None
) -> list[StoredFile]:
    """The instances under the URL, in storage order; NotFound when there are none."""
    statement = (
        select(
            Series.series_uid,
            Instance.sop_instance_uid,
            Instance.transfer_syntax_uid,
            Instance.blob_key,
            Instance.size,
        )
        .join(Study, Study.id == Instance.study_pk)
        .join(Series, Series.id == Instance.series_pk)
        .where(Study.study_uid == study_uid)
        .order_by(Instance.series_pk, Instance.id)
    )
    if series_uid is not None:
        statement = statement.where(Series.series_uid == series_uid)
    if sop_instance_uid is not None:
        statement = statement.where(Instance.sop_instance_uid == sop_instance_uid)
    async with db.read() as conn:
        files = [StoredFile(*row) for row in await conn.execute(statement)]
    if not files:
        raise NotFound(describe(study_uid, series_uid, sop_instance_uid) + " is not stored here")
    return files


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
    statement = (
        select(Series.series_uid, Instance.sop_instance_uid, Instance.sha256, Instance.dicom_json)
        .join(Study, Study.id == Instance.study_pk)
        .join(Series, Series.id == Instance.series_pk)
        .where(Study.study_uid == study_uid)
        .order_by(Instance.series_pk, Instance.id)
    )
    if series_uid is not None:
        statement = statement.where(Series.series_uid == series_uid)
    if sop_instance_uid is not None:
        statement = statement.where(Instance.sop_instance_uid == sop_instance_uid)
    async with db.read() as conn:
        documents = [InstanceMetadata(*row) for row in await conn.execute(statement)]
    if not documents:
        raise NotFound(describe(study_uid, series_uid, sop_instance_uid) + " is not stored here")
    return documents


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
