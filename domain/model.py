"""The index: studies, series and instances (SQLAlchemy 2).

Each searchable DICOM attribute is a column; person names are kept also normalized
(for case- and accent-insensitive matching) and as space-separated words (for fuzzy matching).
Study and series summaries (counts, ModalitiesInStudy) are maintained at ingest and delete.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Date, DateTime, Float, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def _text(length: int) -> String:
    """Byte-order collation on PostgreSQL, as SQLite's default: prefix matches use the index."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


UID = _text(64)
PN = _text(400)  # three groups of five components of up to 64 characters each
LO = _text(256)  # LO is 64 characters, but decoded text may be longer in bytes
CS = _text(64)


class Base(DeclarativeBase):
    pass


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_uid: Mapped[str] = mapped_column(UID, unique=True)
    patient_id: Mapped[str | None] = mapped_column(LO, index=True)
    patient_name: Mapped[str | None] = mapped_column(PN)
    patient_name_norm: Mapped[str | None] = mapped_column(PN, index=True)
    patient_name_words: Mapped[str | None] = mapped_column(PN)
    patient_birth_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    patient_sex: Mapped[str | None] = mapped_column(CS)
    accession_number: Mapped[str | None] = mapped_column(LO, index=True)
    referring_physician_name: Mapped[str | None] = mapped_column(PN)
    referring_physician_name_norm: Mapped[str | None] = mapped_column(PN, index=True)
    referring_physician_name_words: Mapped[str | None] = mapped_column(PN)
    study_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    study_time: Mapped[str | None] = mapped_column(CS)
    study_description: Mapped[str | None] = mapped_column(LO)
    study_id: Mapped[str | None] = mapped_column(CS)
    modalities_in_study: Mapped[str | None] = mapped_column(LO)
    number_of_series: Mapped[int] = mapped_column(Integer, default=0)
    number_of_instances: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Series(Base):
    __tablename__ = "series"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_pk: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    series_uid: Mapped[str] = mapped_column(UID, unique=True)
    modality: Mapped[str | None] = mapped_column(CS)
    series_description: Mapped[str | None] = mapped_column(LO)
    series_number: Mapped[int | None] = mapped_column(Integer)
    series_date: Mapped[dt.date | None] = mapped_column(Date)
    performed_procedure_step_start_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    manufacturer_model_name: Mapped[str | None] = mapped_column(LO, index=True)
    body_part_examined: Mapped[str | None] = mapped_column(CS, index=True)
    number_of_instances: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ix_series_study_pk_modality", "study_pk", "modality"),
        Index("ix_series_modality", "modality"),
    )


class Instance(Base):
    __tablename__ = "instances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_pk: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    series_pk: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    # SQLite AUTOINCREMENT: an id is never reused, so it names one version of an instance
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - SQLAlchemy's own convention

    sop_instance_uid: Mapped[str] = mapped_column(UID, unique=True)
    sop_class_uid: Mapped[str] = mapped_column(UID, index=True)
    instance_number: Mapped[int | None] = mapped_column(Integer)
    transfer_syntax_uid: Mapped[str] = mapped_column(UID)
    rows: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[int | None] = mapped_column(Integer)
    bits_allocated: Mapped[int | None] = mapped_column(Integer)
    number_of_frames: Mapped[int | None] = mapped_column(Integer)
    blob_key: Mapped[str] = mapped_column(CS)
    size: Mapped[int] = mapped_column(BigInteger)
    # bumped by each metadata update; the change feed names versions by (id, version)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    original_blob_key: Mapped[str | None] = mapped_column(CS)  # as first stored, once updated
    original_size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(CS)
    dicom_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ChangeEvent(Base):
    """One entry of the change feed, written in the transaction of the change it records.

    `sequence` follows commit order (see domain/services/changefeed.py); `instance_pk` is the
    version the event created (Create, Update) or removed (Delete).
    """

    __tablename__ = "change_feed"

    sequence: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    timestamp: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    action: Mapped[str] = mapped_column(String(8))
    study_uid: Mapped[str] = mapped_column(UID)
    series_uid: Mapped[str] = mapped_column(UID)
    sop_instance_uid: Mapped[str] = mapped_column(UID, index=True)
    instance_pk: Mapped[int] = mapped_column(Integer)
    instance_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class ExtendedQueryTag(Base):
    """A tag added to QIDO by the user (Azure's extended query tags); see services/extended_query_tags."""

    __tablename__ = "extended_query_tags"

    key: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(8), unique=True)  # eight upper-case hex digits
    vr: Mapped[str] = mapped_column(String(2))
    private_creator: Mapped[str | None] = mapped_column(LO)
    level: Mapped[str] = mapped_column(String(8))  # Study, Series, Instance
    status: Mapped[str] = mapped_column(String(8))  # Adding, Ready, Deleting
    query_status: Mapped[str] = mapped_column(String(8))  # Enabled, Disabled
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    operation_id: Mapped[str | None] = mapped_column(String(32))


class Operation(Base):
    """A long-running job (re-index), claimed by one server process at a time through `owner`
    and `lease_until_ms`; `last_instance_pk` makes it resumable."""

    __tablename__ = "operations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    percent_complete: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    resources: Mapped[str] = mapped_column(Text)  # JSON list of tag paths, or of study UIDs
    parameters: Mapped[str | None] = mapped_column(Text)  # JSON: what a bulk update changes
    total_instances: Mapped[int] = mapped_column(Integer, default=0)
    processed_instances: Mapped[int] = mapped_column(Integer, default=0)
    last_instance_pk: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str | None] = mapped_column(String(32))
    lease_until_ms: Mapped[int] = mapped_column(BigInteger, default=0)


class ExtendedValue(Base):
    """The first value of an extended query tag for one instance, series or study (`owner_pk`,
    the row of the tag's level), in the column its VR matches on."""

    __tablename__ = "extended_values"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tag_key: Mapped[int] = mapped_column(ForeignKey("extended_query_tags.key", ondelete="CASCADE"))
    owner_pk: Mapped[int] = mapped_column(Integer)
    study_pk: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    series_pk: Mapped[int | None] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    instance_pk: Mapped[int | None] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), index=True
    )
    value: Mapped[str | None] = mapped_column(PN)  # strings, UIDs, TM and DT as sortable text
    value_norm: Mapped[str | None] = mapped_column(PN)  # PN: normalized
    value_words: Mapped[str | None] = mapped_column(PN)  # PN: words, for fuzzy matching
    value_number: Mapped[float | None] = mapped_column(Float)  # IS DS FL FD SL SS UL US
    value_date: Mapped[dt.date | None] = mapped_column(Date)  # DA

    __table_args__ = (
        Index("ux_extended_values_tag_owner", "tag_key", "owner_pk", unique=True),
        Index("ix_extended_values_tag_value", "tag_key", "value"),
        Index("ix_extended_values_tag_norm", "tag_key", "value_norm"),
        Index("ix_extended_values_tag_number", "tag_key", "value_number"),
        Index("ix_extended_values_tag_date", "tag_key", "value_date"),
    )


class ExtendedQueryTagError(Base):
    """An instance whose value of an extended query tag could not be indexed."""

    __tablename__ = "extended_query_tag_errors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tag_key: Mapped[int] = mapped_column(ForeignKey("extended_query_tags.key", ondelete="CASCADE"))
    instance_pk: Mapped[int] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), index=True)
    study_uid: Mapped[str] = mapped_column(UID)
    series_uid: Mapped[str] = mapped_column(UID)
    sop_instance_uid: Mapped[str] = mapped_column(UID)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ux_extended_query_tag_errors_tag_instance", "tag_key", "instance_pk", unique=True),
    )
