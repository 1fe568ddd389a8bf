"""Streaming multipart/related (RFC 2387, RFC 2046 5.1) into spooled files, one per part.

Memory holds one network chunk and a boundary's worth of bytes, whatever the body's size.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from domain.errors import InvalidRequest

MAX_HEADER_BYTES = 16 * 1024


@dataclass
class Part:
    path: Path
    content_type: str | None


async def spool_body(chunks: AsyncIterator[bytes], spool_dir: Path) -> Path:
    """A single-part body (`application/dicom`) to one spooled file."""
    path = _new_path(spool_dir)
    with open(path, "wb") as out:
        try:
            async for chunk in chunks:
                out.write(chunk)
        except BaseException:
            out.close()
            path.unlink(missing_ok=True)
            raise
    return path


async def spool_parts(chunks: AsyncIterator[bytes], boundary: str, spool_dir: Path) -> list[Part]:
    """Every body part to its own file; a malformed body removes what it spooled and raises."""
    reader = _Reader(boundary.encode("latin-1"), spool_dir)
    try:
        async for chunk in chunks:
            reader.feed(chunk)
        reader.finish()
    except BaseException:
        reader.discard()
        raise
    return reader.parts


def _new_path(spool_dir: Path) -> Path:
    spool_dir.mkdir(parents=True, exist_ok=True)
    return spool_dir / f"part-{uuid.uuid4().hex}"


class _Reader:
    def __init__(self, boundary: bytes, spool_dir: Path) -> None:
        self.delimiter = b"\r\n--" + boundary
        self.spool_dir = spool_dir
        self.buffer = bytearray(b"\r\n")  # lets the first delimiter look like every other one
        self.state = "preamble"
        self.parts: list[Part] = []
        self.out: BinaryIO | None = None

    def feed(self, chunk: bytes) -> None:
        self.buffer += chunk
        while self._step():
            pass

    def finish(self) -> None:
        if self.state != "epilogue":
            raise InvalidRequest(
                "the multipart body ends before its closing boundary; was the upload cut short?"
            )

    def discard(self) -> None:
        if self.out is not None:
            self.out.close()
        for part in self.parts:
            part.path.unlink(missing_ok=True)

    def _step(self) -> bool:
        if self.state == "preamble":
            at = self.buffer.find(self.delimiter)
            if at < 0:
                del self.buffer[: max(0, len(self.buffer) - len(self.delimiter))]
                return False
            del self.buffer[: at + len(self.delimiter)]
            self.state = "after-delimiter"
            return True
        if self.state == "after-delimiter":
            return self._after_delimiter()
        if self.state == "headers":
            return self._headers()
        if self.state == "body":
            return self._body()
        self.buffer.clear()  # epilogue: ignored (RFC 2046 5.1.1)
        return False

    def _after_delimiter(self) -> bool:
        if len(self.buffer) < 2:
            return False
        if self.buffer[:2] == b"--":
            self.state = "epilogue"
            return True
        end = self.buffer.find(b"\r\n")
        if end < 0:
            if len(self.buffer) > 1024:
                raise InvalidRequest("a multipart boundary line is not followed by CRLF")
            return False
        del self.buffer[: end + 2]  # transport padding after the boundary is allowed
        self.state = "headers"
        return True

    def _headers(self) -> bool:
        if self.buffer.startswith(b"\r\n"):
            end, skip = 0, 2  # a part with no headers
        else:
            end, skip = self.buffer.find(b"\r\n\r\n"), 4
        if end < 0:
            if len(self.buffer) > MAX_HEADER_BYTES:
                raise InvalidRequest(f"a multipart part's headers exceed {MAX_HEADER_BYTES} bytes")
            return False
        content_type = None
        for line in bytes(self.buffer[:end]).decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-type":
                content_type = value.strip()
        del self.buffer[: end + skip]
        path = _new_path(self.spool_dir)
        self.out = open(path, "wb")  # noqa: SIM115 - closed when the part ends
        self.parts.append(Part(path, content_type))
        self.state = "body"
        return True

    def _body(self) -> bool:
        assert self.out is not None
        at = self.buffer.find(self.delimiter)
        if at < 0:
            keep = len(self.delimiter) - 1
            if len(self.buffer) > keep:
                self.out.write(self.buffer[: len(self.buffer) - keep])
                del self.buffer[: len(self.buffer) - keep]
            return False
        self.out.write(self.buffer[:at])
        self.out.close()
        self.out = None
        del self.buffer[: at + len(self.delimiter)]
        self.state = "after-delimiter"
        return True
