"""Where the Part-10 bytes live, keyed by an internal id, never by a path built from UIDs."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import BinaryIO, Protocol

import anyio

CHUNK = 1024 * 1024
_FLUSHERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fsync")


def new_blob_key() -> str:
    return uuid.uuid4().hex


class BlobStore(Protocol):
    async def put(self, files: Sequence[tuple[str, Path]]) -> None:
        """Take each spooled file and keep it under its key; a file is whole or absent."""

    def open(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes in chunks."""

    def local_file(self, key: str) -> AbstractAsyncContextManager[Path]:
        """The blob as a local file for random access (frames, rendering, transcoding)."""

    async def delete(self, key: str) -> None:
        """Remove the blob; a missing one is not an error."""


class LocalBlobStore:
    """A folder: blobs/ab/cd/abcd….dcm. Spooled files are renamed into place, on the same
    file system, so storing costs no copy; with `fsync`, each is flushed to disk first."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self.fsync = fsync
        root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / key[2:4] / f"{key}.dcm"

    async def put(self, files: Sequence[tuple[str, Path]]) -> None:
        await anyio.to_thread.run_sync(self._put, files)

    def _put(self, files: Sequence[tuple[str, Path]]) -> None:
        if self.fsync:  # flushes run side by side: the disk merges them into fewer commits
            list(_FLUSHERS.map(_fsync_file, [source for _, source in files]))
        for key, source in files:
            target = self.path(key)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        # One thread hop per chunk, the first one also opening the file: a small instance costs
        # one hop in all, and a large one streams with flat memory.
        file, chunk = await anyio.to_thread.run_sync(_open_and_read, self.path(key))
        try:
            while chunk:
                yield chunk
                if len(chunk) < CHUNK:
                    break
                chunk = await anyio.to_thread.run_sync(file.read, CHUNK)
        finally:
            file.close()

    @asynccontextmanager
    async def local_file(self, key: str) -> AsyncIterator[Path]:
        yield self.path(key)

    async def delete(self, key: str) -> None:
        await anyio.Path(self.path(key)).unlink(missing_ok=True)


def _open_and_read(path: Path) -> tuple[BinaryIO, bytes]:
    file = open(path, "rb")  # noqa: SIM115 - closed by the generator that streams it
    return file, file.read(CHUNK)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
