"""WADO-RS frames (PS3.18 10.4.1.1.2): the frames of one stored instance, in the encoding asked for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import anyio

from domain.blobs import BlobStore
from domain.db import Database
from domain.dicom.frames import FrameEncoding, choose_frame_encoding, read_frames
from domain.services.retrieve import find_files


@dataclass(frozen=True)
class RetrievedFrames:
    encoding: FrameEncoding
    frames: list[bytes]


async def retrieve_frames(
    db: Database,
    blobs: BlobStore,
    uids: tuple[str, str, str],
    numbers: Sequence[int],
    accepted: Sequence[tuple[str, str | None]],
) -> RetrievedFrames:
    """The frames `numbers` of the instance; only those frames are read (and decoded if asked)."""
    (stored,) = await find_files(db, *uids)
    encoding = choose_frame_encoding(accepted, stored.transfer_syntax_uid)
    async with blobs.local_file(stored.blob_key) as path:
        frames = await anyio.to_thread.run_sync(read_frames, path, numbers, encoding)
    return RetrievedFrames(encoding, frames)
