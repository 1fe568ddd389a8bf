"""WADO-RS rendered JPEG of a 512x512 16-bit CT with a window: images per second beside Pillow.

Tessera (one worker, no fsync) stores one 512x512 CT (RescaleIntercept -1024, WindowCenter 40,
WindowWidth 400) and renders it to JPEG (quality 90) one request at a time, and as a 128x128
thumbnail. The baseline, in the same run, is Pillow alone encoding the already windowed 8-bit
array to JPEG at the same quality in the client process: the encoding Tessera cannot avoid.

    python -m bench.render [--quick]
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image
from pydicom import dcmread

from bench.common import StudyInfo, Tessera, client, instance_bytes, new_uid, print_table, ratio, say

SIZE = 512
QUALITY = 90


def ct_slice() -> np.ndarray:
    """Stored values of a CT-like slice: air, a body of soft tissue, bone, noise."""
    rng = np.random.default_rng(11)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    r = np.hypot(x - SIZE / 2, y - SIZE / 2)
    hu = np.where(r < 200, 40, -1000) + np.where((r > 150) & (r < 170), 900, 0)
    return (hu + 1024 + rng.integers(-20, 20, (SIZE, SIZE))).clip(0, 4095).astype(np.uint16)


def windowed(stored: np.ndarray) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 linear window, center 40 width 400, after the rescale."""
    hu = stored.astype(np.float64) - 1024
    return np.clip(np.rint(((hu - 39.5) / 399 + 0.5) * 255), 0, 255).astype(np.uint8)


def rate(action: Callable[[], object], seconds: float) -> float:
    done, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds or done < 5:
        action()
        done += 1
    return done / elapsed


def pillow_jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=QUALITY)
    return buffer.getvalue()


def run(quick: bool = False) -> list[str]:
    seconds = 2.0 if quick else 8.0
    stored = ct_slice()
    study = StudyInfo(new_uid(), "BENCH", "Bench^Render", "19700101", "O", "20260101", "ACC", "render")
    ds = dcmread(io.BytesIO(instance_bytes(study, new_uid(), "CT", 1, 1, stored)))
    ds.RescaleIntercept, ds.RescaleSlope, ds.WindowCenter, ds.WindowWidth = -1024, 1, 40, 400
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    rows = []
    with Tessera(workers=1, fsync=False) as server, client(1) as http:
        response = http.post(
            server.url + "/studies", content=buffer.getvalue(), headers={"Content-Type": "application/dicom"}
        )
        if response.status_code != 200:
            raise RuntimeError(f"STOW {response.status_code}: {response.text[:300]}")
        url = (
            f"{server.url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}"
        )
        array = windowed(stored)
        baseline = rate(lambda: pillow_jpeg(array), seconds)
        say(f"Pillow JPEG of the windowed array: {baseline:.0f} images/s")
        for label, path, params in (
            ("rendered 512x512 JPEG", "/rendered", {"quality": str(QUALITY)}),
            ("thumbnail 128x128 JPEG", "/thumbnail", {}),
        ):

            def fetch(path: str = path, params: dict[str, str] = params) -> None:
                answer = http.get(url + path, params=params, headers={"Accept": "image/jpeg"})
                if answer.status_code != 200:
                    raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text[:300]}")

            per_second = rate(fetch, seconds)
            say(f"Tessera {label}: {per_second:.0f} images/s")
            rows.append([label, f"{per_second:.0f}", f"{baseline:.0f}", ratio(per_second, baseline)])
    header = ["Tessera", "images/s", "Pillow JPEG of the windowed array, images/s", "x Pillow"]
    return [
        print_table("WADO-RS rendered 512x512 16-bit CT (window 40/400), one request at a time", header, rows)
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    run(parser.parse_args(argv).quick)


if __name__ == "__main__":
    main()
