"""WADO-RS single-frame retrieval from a 100-frame instance: frames per second beside pydicom.

One 100-frame 16-bit MONOCHROME2 instance is stored twice in Tessera (one worker, no fsync):
uncompressed (Explicit VR Little Endian) and JPEG 2000 lossless. Random single frames are then
asked for one request at a time, as uncompressed octet-stream (the JPEG 2000 frames decoded on
the server) and, for JPEG 2000, as stored. The baseline, in the same run and process as the
client, is pydicom decoding the same frame of the same file directly
(`pydicom.pixels.pixel_array(path, index=n)`), which is what the server must do at least.

    python -m bench.frames [--quick]
"""

from __future__ import annotations

import argparse
import io
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from pydicom import dcmread
from pydicom.pixels import pixel_array
from pydicom.uid import JPEG2000Lossless

from bench.common import StudyInfo, Tessera, client, instance_bytes, new_uid, print_table, ratio, say

FRAMES = 100
OCTET = 'multipart/related; type="application/octet-stream"'
AS_STORED = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


@dataclass
class Figure:
    stored: str
    how: str
    per_second: float
    baseline: float


def multiframe(size: int, compressed: bool) -> bytes:
    """A 100-frame 16-bit instance; smooth images with noise, as CT slices compress."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:size, 0:size]
    base = (1000 + 800 * np.sin(x / 17.0) * np.cos(y / 23.0)).astype(np.int32)
    frames = np.stack([base + rng.integers(0, 64, (size, size)) + k for k in range(FRAMES)]).astype(np.uint16)
    study = StudyInfo(new_uid(), "BENCH", "Bench^Frames", "19700101", "O", "20260101", "ACC", "frames")
    ds = dcmread(io.BytesIO(instance_bytes(study, new_uid(), "CT", 1, 1, frames[0])))
    ds.NumberOfFrames = FRAMES
    ds.PixelData = frames.tobytes()
    if compressed:
        ds.compress(JPEG2000Lossless, frames)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def rate(action: Callable[[int], object], seconds: float) -> float:
    """Calls per second of `action(frame_index)` on random frames, for about `seconds`."""
    rng = random.Random(5)
    done, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds or done < 5:
        action(rng.randrange(FRAMES))
        done += 1
    return done / elapsed


def run(quick: bool = False) -> list[str]:
    size, seconds = (128, 2.0) if quick else (512, 8.0)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp, Tessera(workers=1, fsync=False) as server, client(1) as http:
        for label, compressed in (("uncompressed", False), ("JPEG 2000 lossless", True)):
            say(f"generating a {FRAMES}-frame {size}x{size} instance, {label}")
            path = Path(tmp) / f"{label}.dcm"
            path.write_bytes(multiframe(size, compressed))
            figures += measure(server, http, path, label, seconds)
    return [table(figures, size)]


def measure(server: Tessera, http: httpx.Client, path: Path, label: str, seconds: float) -> list[Figure]:
    """Store the file, then single frames through Tessera and through pydicom directly."""
    data = path.read_bytes()
    stored = http.post(server.url + "/studies", content=data, headers={"Content-Type": "application/dicom"})
    if stored.status_code != 200:
        raise RuntimeError(f"STOW {stored.status_code}: {stored.text[:300]}")
    ds = dcmread(path, stop_before_pixels=True)
    url = (
        f"{server.url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/frames/"
    )

    def fetch(index: int, accept: str) -> None:
        response = http.get(url + str(index + 1), headers={"Accept": accept})
        if response.status_code != 200:
            raise RuntimeError(f"frames answered {response.status_code}: {response.text[:300]}")

    baseline = rate(lambda i: pixel_array(str(path), index=i), seconds)
    say(f"pydicom decoding one frame of the {label} file: {baseline:.0f} frames/s")
    compressed = str(ds.file_meta.TransferSyntaxUID) == JPEG2000Lossless
    figures = []
    if not compressed:  # the per-request floor: the same instance's metadata, no pixel data read
        metadata = url.replace("/frames/", "/metadata")
        floor = rate(lambda _: http.get(metadata).raise_for_status(), seconds)
        say(f"Tessera metadata of the instance: {floor:.0f} requests/s")
        figures.append(Figure(label, "metadata (floor, no pixels)", floor, baseline))
    for how, accept in [("uncompressed octet-stream", OCTET)] + (
        [("as stored", AS_STORED)] if compressed else []
    ):
        per_second = rate(lambda i, a=accept: fetch(i, a), seconds)  # type: ignore[misc]
        say(f"Tessera {label}, {how}: {per_second:.0f} frames/s")
        figures.append(Figure(label, how, per_second, baseline))
    return figures


def table(figures: Sequence[Figure], size: int) -> str:
    rows = [
        [f.stored, f.how, f"{f.per_second:.0f}", f"{f.baseline:.0f}", ratio(f.per_second, f.baseline)]
        for f in figures
    ]
    header = ["stored", "answer", "Tessera frames/s", "pydicom decode frames/s", "x pydicom"]
    title = f"WADO-RS one frame of a {FRAMES}-frame {size}x{size} 16-bit instance, one request at a time"
    return print_table(title, header, rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run with 128x128 frames")
    run(parser.parse_args(argv).quick)


if __name__ == "__main__":
    main()
