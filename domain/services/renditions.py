"""The bytes sent for one stored instance: as stored, or transcoded into a spooled file."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio

from domain.blobs import CHUNK, BlobStore
from domain.dicom.transcode import TranscodingFailed, transcode, transcoding_refusal
from domain.errors import NotAcceptable
from domain.services.retrieve import StoredFile

AS_STORED = "*"


@dataclass
class Rendition:
    transfer_syntax_uid: str
    size: int
    chunks: AsyncIterator[bytes]


def refusal(stored: StoredFile, syntax: str) -> str | None:
    """Why this instance cannot be sent in `syntax`, before any work is done."""
    if syntax in (AS_STORED, stored.transfer_syntax_uid):
        return None
    return transcoding_refusal(stored.transfer_syntax_uid, syntax)


async def rendition(blobs: BlobStore, stored: StoredFile, syntax: str, spool_dir: Path) -> Rendition:
    """The instance in `syntax` (`*`: as stored). Transcoding runs in a worker thread into a
    spooled file, so memory holds one instance at most; NotAcceptable when the codec refuses."""
    if syntax in (AS_STORED, stored.transfer_syntax_uid):
        return Rendition(stored.transfer_syntax_uid, stored.size, blobs.open(stored.blob_key))
    out = spool_dir / f"transcoded-{uuid.uuid4().hex}"
    async with blobs.local_file(stored.blob_key) as source:
        try:
            await anyio.to_thread.run_sync(transcode, source, syntax, out)
        except TranscodingFailed as exc:
            out.unlink(missing_ok=True)
            raise NotAcceptable(f"instance {stored.sop_instance_uid}: {exc}") from None
    return Rendition(syntax, out.stat().st_size, _read_then_remove(out))


async def _read_then_remove(path: Path) -> AsyncIterator[bytes]:
    try:
        async with await anyio.open_file(path, "rb") as file:
            while chunk := await file.read(CHUNK):
                yield chunk
    finally:
        path.unlink(missing_ok=True)
