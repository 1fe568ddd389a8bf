"""Change feed read throughput: entries per second over HTTP, with and without metadata.

Baseline, in the same run: one process reading the same rows straight from the index
(the feed joined with the current instances, metadata parsed with json.loads), no HTTP.

    python -m bench.changefeed [--quick]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from collections.abc import Sequence

from bench.common import (
    MULTIPART_TYPE,
    Tessera,
    client,
    multipart_body,
    print_table,
    ratio,
    say,
    simple_instances,
)

PAGE = 200


def fill(server: Tessera, count: int) -> None:
    instances = simple_instances(count, 64, studies=20, series_per_study=2)
    with client() as http:
        for start in range(0, count, 50):
            body = multipart_body(instances[start : start + 50])
            response = http.post(
                server.url + "/studies", content=body, headers={"Content-Type": MULTIPART_TYPE}
            )
            assert response.status_code == 200, response.text[:300]


def read_over_http(server: Tessera, metadata: bool) -> tuple[int, float]:
    entries, last = 0, 0
    started = time.perf_counter()
    with client() as http:
        while True:
            params = {"offset": last, "limit": PAGE, "includeMetadata": str(metadata).lower()}
            page = http.get(server.url + "/changefeed", params=params).json()
            if not page:
                break
            entries += len(page)
            last = page[-1]["Sequence"]
    return entries, time.perf_counter() - started


def read_directly(server: Tessera, metadata: bool) -> tuple[int, float]:
    connection = sqlite3.connect(server.data_dir / "index.db")
    columns = "f.*, i.id" + (", i.dicom_json" if metadata else "")
    query = (
        f"SELECT {columns} FROM change_feed f "
        "LEFT JOIN instances i ON i.sop_instance_uid = f.sop_instance_uid "
        "WHERE f.sequence > ? ORDER BY f.sequence LIMIT ?"
    )
    entries, last = 0, 0
    started = time.perf_counter()
    while rows := connection.execute(query, (last, PAGE)).fetchall():
        if metadata:
            for row in rows:
                json.loads(row[-1])
        entries += len(rows)
        last = rows[-1][0]
    connection.close()
    return entries, time.perf_counter() - started


def run(quick: bool) -> str:
    count = 1000 if quick else 20000
    with Tessera(workers=1, fsync=False) as server:
        say(f"filling Tessera with {count} instances")
        fill(server, count)
        rows = []
        for metadata in (False, True):
            read_over_http(server, metadata)  # warm caches
            n, seconds = read_over_http(server, metadata)
            d, direct_seconds = read_directly(server, metadata)
            assert n == d == count, (n, d, count)
            rate, direct = n / seconds, d / direct_seconds
            rows.append(
                ["yes" if metadata else "no", n, f"{rate:,.0f}", f"{direct:,.0f}", ratio(rate, direct)]
            )
    return print_table(
        "Change feed read, pages of 200 by sequence (entries/s)",
        ["metadata", "entries", "Tessera over HTTP", "same rows read directly", "x direct"],
        rows,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run with 1,000 entries")
    run(parser.parse_args(argv).quick)


if __name__ == "__main__":
    main()
