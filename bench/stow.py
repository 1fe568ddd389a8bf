"""STOW-RS throughput: Tessera (1 and 2 workers) beside Orthanc and the physical limit, same run.

For 64x64 and 512x512 16-bit MONOCHROME2 instances, batches of 1 and 10 instances per request,
1 and 4 requests in flight, through one httpx client with keep-alive connections. "The limit" is
one Python process reading each header with pydicom (stop_before_pixels) and writing the same
bytes to files on the same disk (fsync like Tessera's default), with no HTTP and no index.

    python -m bench.stow [--quick] [--no-orthanc] [--nofsync]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import tempfile
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
    print_table,
    ratio,
    say,
    simple_instances,
)

SIZES = (64, 512)
BATCHES = (1, 10)
PARALLEL = (1, 4)


@dataclass
class Figure:
    target: str
    size: int
    batch: int
    parallel: int
    instances: int
    seconds: float
    megabytes: float

    @property
    def per_second(self) -> float:
        return self.instances / self.seconds

    @property
    def mb_per_second(self) -> float:
        return self.megabytes / self.seconds


def count(quick: bool, size: int, batch: int) -> int:
    """Instances sent per configuration (a multiple of every batch and parallelism)."""
    if quick:
        return 200 if size == 64 else 80
    if size == 64:
        return 600 if batch == 1 else 1200
    return 320


def limit(instances: Sequence[bytes], fsync: bool = True) -> float:
    """Seconds for one process to parse each header and write the bytes to its own file."""
    folder = tempfile.mkdtemp(prefix="bench-limit-")
    try:
        start = time.perf_counter()
        for i, data in enumerate(instances):
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
            assert ds.SOPInstanceUID
            path = os.path.join(folder, f"{i}.dcm")
            with open(path, "wb") as fp:
                fp.write(data)
                if fsync:
                    fp.flush()
                    os.fsync(fp.fileno())
        return time.perf_counter() - start
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def send(server: Server, instances: Sequence[bytes], batch: int, parallel: int) -> float:
    """Seconds to store every instance but the first (which warms the connection up, untimed),
    `batch` per request, `parallel` requests in flight."""
    warm, timed = instances[0], instances[1:]
    bodies = [multipart_body(timed[i : i + batch]) for i in range(0, len(timed), batch)]
    headers = {"Content-Type": MULTIPART_TYPE, "Accept": "application/dicom+json"}
    url = server.url + "/studies"
    with client(parallel) as http:

        def post(body: bytes) -> None:
            response = http.post(url, content=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(
                    f"{server.label}: STOW answered {response.status_code}: {response.text[:300]}"
                )

        post(multipart_body([warm]))
        start = time.perf_counter()
        if parallel == 1:
            for body in bodies:
                post(body)
        else:
            with ThreadPoolExecutor(parallel) as pool:
                list(pool.map(post, bodies))
        return time.perf_counter() - start


def run(
    quick: bool = False, with_orthanc: bool = True, also_nofsync: bool = False, rounds: int = 0
) -> list[str]:
    """Every configuration on every server, interleaved; with several rounds the best one counts
    (the machine is shared, so the best of a few runs is the least disturbed)."""
    rounds = rounds or (1 if quick else 2)
    servers: list[Server] = [Tessera(workers=1), Tessera(workers=2)]
    if also_nofsync:
        servers.append(Tessera(workers=2, fsync=False))
    if with_orthanc and orthanc_available():
        servers.append(Orthanc())
    elif with_orthanc:
        say("Orthanc is not installed (apt-get install -y orthanc orthanc-dicomweb): skipped")
    best: dict[tuple[str, int, int, int], Figure] = {}

    def keep(figure: Figure) -> None:
        key = (figure.target, figure.size, figure.batch, figure.parallel)
        if key not in best or figure.seconds < best[key].seconds:
            best[key] = figure

    try:
        for server in servers:
            server.start()
        for round_ in range(rounds):
            for size in SIZES:
                for batch in BATCHES:
                    n = count(quick, size, 10)  # the limit is measured before each group: it is short
                    sample = simple_instances(n, size)
                    keep(Figure("limit", size, 0, 1, n, limit(sample), sum(map(len, sample)) / MB))
                    rate = best[("limit", size, 0, 1)].per_second
                    say(f"round {round_ + 1} limit {size}x{size}: best so far {rate:.0f} instances/s")
                    for parallel in PARALLEL:
                        for server in servers:
                            instances = simple_instances(count(quick, size, batch) + 1, size)
                            megabytes = sum(map(len, instances[1:])) / MB
                            seconds = send(server, instances, batch, parallel)
                            figure = Figure(
                                server.label, size, batch, parallel, len(instances) - 1, seconds, megabytes
                            )
                            keep(figure)
                            say(
                                f"round {round_ + 1} {server.label} {size}x{size} batch {batch} x{parallel}: "
                                f"{figure.per_second:.0f} instances/s, {figure.mb_per_second:.1f} MB/s"
                            )
    finally:
        for server in servers:
            server.stop()
    figures = [f for f in best.values() if f.target != "limit"]
    limits = {f.size: f for f in best.values() if f.target == "limit"}
    note = (
        f"best of {rounds} interleaved round(s); "
        "limit = one process, pydicom header read + write + fsync per file"
    )
    print(note)
    return [table(figures, limits), note]


def table(figures: list[Figure], limits: dict[int, Figure]) -> str:
    orthanc = {(f.size, f.batch, f.parallel): f for f in figures if f.target == "Orthanc"}
    rows = []
    for f in figures:
        if f.target == "Orthanc":
            continue
        peer = orthanc.get((f.size, f.batch, f.parallel))
        rows.append(
            [
                f"{f.size}x{f.size}", f.batch, f.parallel, f.target, f"{f.per_second:.0f}",
                f"{f.mb_per_second:.1f}", f"{peer.per_second:.0f}" if peer else "-",
                ratio(f.per_second, peer.per_second) if peer else "n/a",
                f"{limits[f.size].per_second:.0f}", ratio(f.per_second, limits[f.size].per_second),
            ]
        )  # fmt: skip
    header = [
        "instance", "batch", "in flight", "server", "inst/s", "MB/s", "Orthanc inst/s",
        "x Orthanc", "limit inst/s", "x limit",
    ]  # fmt: skip
    return print_table("STOW-RS (instances per second; ratios from the same run)", header, rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run with few instances")
    parser.add_argument("--no-orthanc", action="store_true", help="leave Orthanc out")
    parser.add_argument(
        "--nofsync", action="store_true", help="also run Tessera 2 workers with TESSERA_FSYNC=0"
    )
    parser.add_argument("--rounds", type=int, default=0, help="rounds, best counts [1 quick, 2 full]")
    args = parser.parse_args(argv)
    run(args.quick, not args.no_orthanc, args.nofsync, args.rounds)


if __name__ == "__main__":
    main()
