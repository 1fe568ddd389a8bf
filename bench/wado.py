"""WADO-RS single-instance retrieval of 512x512 instances: MB/s beside reading the same files.

Tessera (one worker) and Orthanc each store the same 512x512 16-bit instances; every instance
is then retrieved one request at a time (and with 4 requests in flight), as stored
(`transfer-syntax=*`): Tessera as `application/dicom` and as multipart/related, Orthanc as
multipart/related (its DICOMweb plugin answers instances only that way). The baseline, in the
same run, is one Python process reading the same stored files from Tessera's blob folder (warm
page cache, like the servers' reads).

    python -m bench.wado [--quick] [--no-orthanc]
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pydicom

from bench.common import (
    MB,
    MULTIPART_TYPE,
    Orthanc,
    Server,
    Tessera,
    client,
    multipart_body,
    orthanc_available,
    percentile,
    print_table,
    ratio,
    say,
    simple_instances,
    split_multipart,
)

SINGLE = "application/dicom; transfer-syntax=*"
MULTIPART = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@dataclass
class Figure:
    target: str
    accept: str
    parallel: int
    instances: int
    megabytes: float
    seconds: float
    latencies: list[float]

    @property
    def mb_per_second(self) -> float:
        return self.megabytes / self.seconds

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 0.5) * 1000


def store(server: Server, instances: Sequence[bytes]) -> None:
    headers = {"Content-Type": MULTIPART_TYPE, "Accept": "application/dicom+json"}
    with client(1) as http:
        for i in range(0, len(instances), 10):
            response = http.post(
                server.url + "/studies", content=multipart_body(instances[i : i + 10]), headers=headers
            )
            if response.status_code != 200:
                raise RuntimeError(f"{server.label}: STOW {response.status_code}: {response.text[:300]}")


def retrieve(server: Server, urls: list[str], accept: str, parallel: int, expected: dict[str, int]) -> Figure:
    """Every URL once (after one untimed pass); bytes checked against what was stored."""
    latencies: list[float] = []
    with client(parallel) as http:

        def get(url: str) -> int:
            start = time.perf_counter()
            response = http.get(url, headers={"Accept": accept})
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200:
                raise RuntimeError(f"{server.label} {url}: {response.status_code} {response.text[:300]}")
            body = response.content
            if accept.startswith("multipart"):
                (body,) = split_multipart(body, response.headers["content-type"])
            if len(body) != expected[url]:
                raise RuntimeError(f"{server.label} {url}: {len(body)} bytes, stored {expected[url]}")
            return len(response.content)

        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(get, urls[: max(parallel, len(urls) // 4)]))  # warm-up
            latencies.clear()
            start = time.perf_counter()
            received = sum(pool.map(get, urls))
            seconds = time.perf_counter() - start
    label = "application/dicom" if accept == SINGLE else "multipart"
    return Figure(server.label, label, parallel, len(urls), received / MB, seconds, latencies)


def read_files(tessera: Tessera) -> Figure:
    """The same stored files read whole from disk by one process, twice; the faster pass counts."""
    files = sorted((tessera.data_dir / "blobs").rglob("*.dcm"))
    best = None
    for _ in range(2):
        latencies = []
        total = 0
        start = time.perf_counter()
        for path in files:
            t = time.perf_counter()
            with open(path, "rb") as fp:
                total += len(fp.read())
            latencies.append(time.perf_counter() - t)
        seconds = time.perf_counter() - start
        figure = Figure("read files", "-", 1, len(files), total / MB, seconds, latencies)
        if best is None or figure.seconds < best.seconds:
            best = figure
    assert best is not None
    return best


def run(quick: bool = False, with_orthanc: bool = True) -> list[str]:
    count = 40 if quick else 200
    instances = simple_instances(count, 512)
    uids = []
    for data in instances:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        uids.append((ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, len(data)))
    servers: list[Server] = [Tessera(workers=1)]
    if with_orthanc and orthanc_available():
        servers.append(Orthanc())
    elif with_orthanc:
        say("Orthanc is not installed (apt-get install -y orthanc orthanc-dicomweb): skipped")
    figures: list[Figure] = []
    try:
        for server in servers:
            server.start()
            store(server, instances)
        tessera = servers[0]
        assert isinstance(tessera, Tessera)
        for parallel in (1, 4):
            figures.append(read_files(tessera))
            for server in servers:
                urls = [f"{server.url}/studies/{st}/series/{se}/instances/{sop}" for st, se, sop, _ in uids]
                expected = {url: size for url, (_, _, _, size) in zip(urls, uids, strict=True)}
                for accept in (SINGLE, MULTIPART) if isinstance(server, Tessera) else (MULTIPART,):
                    figure = retrieve(server, urls, accept, parallel, expected)
                    figures.append(figure)
                    say(
                        f"{server.label} {figure.accept} x{parallel}: {figure.mb_per_second:.0f} MB/s, "
                        f"p50 {figure.p50:.1f} ms"
                    )
    finally:
        for server in servers:
            server.stop()
    return [table(figures)]


def table(figures: list[Figure]) -> str:
    disk = max(f.mb_per_second for f in figures if f.target == "read files")
    orthanc = {f.parallel: f for f in figures if f.target == "Orthanc"}
    rows = [["read files (1 process)", "-", "-", f"{disk:.0f}", "-", "-", "1.00"]]
    for f in figures:
        if f.target == "read files":
            continue
        peer = orthanc.get(f.parallel)
        rows.append(
            [
                f.target, f.accept, str(f.parallel), f"{f.mb_per_second:.0f}", f"{f.p50:.1f}",
                ratio(f.mb_per_second, peer.mb_per_second) if peer else "n/a", ratio(f.mb_per_second, disk),
            ]
        )  # fmt: skip
    header = ["server", "answer", "in flight", "MB/s", "p50 ms", "x Orthanc (MB/s)", "x read files"]
    return print_table("WADO-RS single 512x512 instance, as stored (transfer-syntax=*)", header, rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run with 40 instances")
    parser.add_argument("--no-orthanc", action="store_true", help="leave Orthanc out")
    args = parser.parse_args(argv)
    run(args.quick, not args.no_orthanc)


if __name__ == "__main__":
    main()
