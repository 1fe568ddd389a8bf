"""Store instances: read each header once, write the bytes, index a batch in one transaction.

Bytes are written before the index, so a crash leaves at worst an orphan blob, never an index
row without its file. Failures are per instance and returned, never raised.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from domain.blobs import BlobStore, new_blob_key
from domain.db import Database
from domain.dicom.codes import FailureReason, WarningReason
from domain.dicom.header import UnreadableInstance, read_header
from domain.services.indexing import Row, index_batch

log = logging.getLogger(__name__)
PREAMBLE = 128


@dataclass(frozen=True)
class IncomingFile:
    """A Part-10 file to store; `owned` files (spooled uploads) may be moved and modified."""

    path: Path
    owned: bool = True


@dataclass
class StoredInstance:
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    already_present: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def warning_reason(self) -> WarningReason | None:
        return WarningReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS if self.warnings else None


@dataclass
class FailedInstance:
    reason: FailureReason
    message: str
    sop_instance_uid: str | None = None
    sop_class_uid: str | None = None
    source: str | None = None


@dataclass
class StoreOutcome:
    stored: list[StoredInstance] = field(default_factory=list)
    failed: list[FailedInstance] = field(default_factory=list)


class IngestService:
    """`store_instances` serves STOW-RS and `tessera import` alike."""

    def __init__(self, db: Database, blobs: BlobStore, spool_dir: Path) -> None:
        self.db = db
        self.blobs = blobs
        self.spool_dir = spool_dir

    async def store_instances(
        self, files: Sequence[IncomingFile], study_uid: str | None = None
    ) -> StoreOutcome:
        """Store what can be stored; `study_uid` is the one in a `POST /studies/{study}` URL."""
        outcome = StoreOutcome()
        prepared = await anyio.to_thread.run_sync(self._prepare_all, files, study_uid, outcome)
        if not prepared:
            return outcome
        rows = [row for row, _ in prepared]
        try:
            await self.blobs.put([(row.blob_key, path) for row, path in prepared])
            result = await self.db.write(index_batch, rows)
        except Exception:
            log.exception("storing a batch of %d instances failed", len(prepared))
            for row, path in prepared:
                await self.blobs.delete(row.blob_key)
                path.unlink(missing_ok=True)
            outcome.failed.extend(
                _failed(
                    row,
                    FailureReason.PROCESSING_FAILURE,
                    "the instance could not be stored; nothing was kept, try again",
                )
                for row, _ in prepared
            )
            return outcome
        for row in result.already_present + result.conflicting + [r for r, _ in result.misplaced]:
            await self.blobs.delete(row.blob_key)
        outcome.stored.extend(_stored(r) for r in result.inserted)
        outcome.stored.extend(_stored(r, already_present=True) for r in result.already_present)
        outcome.failed.extend(
            _failed(
                r,
                FailureReason.INSTANCE_CONFLICT,
                "another instance with this SOPInstanceUID is already stored; delete it first to replace it",
            )
            for r in result.conflicting
        )
        outcome.failed.extend(
            _failed(
                r,
                FailureReason.CANNOT_UNDERSTAND,
                f"SeriesInstanceUID {r.header.series_uid} already belongs to study {study}",
            )
            for r, study in result.misplaced
        )
        return outcome

    def _prepare_all(
        self, files: Sequence[IncomingFile], study_uid: str | None, outcome: StoreOutcome
    ) -> list[tuple[Row, Path]]:
        """Read headers and zero preambles (in a worker thread); failures go to `outcome`."""
        prepared = []
        for incoming in files:
            try:
                header = read_header(incoming.path)
            except UnreadableInstance as exc:
                outcome.failed.append(
                    FailedInstance(FailureReason.CANNOT_UNDERSTAND, str(exc), source=str(incoming.path))
                )
                _discard(incoming)
                continue
            except OSError as exc:
                outcome.failed.append(
                    FailedInstance(
                        FailureReason.PROCESSING_FAILURE,
                        f"cannot read the file: {exc}",
                        source=str(incoming.path),
                    )
                )
                _discard(incoming)
                continue
            if study_uid is not None and header.study_uid != study_uid:
                outcome.failed.append(
                    FailedInstance(
                        FailureReason.STUDY_UID_MISMATCH,
                        f"StudyInstanceUID {header.study_uid} differs from {study_uid} in the URL",
                        header.sop_instance_uid,
                        header.sop_class_uid,
                        str(incoming.path),
                    )
                )
                _discard(incoming)
                continue
            path = incoming.path if incoming.owned else self._copy_to_spool(incoming.path)
            if header.preamble_missing:
                _add_preamble(path)
            sha256, size = zero_preamble_and_hash(path)
            prepared.append((Row(header, sha256, size, new_blob_key()), path))
        return prepared

    def _copy_to_spool(self, source: Path) -> Path:
        """A file we were only lent is never modified: its preamble is zeroed in a copy."""
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        copy = self.spool_dir / f"import-{new_blob_key()}"
        shutil.copyfile(source, copy)
        return copy


def zero_preamble_and_hash(path: Path) -> tuple[str, int]:
    """PS3.10 7.1: the preamble is free for applications; stored files get it zeroed."""
    sha = hashlib.sha256()
    size = 0
    with open(path, "r+b") as fp:
        if fp.read(PREAMBLE).strip(b"\x00"):
            fp.seek(0)
            fp.write(bytes(PREAMBLE))
        fp.seek(0)
        while chunk := fp.read(1024 * 1024):
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size


def _add_preamble(path: Path) -> None:
    """PS3.10 7.1: a Part-10 file starts with a 128-byte preamble and 'DICM'."""
    complete = path.with_name(path.name + ".part10")
    with open(path, "rb") as src, open(complete, "wb") as dst:
        dst.write(bytes(PREAMBLE) + b"DICM")
        shutil.copyfileobj(src, dst, 1024 * 1024)
    complete.replace(path)


def _discard(incoming: IncomingFile) -> None:
    if incoming.owned:
        incoming.path.unlink(missing_ok=True)


def _stored(row: Row, *, already_present: bool = False) -> StoredInstance:
    h = row.header
    return StoredInstance(
        h.study_uid, h.series_uid, h.sop_instance_uid, h.sop_class_uid, already_present, h.warnings
    )


def _failed(row: Row, reason: FailureReason, message: str) -> FailedInstance:
    return FailedInstance(reason, message, row.header.sop_instance_uid, row.header.sop_class_uid)
