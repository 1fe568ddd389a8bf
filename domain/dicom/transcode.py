"""Transcoding a stored instance into another transfer syntax (PS3.18 8.7.3.5, PS3.5 A).

The source is decoded with pydicom's decoders (pylibjpeg, Pillow) and written as Explicit VR
Little Endian, or re-encoded as RLE Lossless, JPEG-LS Lossless or JPEG 2000 Lossless. A lossy
source is never re-encoded with a lossless syntax: that would claim a fidelity it lost.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.pixels.utils import pack_bits
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

LOSSLESS_TARGETS = frozenset({RLELossless, JPEGLSLossless, JPEG2000Lossless})
TARGETS = frozenset({ExplicitVRLittleEndian, *LOSSLESS_TARGETS})


def transcoding_refusal(source: str, target: str, *, has_pixels: bool = True) -> str | None:
    """Why `source` cannot become `target`, or None when it can (or needs not change)."""
    if source == target:
        return None
    if target not in TARGETS:
        names = ", ".join(f"{UID(t).name} ({t})" for t in sorted(TARGETS))
        return f"Tessera does not transcode into {_name(target)}; it can produce {names}"
    source_uid = UID(source)
    if not has_pixels:
        return None
    if source_uid.is_compressed and not _decodable(source_uid):
        return f"no decoder is available here for {_name(source)}"
    if target in LOSSLESS_TARGETS and _is_lossy(source_uid):
        return (
            f"the instance is stored lossy ({_name(source)}); re-encoding it as {_name(target)} "
            "would claim a fidelity it lost"
        )
    return None


class TranscodingFailed(Exception):
    """The decoder or encoder refused this instance; the message says why."""


def transcode(source: Path, target: str, out: Path) -> None:
    """Write `source` to `out` in `target` (checked first with `transcoding_refusal`)."""
    try:
        ds = pydicom.dcmread(source)
        for _ in ds.iterall():  # convert raw elements now: a file whose encoding differs from
            pass  # its transfer syntax (read leniently) is then written consistently
        if "PixelData" in ds:
            _to_native_little_endian(ds)
            if target in LOSSLESS_TARGETS:
                ds.compress(target, generate_instance_uid=False)
        ds.file_meta.TransferSyntaxUID = UID(target)
        # force_encoding: a big endian source is written little endian, as the target says
        pydicom.dcmwrite(out, ds, implicit_vr=False, little_endian=True, force_encoding=True)
    except Exception as exc:  # decoders and encoders raise many types; each means "cannot"
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TranscodingFailed(f"cannot produce {_name(target)}: {first_line}") from exc


def _to_native_little_endian(ds: pydicom.Dataset) -> None:
    """Decode compressed pixels (colour as RGB), and make native ones little endian."""
    syntax = ds.file_meta.TransferSyntaxUID
    if syntax.is_compressed:
        ds.decompress(generate_instance_uid=False)
        return
    subsampled = ds.get("PhotometricInterpretation") == "YBR_FULL_422"
    if syntax.is_little_endian and not subsampled:
        return
    pixels = ds.pixel_array  # YBR_FULL_422 comes out with full chroma, converted to RGB
    if subsampled:
        ds.PhotometricInterpretation = "RGB"
    if ds.BitsAllocated == 1:
        ds.PixelData = pack_bits(pixels)
    else:
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    ds["PixelData"].VR = "OB" if ds.BitsAllocated <= 8 else "OW"
    if ds.get("SamplesPerPixel", 1) > 1:
        ds.PlanarConfiguration = 0  # the array's bytes are colour-by-pixel (PS3.3 C.7.6.3.1.3)


def _decodable(syntax: UID) -> bool:
    from pydicom.pixels.decoders.base import get_decoder

    try:
        return bool(get_decoder(syntax).is_available)
    except NotImplementedError:
        return False


def _is_lossy(syntax: UID) -> bool:
    """PS3.5 A.4 and Table A-1: the lossy compressions (JPEG baseline/extended, near-lossless
    JPEG-LS, JPEG 2000 irreversible, MPEG, HTJ2K)."""
    return syntax.is_compressed and syntax not in {
        RLELossless,
        JPEGLSLossless,
        JPEG2000Lossless,
        DeflatedExplicitVRLittleEndian,
        "1.2.840.10008.1.2.4.57",  # JPEG Lossless (Process 14)
        "1.2.840.10008.1.2.4.70",  # JPEG Lossless, first-order prediction
        "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
        "1.2.840.10008.1.2.4.202",  # HTJ2K Lossless RPCL
    }


def _name(syntax: str) -> str:
    name = UID(syntax).name
    return f"{name} ({syntax})" if name != syntax else syntax
