"""DELETE of a study, series or instance (Azure's extension to PS3.18): 204, or 404.

What the URL names leaves the index and the blob store; nothing else does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from domain.settings import Settings
from tests.dicom_factory import make_dataset, multipart, to_bytes

Client = TestClient  # type: ignore[type-arg]

STUDY = "1.2.826.0.1.3680043.8.498.4001"
OTHER_STUDY = "1.2.826.0.1.3680043.8.498.4002"
SERIES_A = "1.2.826.0.1.3680043.8.498.4001.1"
SERIES_B = "1.2.826.0.1.3680043.8.498.4001.2"
SERIES_OTHER = "1.2.826.0.1.3680043.8.498.4002.1"
A1, A2 = "1.2.826.0.1.3680043.8.498.4001.1.1", "1.2.826.0.1.3680043.8.498.4001.1.2"
B1 = "1.2.826.0.1.3680043.8.498.4001.2.1"
OTHER1 = "1.2.826.0.1.3680043.8.498.4002.1.1"
MISSING = "1.2.826.0.1.3680043.8.498.9999"

NUMBER_OF_STUDY_RELATED_SERIES = "00201206"
NUMBER_OF_STUDY_RELATED_INSTANCES = "00201208"
NUMBER_OF_SERIES_RELATED_INSTANCES = "00201209"
MODALITIES_IN_STUDY = "00080061"


@pytest.fixture
def stored(client: Client, settings: Settings) -> None:
    """Two studies: STUDY with series A (two CT instances) and B (one MR), OTHER_STUDY with one."""
    datasets = [
        make_dataset(study_uid=STUDY, series_uid=SERIES_A, sop_uid=A1, Modality="CT", PatientID="P1"),
        make_dataset(study_uid=STUDY, series_uid=SERIES_A, sop_uid=A2, Modality="CT", PatientID="P1"),
        make_dataset(study_uid=STUDY, series_uid=SERIES_B, sop_uid=B1, Modality="MR", PatientID="P1"),
        make_dataset(study_uid=OTHER_STUDY, series_uid=SERIES_OTHER, sop_uid=OTHER1, PatientID="P2"),
    ]
    body, content_type = multipart([to_bytes(ds) for ds in datasets])
    response = client.post("/v2/studies", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    assert len(blob_files(settings)) == 4


def blob_files(settings: Settings) -> list[Path]:
    return sorted(p for p in settings.blob_dir.rglob("*") if p.is_file())


def found(client: Client, path: str, **query: str) -> list[dict[str, Any]]:
    response = client.get(path, params=query)
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def sop_uids(client: Client) -> set[str]:
    return {i["00080018"]["Value"][0] for i in found(client, "/v2/instances")}


def study(client: Client, study_uid: str) -> dict[str, Any]:
    (answer,) = found(client, "/v2/studies", StudyInstanceUID=study_uid)
    return answer


def test_deleting_a_study_removes_its_instances_and_nothing_else(
    client: Client, settings: Settings, stored: None
) -> None:
    assert client.delete(f"/v2/studies/{STUDY}").status_code == 204
    assert found(client, "/v2/studies", StudyInstanceUID=STUDY) == []
    assert found(client, "/v2/series", SeriesInstanceUID=SERIES_A) == []
    assert sop_uids(client) == {OTHER1}
    assert len(blob_files(settings)) == 1
    assert client.get(f"/v2/studies/{OTHER_STUDY}/metadata").status_code == 200


def test_deleting_a_series_removes_it_and_keeps_the_rest_of_the_study(
    client: Client, settings: Settings, stored: None
) -> None:
    assert client.delete(f"/v2/studies/{STUDY}/series/{SERIES_A}").status_code == 204
    assert found(client, f"/v2/studies/{STUDY}/series", SeriesInstanceUID=SERIES_A) == []
    assert sop_uids(client) == {B1, OTHER1}
    assert len(blob_files(settings)) == 2
    summary = study(client, STUDY)
    assert summary[NUMBER_OF_STUDY_RELATED_SERIES]["Value"] == [1]
    assert summary[NUMBER_OF_STUDY_RELATED_INSTANCES]["Value"] == [1]
    assert summary[MODALITIES_IN_STUDY]["Value"] == ["MR"]


def test_deleting_one_instance_of_two_updates_the_counts(
    client: Client, settings: Settings, stored: None
) -> None:
    assert study(client, STUDY)[NUMBER_OF_STUDY_RELATED_INSTANCES]["Value"] == [3]
    assert client.delete(f"/v2/studies/{STUDY}/series/{SERIES_A}/instances/{A1}").status_code == 204
    assert sop_uids(client) == {A2, B1, OTHER1}
    assert len(blob_files(settings)) == 3
    assert study(client, STUDY)[NUMBER_OF_STUDY_RELATED_INSTANCES]["Value"] == [2]
    (series,) = found(client, "/v2/series", SeriesInstanceUID=SERIES_A)
    assert series[NUMBER_OF_SERIES_RELATED_INSTANCES]["Value"] == [1]
    assert study(client, OTHER_STUDY)[NUMBER_OF_STUDY_RELATED_INSTANCES]["Value"] == [1]


def test_deleting_the_last_instance_of_a_series_removes_the_series(
    client: Client, settings: Settings, stored: None
) -> None:
    assert client.delete(f"/v2/studies/{STUDY}/series/{SERIES_B}/instances/{B1}").status_code == 204
    assert found(client, "/v2/series", SeriesInstanceUID=SERIES_B) == []
    summary = study(client, STUDY)
    assert summary[NUMBER_OF_STUDY_RELATED_SERIES]["Value"] == [1]
    assert summary[MODALITIES_IN_STUDY]["Value"] == ["CT"]


def test_a_deleted_instance_can_no_longer_be_retrieved(client: Client, stored: None) -> None:
    url = f"/v2/studies/{STUDY}/series/{SERIES_A}/instances/{A1}"
    assert client.delete(url).status_code == 204
    assert client.get(url, headers={"Accept": "application/dicom; transfer-syntax=*"}).status_code == 404
    assert client.get(url + "/metadata").status_code == 404
    assert client.get(f"/v2/studies/{STUDY}/series/{SERIES_A}/instances/{A2}/metadata").status_code == 200


def test_a_deleted_instance_can_be_stored_again(client: Client, settings: Settings, stored: None) -> None:
    assert client.delete(f"/v2/studies/{OTHER_STUDY}").status_code == 204
    again = make_dataset(study_uid=OTHER_STUDY, series_uid=SERIES_OTHER, sop_uid=OTHER1, PatientID="P3")
    body, content_type = multipart([to_bytes(again)])
    response = client.post("/v2/studies", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    assert study(client, OTHER_STUDY)[NUMBER_OF_STUDY_RELATED_INSTANCES]["Value"] == [1]
    assert len(blob_files(settings)) == 4


@pytest.mark.parametrize(
    "path",
    [
        f"/v2/studies/{MISSING}",
        f"/v2/studies/{STUDY}/series/{MISSING}",
        f"/v2/studies/{OTHER_STUDY}/series/{SERIES_A}",
        f"/v2/studies/{STUDY}/series/{SERIES_A}/instances/{MISSING}",
        f"/v2/studies/{STUDY}/series/{SERIES_B}/instances/{A1}",
    ],
)
def test_deleting_what_is_not_stored_is_404_and_changes_nothing(
    client: Client, settings: Settings, stored: None, path: str
) -> None:
    assert client.delete(path).status_code == 404
    assert sop_uids(client) == {A1, A2, B1, OTHER1}
    assert len(blob_files(settings)) == 4


def test_deleting_twice_is_404_the_second_time(client: Client, stored: None) -> None:
    assert client.delete(f"/v2/studies/{STUDY}/series/{SERIES_B}").status_code == 204
    assert client.delete(f"/v2/studies/{STUDY}/series/{SERIES_B}").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/v2/studies/not-a-uid",
        f"/v2/studies/{STUDY}/series/1..2",
        f"/v2/studies/{STUDY}/series/{SERIES_A}/instances/x",
    ],
)
def test_deleting_with_a_malformed_uid_is_400(
    client: Client, settings: Settings, stored: None, path: str
) -> None:
    assert client.delete(path).status_code == 400
    assert len(blob_files(settings)) == 4
