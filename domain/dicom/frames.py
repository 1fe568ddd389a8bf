"""Frames of a stored instance (PS3.18 8.7.3.5, 10.4.1.1.2), one at a time: native frames are read
at their byte offset, encapsulated ones through the offset tables, and only the frame asked for is
ever decoded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pydicom
from pydicom.encaps import get_frame
from pydicom.pixels.utils import pack_bits, pixel_array

from domain.dicom.uids import EXPLICIT_VR_LITTLE_ENDIAN
from domain.errors import InvalidRequest, NotAcceptable, NotFound

OCTET_STREAM = "application/octet-stream"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
NATIVE_SYNTAXES = {
    IMPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
}
# PS3.18 Table 8.7.3-5 (and 8.7.4): the media type of a frame compressed in each transfer syntax.
COMPRESSED_FRAME_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/x-dicom-rle",
}
PIXEL_DATA_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # Pixel Data, Float and Double Float Pixel Data
AS_STORED = "*"


class NoPixelData(NotFound):
    """The instance holds no pixel data, so it has no frames to retrieve or render."""


@dataclass(frozen=True)
class FrameEncoding:
    """What each frame part carries: its media type, its transfer syntax, and whether compressed
    stored frames are decoded to native little-endian bytes to produce it."""

    media_type: str
    transfer_syntax_uid: str
    decode: bool


def parse_frame_list(text: str) -> list[int]:
    """PS3.18 10.4.1.1.2: `1,3,5`, 1-based frame numbers; 400 naming what is wrong."""
    numbers = []
    for item in text.split(","):
        item = item.strip()
        if not item.isdigit() or not item.isascii():
            raise InvalidRequest(
                f"the frame list {text!r} is malformed at {item!r}: "
                "give frame numbers from 1 separated by commas, such as frames/1,2,5"
            )
        if int(item) == 0:
            raise InvalidRequest(f"the frame list {text!r} asks for frame 0: frame numbers start at 1")
        numbers.append(int(item))
    return numbers


def choose_frame_encoding(accepted: Sequence[tuple[str, str | None]], stored_syntax: str) -> FrameEncoding:
    """PS3.18 8.7.3.5: the first acceptable (part media type, transfer syntax) this instance can
    give; `*/*` and `*` mean as stored, octet-stream without a syntax means native little endian."""
    for media_type, syntax in accepted:
        encoding = _encoding_for(media_type, syntax, stored_syntax)
        if encoding is not None:
            return encoding
    asked = ", ".join(f"{m} ({s or 'default syntax'})" for m, s in accepted) or "nothing"
    stored_type = COMPRESSED_FRAME_TYPES.get(stored_syntax, OCTET_STREAM)
    raise NotAcceptable(
        f"cannot give the frames as {asked}: they are stored as {stored_syntax} ({stored_type}); ask for "
        f'multipart/related; type="{OCTET_STREAM}" (uncompressed) or type="{stored_type}"; '
        f"transfer-syntax={stored_syntax}, or transfer-syntax=* for the frames as stored"
    )


def _encoding_for(media_type: str, syntax: str | None, stored: str) -> FrameEncoding | None:
    compressed_type = COMPRESSED_FRAME_TYPES.get(stored)
    native_label = EXPLICIT_VR_LITTLE_ENDIAN if stored == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN else stored
    as_stored = (
        FrameEncoding(compressed_type, stored, False)
        if compressed_type
        else FrameEncoding(OCTET_STREAM, native_label, False)
    )
    if media_type in ("*/*", "*") and syntax in (None, AS_STORED):
        return as_stored
    if media_type in ("*/*", "*", OCTET_STREAM, "application/*"):
        if syntax in (None, EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN):
            return FrameEncoding(
                OCTET_STREAM, syntax or EXPLICIT_VR_LITTLE_ENDIAN, compressed_type is not None
            )
        if syntax in (AS_STORED, stored):
            return FrameEncoding(OCTET_STREAM, native_label if not compressed_type else stored, False)
        if media_type == OCTET_STREAM or syntax not in COMPRESSED_FRAME_TYPES:
            return None
    acceptable_type = media_type in (compressed_type, "image/*", "*/*", "*")
    if compressed_type and acceptable_type and syntax in (None, AS_STORED, stored):
        return as_stored
    return None


@dataclass(frozen=True)
class PixelLayout:
    """Where a stored instance's pixel data lies and how its frames are shaped."""

    transfer_syntax_uid: str
    number_of_frames: int
    frame_bits: int  # bits of one native frame
    bits_allocated: int
    value_offset: int | None  # file position of the pixel data value (None when deflated)
    extended_offsets: tuple[bytes, bytes] | None
    swap_bytes: int = 0  # big endian: the size of the words to swap for little endian (PS3.5 7.3)


def read_header(fp: BinaryIO) -> tuple[pydicom.Dataset, PixelLayout | None]:
    """The data set up to its pixel data, and where that pixel data lies (None when absent).

    Only the header is parsed: the pixel data is neither read nor scanned."""
    ds = pydicom.dcmread(fp, stop_before_pixels=True)
    syntax = str(ds.file_meta.get("TransferSyntaxUID", IMPLICIT_VR_LITTLE_ENDIAN))
    offset: int | None = None
    head = b""
    if syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
        # The whole data set is deflated: file positions mean nothing, so it is read in full.
        fp.seek(0)
        if not any(tag in pydicom.dcmread(fp) for tag in PIXEL_DATA_TAGS):
            return ds, None
    else:
        start = fp.tell()  # pydicom leaves the file at the pixel data element's tag
        head = fp.read(12)
        if len(head) < 8:
            return ds, None
        order = ">" if syntax == EXPLICIT_VR_BIG_ENDIAN else "<"
        group, element = np.frombuffer(head[:4], f"{order}u2")
        if (int(group) << 16 | int(element)) not in PIXEL_DATA_TAGS:
            return ds, None
        # PS3.5 7.1.2: explicit VR OB/OW/OF/OD elements have a 12-byte header, implicit ones 8;
        # the bytes decide, as some files are encoded otherwise than their transfer syntax says.
        offset = start + (12 if head[4:6] in (b"OB", b"OW", b"OF", b"OD", b"UN") else 8)
    try:
        return ds, _layout(ds, syntax, head, offset)
    except (TypeError, ValueError) as exc:
        raise NotAcceptable(f"the stored instance's image attributes cannot be read: {exc}") from exc


def _layout(ds: pydicom.Dataset, syntax: str, head: bytes, offset: int | None) -> PixelLayout:
    bits_allocated = int(ds.get("BitsAllocated") or 8)
    swap = 0
    if syntax == EXPLICIT_VR_BIG_ENDIAN:  # PS3.5 7.3: OW is swapped per 16-bit word even for 8-bit data
        swap = bits_allocated // 8 if bits_allocated > 8 else 2 if head[4:6] == b"OW" else 0
    samples = int(ds.get("Rows") or 0) * int(ds.get("Columns") or 0) * int(ds.get("SamplesPerPixel") or 1)
    if str(ds.get("PhotometricInterpretation", "")).strip() == "YBR_FULL_422":
        samples = samples * 2 // 3  # PS3.3 C.7.6.3.1.2: two chrominance samples per pair of pixels
    eot = None
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        eot = (bytes(ds.ExtendedOffsetTable), bytes(ds.ExtendedOffsetTableLengths))
    frames = max(int(ds.get("NumberOfFrames") or 1), 1)
    return PixelLayout(syntax, frames, samples * bits_allocated, bits_allocated, offset, eot, swap)


def pixel_layout(fp: BinaryIO) -> PixelLayout:
    """The layout of the instance's pixel data; NoPixelData when it has none."""
    ds, layout = read_header(fp)
    if layout is None:
        raise NoPixelData(f"the instance {ds.get('SOPInstanceUID', '')} has no pixel data")
    return layout


def check_frame_numbers(numbers: Sequence[int], layout: PixelLayout) -> None:
    for number in numbers:
        if number > layout.number_of_frames:
            raise NotFound(
                f"frame {number} does not exist: the instance has {layout.number_of_frames} "
                f"frame{'s' if layout.number_of_frames != 1 else ''}"
            )


def read_frames(path: Path, numbers: Sequence[int], encoding: FrameEncoding) -> list[bytes]:
    """The bytes of each frame asked for, in the encoding chosen (runs in a worker thread)."""
    with open(path, "rb") as fp:
        layout = pixel_layout(fp)
        check_frame_numbers(numbers, layout)
        return [_read_frame(path, fp, layout, number, encoding) for number in numbers]


def _read_frame(path: Path, fp: BinaryIO, layout: PixelLayout, number: int, encoding: FrameEncoding) -> bytes:
    syntax = layout.transfer_syntax_uid
    try:
        if syntax in COMPRESSED_FRAME_TYPES and not encoding.decode and layout.value_offset is not None:
            fp.seek(layout.value_offset)
            return get_frame(
                fp,
                number - 1,
                number_of_frames=layout.number_of_frames,
                extended_offsets=layout.extended_offsets,
            )
        if syntax in COMPRESSED_FRAME_TYPES or layout.value_offset is None or layout.frame_bits % 8:
            return native_bytes(decode_frame(path, number), layout.bits_allocated)
        size = layout.frame_bits // 8
        start = layout.value_offset + (number - 1) * size
        swap = layout.swap_bytes if encoding.transfer_syntax_uid != syntax else 0
        if not swap:
            fp.seek(start)
            data = fp.read(size)
        else:  # whole words around the frame, swapped, then cut to the frame
            first = start - (start - layout.value_offset) % swap
            fp.seek(first)
            words = fp.read(-(-(start + size - first) // swap) * swap)
            word = np.dtype(f">u{swap}")
            swapped = np.frombuffer(words[: len(words) // swap * swap], word).astype(word.newbyteorder("<"))
            data = swapped.tobytes()[start - first : start - first + size]
    except (ValueError, RuntimeError, NotImplementedError, KeyError) as exc:
        raise NotAcceptable(f"frame {number} cannot be read from the stored {syntax} data: {exc}") from exc
    if len(data) < size:
        raise NotAcceptable(f"frame {number} is cut short in the stored file ({len(data)} of {size} bytes)")
    return data


def decode_frame(path: Path, number: int) -> np.ndarray:
    """Frame `number` decoded alone; a deflated file, or one whose encoding defeats that, in full."""
    try:
        return pixel_array(str(path), index=number - 1)
    except (ValueError, AttributeError):
        ds = pydicom.dcmread(path)
        frames: np.ndarray = ds.pixel_array
        return frames[number - 1] if int(ds.get("NumberOfFrames") or 1) > 1 else frames


def native_bytes(frame: np.ndarray, bits_allocated: int) -> bytes:
    """A decoded frame as native little-endian bytes (PS3.5 8.1.1), 1-bit data packed."""
    if bits_allocated == 1:
        return pack_bits(frame)
    return frame.astype(frame.dtype.newbyteorder("<"), copy=False).tobytes()
