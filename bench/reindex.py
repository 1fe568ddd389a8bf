"""Re-index throughput of extended query tags: instances per second, from the POST that adds
the tags to the operation's `succeeded`, with the server's default batch of 100.

Baseline, in the same run: one process reading the same rows straight from the SQLite index
(SELECT of dicom_json in pages of 100, each parsed with json.loads), no HTTP, no writes.

    python -m bench.reindex [--quick]
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

BATCH = 100
TAGS = [
    {"path": "PhotometricInterpretation", "level": "Series"},
    {"path": "BitsStored", "level": "Instance"},
    {"path": "Rows", "level": "Instance"},
]


def fill(server: Tessera, count: int) -> None:
    instances = simple_instances(count, 16, studies=20, series_per_study=2)
    with client() as http:
        for start in range(0, count, 50):
            body = multipart_body(instances[start : start + 50])
            response = http.post(
                server.url + "/studies", content=body, headers={"Content-Type": MULTIPART_TYPE}
            )
            assert response.status_code == 200, response.text[:300]


def reindex_over_http(server: Tessera) -> float:
    with client() as http:
        started = time.perf_counter()
        response = http.post(server.url + "/extendedquerytags", json=TAGS)
        assert response.status_code == 202, response.text
        href = response.json()["href"]
        while (operation := http.get(href).json())["status"] not in ("succeeded", "failed"):
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        assert operation["status"] == "succeeded", operation
        for tag in TAGS:
            assert http.get(f"{server.url}/extendedquerytags/{tag['path']}").json()["status"] == "Ready"
    return seconds


def read_directly(server: Tessera) -> tuple[int, float]:
    connection = sqlite3.connect(server.data_dir / "index.db")
    query = "SELECT id, dicom_json FROM instances WHERE id > ? ORDER BY id LIMIT ?"
    rows_read, last = 0, 0
    started = time.perf_counter()
    while rows := connection.execute(query, (last, BATCH)).fetchall():
        for row in rows:
            json.loads(row[1])
        rows_read += len(rows)
        last = rows[-1][0]
    connection.close()
    return rows_read, time.perf_counter() - started


def run(quick: bool) -> str:
    count = 1000 if quick else 10000
    server = Tessera(workers=1, fsync=False)
    with server:
        say(f"filling Tessera with {count} instances")
        fill(server, count)
        read_directly(server)  # warm the page cache for both
        seconds = reindex_over_http(server)
        n, direct_seconds = read_directly(server)
        assert n == count, (n, count)
        rate, direct = count / seconds, n / direct_seconds
        rows = [[count, len(TAGS), f"{rate:,.0f}", f"{direct:,.0f}", ratio(rate, direct)]]
    return print_table(
        "Extended query tag re-index (instances/s)",
        ["instances", "tags", "Tessera re-index", "same rows read directly", "x direct"],
        rows,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run with 1,000 instances")
    run(parser.parse_args(argv).quick)


if __name__ == "__main__":
    main()
