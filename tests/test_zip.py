"""`Accept: application/zip` on study and series retrieval: a ZIP of the stored Part-10 files.

One member per instance, named `{SeriesInstanceUID}/{SOPInstanceUID}.dcm`, holding the bytes as
stored (the preamble zeroed, PS3.10 7.1); the archive is intact (`testzip()`). A series ZIP holds
that series only; a single instance is not offered as a ZIP (406). A large study streams.
"""

from __future__ import annotations

import os
import zipfile
from io import BytesIO
from typing import Any

import pydicom
import pytest
from litestar.testing import TestClient
from pydicom.uid import RLELossless, generate_uid

from tests.dicom_factory import make_dataset, multipart, to_bytes

Client = TestClient  # type: ignore[type-arg]

ZIP = "application/zip"


def as_stored(part10: bytes) -> bytes:
    return bytes(128) + part10[128:]


def store(client: Client, datasets: list[pydicom.Dataset]) -> dict[str, bytes]:
    """Stored in one request; by member name -> the bytes the archive holds."""
    files = {f"{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm": to_bytes(ds) for ds in datasets}
    body, content_type = multipart(list(files.values()))
    response = client.post("/v2/studies", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    return {name: as_stored(data) for name, data in files.items()}


def members(response: Any) -> dict[str, bytes]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0].strip() == ZIP
    with zipfile.ZipFile(BytesIO(response.content)) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert len(names) == len(set(names)), "a member name repeats"
        return {name: archive.read(name) for name in names}


@pytest.fixture
def study(client: Client) -> tuple[str, str, str, dict[str, bytes]]:
    """Study (series A: three instances, one RLE; series B: one), and another study beside it."""
    study_uid, series_a, series_b = generate_uid(), generate_uid(), generate_uid()
    datasets = [
        make_dataset(study_uid=study_uid, series_uid=series_a, InstanceNumber=1),
        make_dataset(study_uid=study_uid, series_uid=series_a, InstanceNumber=2, rows=16, columns=16),
        make_dataset(study_uid=study_uid, series_uid=series_a, InstanceNumber=3, rows=32, columns=32),
        make_dataset(study_uid=study_uid, series_uid=series_b, Modality="SR", rows=4, columns=4),
    ]
    datasets[2].compress(RLELossless, generate_instance_uid=False)
    stored = store(client, datasets)
    store(client, [make_dataset()])  # another study: never in this study's ZIP
    return study_uid, series_a, series_b, stored


def test_a_study_zip_holds_every_stored_file_byte_for_byte(
    client: Client, study: tuple[str, str, str, dict[str, bytes]]
) -> None:
    study_uid, _, _, stored = study
    response = client.get(f"/v2/studies/{study_uid}", headers={"Accept": ZIP})
    assert members(response) == stored


def test_a_series_zip_holds_only_that_series(
    client: Client, study: tuple[str, str, str, dict[str, bytes]]
) -> None:
    study_uid, series_a, series_b, stored = study
    for series, count in ((series_a, 3), (series_b, 1)):
        response = client.get(f"/v2/studies/{study_uid}/series/{series}", headers={"Accept": ZIP})
        expected = {name: data for name, data in stored.items() if name.startswith(f"{series}/")}
        assert len(expected) == count
        assert members(response) == expected


def test_zip_is_chosen_among_alternatives_by_q(
    client: Client, study: tuple[str, str, str, dict[str, bytes]]
) -> None:
    study_uid, _, _, stored = study
    accept = f'multipart/related; type="application/dicom"; transfer-syntax=*; q=0.5, {ZIP}'
    assert members(client.get(f"/v2/studies/{study_uid}", headers={"Accept": accept})) == stored
    accept = f'{ZIP}; q=0.2, multipart/related; type="application/dicom"; transfer-syntax=*'
    response = client.get(f"/v2/studies/{study_uid}", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("multipart/related")


def test_a_single_instance_is_not_offered_as_a_zip(
    client: Client, study: tuple[str, str, str, dict[str, bytes]]
) -> None:
    study_uid, _, _, stored = study
    name = next(iter(stored))
    series, sop = name.removesuffix(".dcm").split("/")
    response = client.get(f"/v2/studies/{study_uid}/series/{series}/instances/{sop}", headers={"Accept": ZIP})
    assert response.status_code == 406, response.text
    assert response.json()["detail"]


def test_a_zip_of_a_study_not_stored_is_a_404(client: Client) -> None:
    response = client.get(f"/v2/studies/{generate_uid()}", headers={"Accept": ZIP})
    assert response.status_code == 404, response.text


def test_a_large_study_streams_as_a_correct_zip(client: Client) -> None:
    """30 instances of 1 MB each, stored in three requests; the ZIP holds each byte for byte."""
    study_uid = generate_uid()
    series = [generate_uid(), generate_uid()]
    stored: dict[str, bytes] = {}
    for batch in range(3):
        datasets = [
            make_dataset(
                study_uid=study_uid,
                series_uid=series[number % 2],
                rows=1024,
                columns=1024,
                InstanceNumber=batch * 10 + number + 1,
                PixelData=os.urandom(1024 * 1024),
            )
            for number in range(10)
        ]
        stored |= store(client, datasets)
    response = client.get(f"/v2/studies/{study_uid}", headers={"Accept": ZIP})
    got = members(response)
    assert len(got) == 30
    assert got == stored
