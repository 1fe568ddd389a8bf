"""Where the Part-10 bytes live, keyed by an internal id, never by a path built from UIDs."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import anyio

CHUNK = 1024 * 1024


def new_blob_key() -> str:
    return uuid.uuid4().hex


class BlobStore(Protocol):
    async def put(self, key: str, source: Path, *, move: bool) -> None:
        """Store the file at `source` under `key`; `move` lets the store take the file itself."""

    def open(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes in chunks."""

    async def size(self, key: str) -> int: ...

    async def delete(self, key: str) -> None:
        """Remove the blob; a missing one is not an error."""


class LocalBlobStore:
    """A folder: blobs/ab/cd/abcd….dcm, written by rename so a blob is whole or absent."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self.fsync = fsync
        root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / key[2:4] / f"{key}.dcm"

    async def put(self, key: str, source: Path, *, move: bool) -> None:
        await anyio.to_thread.run_sync(self._put, key, source, move)

    def _put(self, key: str, source: Path, move: bool) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        if move:
            if self.fsync:
                _fsync_file(source)
            os.replace(source, target)
            return
        partial = target.with_suffix(".partial")
        with open(source, "rb") as src, open(partial, "wb") as dst:
            while chunk := src.read(CHUNK):
                dst.write(chunk)
            if self.fsync:
                dst.flush()
                os.fsync(dst.fileno())
        os.replace(partial, target)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self.path(key), "rb") as file:
            while chunk := await file.read(CHUNK):
                yield chunk

    async def size(self, key: str) -> int:
        return (await anyio.Path(self.path(key)).stat()).st_size

    async def delete(self, key: str) -> None:
        await anyio.Path(self.path(key)).unlink(missing_ok=True)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
