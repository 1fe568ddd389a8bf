"""Large STOW-RS requests against `tessera serve` as a process: the body is streamed to disk,
so the server's memory stays flat however large the upload; a body over
TESSERA_MAX_REQUEST_BYTES is refused with 413 and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from pydicom.uid import generate_uid

from tests.dicom_factory import make_dataset, multipart, to_bytes
from tests.server import Server, running_server

MiB = 1024 * 1024
INSTANCES = 40
ROWS, COLUMNS = 2048, 4096  # 8-bit pixels: 8 MiB per instance, 320 MiB in all
MAX_RSS_GROWTH = 150 * MiB  # under half the body: the body is never held in memory
BOUNDARY = "tessera-large-upload"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
SMALL_LIMIT = 1 * MiB
BODY_BYTES = INSTANCES * ROWS * COLUMNS


def stream_of_instances(
    study_uid: str, count: int, pixels: bytes, rows: int, columns: int
) -> Iterator[bytes]:
    """A multipart/related body made one instance at a time, so it is never whole in memory."""
    series_uid = generate_uid()
    for number in range(1, count + 1):
        ds = make_dataset(
            study_uid=study_uid,
            series_uid=series_uid,
            Rows=rows,
            Columns=columns,
            PixelData=pixels,
            InstanceNumber=number,
        )
        yield f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        yield to_bytes(ds)
        yield b"\r\n"
    yield f"--{BOUNDARY}--\r\n".encode()


class PeakMemory(threading.Thread):
    """Samples the resident memory of a process (and any children) until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop_event = threading.Event()

    def rss(self) -> int:
        processes = [self.process, *self.process.children(recursive=True)]
        total = 0
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += process.memory_info().rss
        return total

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, self.rss())
            self._stop_event.wait(0.01)

    def __enter__(self) -> PeakMemory:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, self.rss())


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def instances_in_study(server: Server, study_uid: str) -> int:
    response = httpx.get(f"{server.dicomweb_url}/studies/{study_uid}/instances", params={"limit": "1000"})
    assert response.status_code == 200, response.text
    return len(response.json())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path) as running:
        yield running


@pytest.fixture(scope="module")
def small_limit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("small-limit")
    with running_server(workdir, env={"TESSERA_MAX_REQUEST_BYTES": str(SMALL_LIMIT)}) as running:
        yield running


@pytest.fixture
def stored_before(small_limit_server: Server) -> set[Path]:
    """The files in the spool and blob folders before the test's request."""
    return set(files_under(small_limit_server.spool_dir) + files_under(small_limit_server.blob_dir))


def test_a_320_mb_upload_is_stored_without_the_server_holding_it_in_memory(server: Server) -> None:
    # warm up: the first store and search load what they need, which is not the upload's cost
    warm_up, content_type = multipart([to_bytes(make_dataset())])
    assert (
        httpx.post(
            f"{server.dicomweb_url}/studies", content=warm_up, headers={"Content-Type": content_type}
        ).status_code
        == 200
    )
    assert httpx.get(f"{server.dicomweb_url}/studies").status_code == 200

    study_uid = generate_uid()
    pixels = os.urandom(ROWS * COLUMNS)
    with PeakMemory(server.process.pid) as memory:
        baseline = memory.rss()
        response = httpx.post(
            f"{server.dicomweb_url}/studies",
            content=stream_of_instances(study_uid, INSTANCES, pixels, ROWS, COLUMNS),
            headers={"Content-Type": CONTENT_TYPE, "Accept": "application/dicom+json"},
            timeout=httpx.Timeout(300),
        )
    assert response.status_code == 200, response.text
    assert len(response.json()["00081199"]["Value"]) == INSTANCES
    growth = memory.peak - baseline
    assert growth < MAX_RSS_GROWTH, (
        f"the server grew by {growth / MiB:.0f} MiB while receiving {BODY_BYTES / MiB:.0f} MiB"
    )
    assert instances_in_study(server, study_uid) == INSTANCES
    assert files_under(server.spool_dir) == []  # every spooled part became a stored blob
    stored = [p for p in files_under(server.blob_dir) if p.stat().st_size > ROWS * COLUMNS]
    assert len(stored) == INSTANCES


def _assert_refused_as_too_large(
    response: httpx.Response, server: Server, study_uid: str, before: set[Path]
) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 413
    assert "TESSERA_MAX_REQUEST_BYTES" in problem["detail"]
    assert files_under(server.spool_dir) == []  # nothing spooled is left behind
    assert set(files_under(server.blob_dir)) == before  # and nothing was stored
    assert instances_in_study(server, study_uid) == 0
    assert httpx.get(f"{server.base_url}/health/check").status_code == 200  # and it still serves


def _instances_over_the_limit(study_uid: str) -> list[bytes]:
    pixels = os.urandom(512 * 1024)
    return [
        to_bytes(make_dataset(study_uid=study_uid, Rows=512, Columns=1024, PixelData=pixels))
        for _ in range(3)
    ]


def test_a_multipart_body_over_the_limit_is_refused_with_413(
    small_limit_server: Server, stored_before: set[Path]
) -> None:
    study_uid = generate_uid()
    body, content_type = multipart(_instances_over_the_limit(study_uid))
    assert len(body) > SMALL_LIMIT
    response = httpx.post(
        f"{small_limit_server.dicomweb_url}/studies", content=body, headers={"Content-Type": content_type}
    )
    _assert_refused_as_too_large(response, small_limit_server, study_uid, stored_before)


def test_a_streamed_body_over_the_limit_is_refused_with_413(
    small_limit_server: Server, stored_before: set[Path]
) -> None:
    """Without a Content-Length (chunked), the limit is found while the body is being spooled."""
    study_uid = generate_uid()
    pixels = os.urandom(512 * 1024)
    response = httpx.post(
        f"{small_limit_server.dicomweb_url}/studies",
        content=stream_of_instances(study_uid, 3, pixels, 512, 1024),
        headers={"Content-Type": CONTENT_TYPE},
    )
    _assert_refused_as_too_large(response, small_limit_server, study_uid, stored_before)


def test_a_single_instance_body_over_the_limit_is_refused_with_413(
    small_limit_server: Server, stored_before: set[Path]
) -> None:
    study_uid = generate_uid()
    pixels = os.urandom(2 * MiB)
    body = to_bytes(make_dataset(study_uid=study_uid, Rows=1024, Columns=2048, PixelData=pixels))
    response = httpx.post(
        f"{small_limit_server.dicomweb_url}/studies",
        content=body,
        headers={"Content-Type": "application/dicom"},
    )
    _assert_refused_as_too_large(response, small_limit_server, study_uid, stored_before)


def test_a_body_within_the_limit_is_stored(small_limit_server: Server) -> None:
    study_uid = generate_uid()
    body, content_type = multipart([to_bytes(make_dataset(study_uid=study_uid, rows=256, columns=256))])
    assert len(body) < SMALL_LIMIT
    response = httpx.post(
        f"{small_limit_server.dicomweb_url}/studies", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 200, response.text
    assert instances_in_study(small_limit_server, study_uid) == 1
