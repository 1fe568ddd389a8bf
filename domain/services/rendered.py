"""WADO-RS rendered resources and thumbnails (PS3.18 10.4.1.1.3-4): a frame as a consumer image."""

from __future__ import annotations

import anyio

from domain.blobs import BlobStore
from domain.db import Database
from domain.dicom.frames import NoPixelData
from domain.dicom.render import RenderOptions, render_frame
from domain.services.retrieve import describe, find_files


async def retrieve_rendered(
    db: Database,
    blobs: BlobStore,
    uids: tuple[str, str | None, str | None],
    frame_number: int,
    options: RenderOptions,
) -> bytes:
    """Frame `frame_number` of the instance, or of the first instance of the series or study that
    has pixel data (its representative frame, PS3.18 10.4.1.1.3)."""
    for stored in await find_files(db, *uids):
        async with blobs.local_file(stored.blob_key) as path:
            try:
                return await anyio.to_thread.run_sync(render_frame, path, frame_number, options)
            except NoPixelData:
                if uids[2] is not None:
                    raise
    raise NoPixelData(f"no instance of {describe(*uids)} has pixel data to render")
