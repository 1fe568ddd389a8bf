"""Several server processes share one index: concurrent stores and deletes into the same
studies leave every count and ModalitiesInStudy exact, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.uid import generate_uid

from tests.dicom_factory import make_dataset, multipart, to_bytes
from tests.server import Server, postgres_database, running_server

STUDIES = [generate_uid() for _ in range(2)]
SERIES = {study: [(generate_uid(), modality) for modality in ("CT", "MR", "US")] for study in STUDIES}


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    database = (
        nullcontext(None)
        if request.param == "sqlite"
        else postgres_database(f"tessera_workers_{os.getpid()}")
    )
    with database as url, running_server(tmp_path, database_url=url, env={"TESSERA_WORKERS": "2"}) as srv:
        yield srv


def batch(client_number: int, request_number: int) -> list[Any]:
    """Three instances, spread over both studies and all their series."""
    datasets = []
    for i in range(3):
        study = STUDIES[(client_number + i) % 2]
        series_uid, modality = SERIES[study][(request_number + i) % 3]
        datasets.append(make_dataset(study_uid=study, series_uid=series_uid, Modality=modality))
    return datasets


def store(url: str, client_number: int) -> list[tuple[str, str, str]]:
    stored = []
    with httpx.Client(timeout=60) as http:
        for request_number in range(12):
            datasets = batch(client_number, request_number)
            body, content_type = multipart([to_bytes(ds) for ds in datasets])
            response = http.post(f"{url}/studies", content=body, headers={"Content-Type": content_type})
            assert response.status_code == 200, response.text
            stored += [(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID) for ds in datasets]
            if request_number % 4 == 3:  # and delete one of them again, racing the others
                study, series, sop = stored.pop()
                gone = http.delete(f"{url}/studies/{study}/series/{series}/instances/{sop}")
                assert gone.status_code == 204, gone.text
    return stored


def value(answer: dict[str, Any], tag: str) -> Any:
    return answer[tag].get("Value")


def test_concurrent_writers_in_several_processes_keep_the_summaries_exact(server: Server) -> None:
    with ThreadPoolExecutor(4) as pool:
        stored = [row for rows in pool.map(lambda n: store(server.dicomweb_url, n), range(4)) for row in rows]
    http = httpx.Client(base_url=server.dicomweb_url, timeout=60)
    for study in STUDIES:
        mine = [row for row in stored if row[0] == study]
        instances = http.get(f"/studies/{study}/instances").json()
        assert sorted(a["00080018"]["Value"][0] for a in instances) == sorted(sop for _, _, sop in mine)
        (summary,) = http.get("/studies", params={"StudyInstanceUID": study}).json()
        assert value(summary, "00201208") == [len(mine)]  # NumberOfStudyRelatedInstances
        holding = {series_uid for _, series_uid, _ in mine}
        series = http.get(f"/studies/{study}/series").json()
        assert sorted(a["0020000E"]["Value"][0] for a in series) == sorted(holding)
        assert value(summary, "00201206") == [len(holding)]  # NumberOfStudyRelatedSeries
        expected_modalities = sorted({m for uid, m in SERIES[study] if uid in holding})
        assert value(summary, "00080061") == expected_modalities  # ModalitiesInStudy
        for answer in series:
            series_uid = answer["0020000E"]["Value"][0]
            count = sum(1 for _, s, _ in mine if s == series_uid)
            assert value(answer, "00201209") == [count]  # NumberOfSeriesRelatedInstances
