"""A ZIP of Part-10 files, written as it is sent (stored entries with data descriptors)."""

from __future__ import annotations

import zipfile
from collections.abc import AsyncIterator


class _Sink:
    """A write-only, unseekable file: zipfile then streams, with data descriptors."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._offset = 0

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        self._offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self._offset

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def drain(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


async def zip_stream(entries: AsyncIterator[tuple[str, AsyncIterator[bytes]]]) -> AsyncIterator[bytes]:
    """Each (name, chunks) entry in turn; memory holds one chunk."""
    sink = _Sink()
    archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
    async for name, chunks in entries:
        with archive.open(zipfile.ZipInfo(name), "w", force_zip64=True) as member:
            async for chunk in chunks:
                member.write(chunk)
                if data := sink.drain():
                    yield data
        yield sink.drain()
    archive.close()
    yield sink.drain()
