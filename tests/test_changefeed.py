"""The change feed: one entry per create and delete, written with the change, in commit order,
and readers paging by sequence see every entry exactly once even under concurrent writers."""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from tests.dicom_factory import make_dataset, multipart, to_bytes
from tests.server import Server, postgres_database, running_server

Client = TestClient  # type: ignore[type-arg]


def store(client: Any, *datasets: Any) -> Any:
    body, content_type = multipart([to_bytes(ds) for ds in datasets])
    return client.post("/v2/studies", content=body, headers={"Content-Type": content_type})


def feed(client: Any, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/v2/changefeed", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_each_stored_and_deleted_instance_has_one_entry_in_order(client: Client) -> None:
    first, second = make_dataset(), make_dataset()
    assert store(client, first, second).status_code == 200
    assert client.delete(f"/v2/studies/{first.StudyInstanceUID}").status_code == 204
    entries = feed(client)
    assert [(e["Action"], e["SOPInstanceUID"]) for e in entries] == [
        ("Create", first.SOPInstanceUID),
        ("Create", second.SOPInstanceUID),
        ("Delete", first.SOPInstanceUID),
    ]
    assert [e["Sequence"] for e in entries] == sorted({e["Sequence"] for e in entries})
    assert [e["State"] for e in entries] == ["deleted", "current", "deleted"]
    stamps = [dt.datetime.fromisoformat(e["Timestamp"]) for e in entries]
    assert stamps == sorted(stamps) and all(s.tzinfo is not None for s in stamps)


def test_no_entry_without_its_change(client: Client) -> None:
    ds = make_dataset()
    store(client, ds)
    before = feed(client)
    assert store(client, ds).status_code == 200  # the same bytes again: nothing new is stored
    conflicting = make_dataset(sop_uid=ds.SOPInstanceUID, study_uid=ds.StudyInstanceUID, PatientID="OTHER")
    assert store(client, conflicting).status_code == 409
    client.post("/v2/studies", content=b"not dicom", headers={"Content-Type": "application/dicom"})
    assert client.delete("/v2/studies/1.2.3.4.5").status_code == 404
    assert feed(client) == before


def test_an_entry_carries_the_metadata_of_its_version_while_it_exists(client: Client) -> None:
    ds = make_dataset(PatientID="FIRST")
    store(client, ds)
    (created,) = feed(client)
    assert created["State"] == "current" and created["Metadata"]["00100020"]["Value"] == ["FIRST"]
    assert created["Metadata"]["7FE00010"]["BulkDataURI"].startswith("http://testserver.local/v2/studies/")
    client.delete(f"/v2/studies/{ds.StudyInstanceUID}")
    store(client, ds)
    created, deleted, recreated = feed(client)
    assert (created["State"], "Metadata" in created) == ("replaced", False)
    assert (deleted["State"], "Metadata" in deleted) == ("replaced", False)
    assert recreated["State"] == "current" and "Metadata" in recreated
    assert "Metadata" not in feed(client, includeMetadata="false")[-1]


def test_paging_by_sequence_and_by_time_window(client: Client) -> None:
    for _ in range(5):
        store(client, make_dataset())
    entries = feed(client)
    sequences = [e["Sequence"] for e in entries]
    assert [e["Sequence"] for e in feed(client, offset=sequences[1], limit=2)] == sequences[2:4]
    assert feed(client, offset=sequences[-1]) == []
    window = {"startTime": entries[1]["Timestamp"], "endTime": "2999-01-01T00:00:00+01:00"}
    assert [e["Sequence"] for e in feed(client, **window)] == sequences[1:]
    assert [e["Sequence"] for e in feed(client, offset=1, limit=2, **window)] == sequences[2:4]
    latest = client.get("/v2/changefeed/latest").json()
    assert latest["Sequence"] == sequences[-1]


def test_an_empty_feed_has_no_latest_entry(client: Client) -> None:
    assert client.get("/v2/changefeed").json() == []
    assert client.get("/v2/changefeed/latest").status_code == 204


@pytest.mark.parametrize(
    ("query", "word"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("startTime=2024-01-01T00:00:00", "time zone"),
        ("endTime=yesterday", "endTime"),
        ("startTime=2024-02-01T00:00:00Z&endTime=2024-01-01T00:00:00Z", "later"),
        ("includeMetadata=maybe", "includeMetadata"),
    ],
)
def test_malformed_parameters_are_400_naming_the_problem(client: Client, query: str, word: str) -> None:
    response = client.get(f"/v2/changefeed?{query}")
    assert response.status_code == 400
    assert word in response.json()["detail"]


# --- several writer processes, one reader paging by sequence ---------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def two_workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    database = (
        nullcontext(None) if request.param == "sqlite" else postgres_database(f"tessera_feed_{os.getpid()}")
    )
    with database as url, running_server(tmp_path, database_url=url, env={"TESSERA_WORKERS": "2"}) as srv:
        yield srv


def write(url: str, seed: int) -> tuple[int, int]:
    """Store batches and delete some again; returns (instances stored, instances deleted)."""
    stored = deleted = 0
    with httpx.Client(base_url=url, timeout=60) as http:
        for round_ in range(15):
            batch = [make_dataset() for _ in range(1 + (seed + round_) % 3)]
            assert store(http, *batch).status_code == 200
            stored += len(batch)
            if round_ % 3 == 2:
                victim = batch[0]
                assert http.delete(f"/v2/studies/{victim.StudyInstanceUID}").status_code == 204
                deleted += 1
    return stored, deleted


def test_a_reader_paging_by_sequence_misses_nothing_under_concurrent_writers(two_workers: Server) -> None:
    url = two_workers.base_url
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while True:
                finished = done.is_set()  # read once more after the writers are done
                page = http.get("/v2/changefeed", params={"offset": seen[-1] if seen else 0, "limit": 7})
                seen.extend(e["Sequence"] for e in page.json())
                if finished and not page.json():
                    return

    reader = threading.Thread(target=read)
    reader.start()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda n: write(url, n), range(4)))
    done.set()
    reader.join(timeout=120)
    everything = httpx.get(f"{url}/v2/changefeed", params={"limit": 200, "includeMetadata": "false"}).json()
    while len(everything) % 200 == 0 and everything:
        more = httpx.get(f"{url}/v2/changefeed", params={"offset": everything[-1]["Sequence"], "limit": 200})
        if not more.json():
            break
        everything += more.json()
    recorded = [e["Sequence"] for e in everything]
    assert seen == recorded, "the reader's pages differ from the feed as recorded"
    assert len(set(seen)) == len(seen) and seen == sorted(seen)
    stored, deleted = (sum(r[i] for r in results) for i in (0, 1))
    actions = [e["Action"] for e in everything]
    assert (actions.count("Create"), actions.count("Delete")) == (stored, deleted)
