"""STOW-RS (PS3.18 10.5): POST /v2/studies[/{study}] stores Part-10 instances and says what happened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from domain.settings import Settings
from tests.conftest import dicom_file
from tests.dicom_factory import make_dataset, multipart, to_bytes

RETRIEVE_URL = "00081190"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_SEQUENCE = "00081199"
FAILURE_REASON = "00081197"
WARNING_REASON = "00081196"
REFERENCED_SOP_CLASS_UID = "00081150"
REFERENCED_SOP_INSTANCE_UID = "00081155"

PROCESSING_FAILURE = 272
CANNOT_UNDERSTAND = 43264
STUDY_UID_MISMATCH = 43265
INSTANCE_CONFLICT = 45070
DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 45063

Client = TestClient  # type: ignore[type-arg]


def store(client: Client, *instances: bytes, url: str = "/v2/studies") -> Any:
    body, content_type = multipart(list(instances))
    return client.post(url, content=body, headers={"Content-Type": content_type})


def referenced(response: Any) -> list[dict[str, Any]]:
    return response.json().get(REFERENCED_SOP_SEQUENCE, {}).get("Value", [])


def failed(response: Any) -> list[dict[str, Any]]:
    return response.json().get(FAILED_SOP_SEQUENCE, {}).get("Value", [])


def value(item: dict[str, Any], tag: str) -> Any:
    return item[tag]["Value"][0]


def failure_reasons(response: Any) -> list[int]:
    return [value(item, FAILURE_REASON) for item in failed(response)]


def blob_files(settings: Settings) -> list[Path]:
    return sorted(p for p in settings.blob_dir.rglob("*") if p.is_file())


def spooled_files(settings: Settings) -> list[Path]:
    return sorted(p for p in settings.spool_dir.rglob("*") if p.is_file())


def instances_found(client: Client, **query: str) -> list[dict[str, Any]]:
    response = client.get("/v2/instances", params=query)
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


# --- what is stored, and how the response says so ---------------------------------------------


def test_a_single_application_dicom_body_is_stored(client: Client) -> None:
    body = dicom_file("CT_small.dcm").read_bytes()
    response = client.post("/v2/studies", content=body, headers={"Content-Type": "application/dicom"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/dicom+json")
    (item,) = referenced(response)
    assert value(item, REFERENCED_SOP_INSTANCE_UID) == "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
    assert value(item, REFERENCED_SOP_CLASS_UID) == "1.2.840.10008.5.1.4.1.1.2"
    assert FAILED_SOP_SEQUENCE not in response.json()


def test_every_part_of_a_multipart_request_is_stored(client: Client) -> None:
    study_uid = "1.2.826.0.1.3680043.8.498.1001"
    first, second = make_dataset(study_uid=study_uid), make_dataset(study_uid=study_uid)
    response = store(client, to_bytes(first), to_bytes(second))
    assert response.status_code == 200, response.text
    uids = {value(item, REFERENCED_SOP_INSTANCE_UID) for item in referenced(response)}
    assert uids == {first.SOPInstanceUID, second.SOPInstanceUID}
    assert len(instances_found(client, StudyInstanceUID=study_uid)) == 2


def test_each_stored_instance_is_referenced_with_its_retrieve_url(client: Client) -> None:
    """PS3.18 10.5.3.2: ReferencedSOPSequence items carry the instance's RetrieveURL."""
    ds = make_dataset()
    response = store(client, to_bytes(ds))
    (item,) = referenced(response)
    base = str(client.base_url).rstrip("/")
    assert value(item, RETRIEVE_URL) == (
        f"{base}/v2/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    )
    assert value(response.json(), RETRIEVE_URL) == f"{base}/v2/studies/{ds.StudyInstanceUID}"
    assert client.get(value(item, RETRIEVE_URL).removeprefix(base)).status_code == 200


def test_instances_can_be_stored_into_the_study_named_in_the_url(client: Client) -> None:
    ds = make_dataset()
    response = store(client, to_bytes(ds), url=f"/v2/studies/{ds.StudyInstanceUID}")
    assert response.status_code == 200, response.text
    assert [value(i, REFERENCED_SOP_INSTANCE_UID) for i in referenced(response)] == [ds.SOPInstanceUID]


# --- failures --------------------------------------------------------------------------------


def test_an_instance_of_another_study_than_the_url_names_fails_with_43265(
    client: Client, settings: Settings
) -> None:
    url_study = "1.2.826.0.1.3680043.8.498.2002"
    ds = make_dataset(study_uid="1.2.826.0.1.3680043.8.498.2003")
    response = store(client, to_bytes(ds), url=f"/v2/studies/{url_study}")
    assert response.status_code == 409, response.text
    assert failure_reasons(response) == [STUDY_UID_MISMATCH]
    assert value(failed(response)[0], REFERENCED_SOP_INSTANCE_UID) == ds.SOPInstanceUID
    assert REFERENCED_SOP_SEQUENCE not in response.json()
    assert blob_files(settings) == []
    assert instances_found(client, SOPInstanceUID=ds.SOPInstanceUID) == []


def test_a_part_that_is_not_dicom_fails_with_43264(client: Client, settings: Settings) -> None:
    response = store(client, b"this is not a DICOM file, only text" * 10)
    assert response.status_code == 409, response.text
    assert failure_reasons(response) == [CANNOT_UNDERSTAND]
    assert blob_files(settings) == []


@pytest.mark.parametrize(
    "keyword", ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"]
)
def test_an_instance_without_a_required_uid_fails_with_43264(
    client: Client, settings: Settings, keyword: str
) -> None:
    response = store(client, to_bytes(make_dataset(**{keyword: None})))
    assert response.status_code == 409, response.text
    assert failure_reasons(response) == [CANNOT_UNDERSTAND]
    assert blob_files(settings) == []


@pytest.mark.parametrize(
    "keyword", ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"]
)
@pytest.mark.parametrize("bad_uid", ["1.2.abc", "1.2." + "3" * 70, ".1.2", "1..2"])
def test_an_instance_with_an_invalid_required_uid_fails_with_43264(
    client: Client, settings: Settings, keyword: str, bad_uid: str
) -> None:
    response = store(client, to_bytes(make_dataset(**{keyword: bad_uid})))
    assert response.status_code == 409, response.text
    assert failure_reasons(response) == [CANNOT_UNDERSTAND]
    assert blob_files(settings) == []


@pytest.mark.parametrize("where", ["in the pixel data", "in the header"])
def test_a_truncated_file_fails_with_43264(client: Client, settings: Settings, where: str) -> None:
    """A value shorter than its declared length (PS3.5 7.1) makes a file that is not DICOM."""
    if where == "in the pixel data":
        body = to_bytes(make_dataset(rows=16, columns=16))[:-100]
    else:
        body = to_bytes(make_dataset(PixelData=None, CommentsOnThePerformedProcedureStep="x" * 200))[:-100]
    response = store(client, body)
    assert response.status_code == 409, response.text
    assert failure_reasons(response) == [CANNOT_UNDERSTAND]
    assert blob_files(settings) == []


def test_other_content_under_a_stored_sop_instance_uid_fails_with_45070(
    client: Client, settings: Settings
) -> None:
    original = make_dataset(PatientID="ORIGINAL")
    assert store(client, to_bytes(original)).status_code == 200
    impostor = make_dataset(
        study_uid=original.StudyInstanceUID,
        series_uid=original.SeriesInstanceUID,
        sop_uid=original.SOPInstanceUID,
        PatientID="IMPOSTOR",
    )
    response = store(client, to_bytes(impostor))
    assert response.status_code == 409, response.text
    assert failure_reasons(response) == [INSTANCE_CONFLICT]
    assert value(failed(response)[0], REFERENCED_SOP_INSTANCE_UID) == original.SOPInstanceUID
    assert len(blob_files(settings)) == 1


def test_a_refused_instance_changes_nothing_in_the_index(client: Client) -> None:
    """A failed instance is not stored (PS3.18 10.5.3), so none of its attributes may be indexed."""
    original = make_dataset(PatientID="ORIGINAL", StudyDescription="original study")
    assert store(client, to_bytes(original)).status_code == 200
    impostor = make_dataset(
        study_uid=original.StudyInstanceUID,
        series_uid=original.SeriesInstanceUID,
        sop_uid=original.SOPInstanceUID,
        PatientID="IMPOSTOR",
        StudyDescription="impostor study",
    )
    assert failure_reasons(store(client, to_bytes(impostor))) == [INSTANCE_CONFLICT]
    assert instances_found(client, PatientID="IMPOSTOR") == []
    assert len(instances_found(client, PatientID="ORIGINAL")) == 1
    (study,) = client.get("/v2/studies", params={"StudyInstanceUID": original.StudyInstanceUID}).json()
    assert study["00081030"]["Value"] == ["original study"]


def test_some_stored_and_some_failed_is_202(client: Client, settings: Settings) -> None:
    """PS3.18 10.5.3: 202 Accepted when some instances were stored and others failed."""
    good = make_dataset()
    response = store(client, to_bytes(good), b"not dicom at all", to_bytes(make_dataset(SOPClassUID=None)))
    assert response.status_code == 202, response.text
    assert [value(i, REFERENCED_SOP_INSTANCE_UID) for i in referenced(response)] == [good.SOPInstanceUID]
    assert failure_reasons(response) == [CANNOT_UNDERSTAND, CANNOT_UNDERSTAND]
    assert len(blob_files(settings)) == 1


def test_a_request_in_which_nothing_is_stored_is_409(client: Client) -> None:
    response = store(client, b"garbage", to_bytes(make_dataset(StudyInstanceUID=None)))
    assert response.status_code == 409, response.text
    assert failure_reasons(response) == [CANNOT_UNDERSTAND, CANNOT_UNDERSTAND]


def test_a_failing_instance_leaves_nothing_half_stored(client: Client, settings: Settings) -> None:
    stored = make_dataset()
    assert store(client, to_bytes(stored)).status_code == 200
    conflicting = make_dataset(
        study_uid=stored.StudyInstanceUID,
        series_uid=stored.SeriesInstanceUID,
        sop_uid=stored.SOPInstanceUID,
        PatientID="OTHER",
    )
    good = make_dataset()
    response = store(
        client,
        to_bytes(good),
        to_bytes(conflicting),
        b"not dicom",
        to_bytes(make_dataset(SeriesInstanceUID=None)),
        url=f"/v2/studies/{good.StudyInstanceUID}",
    )
    assert response.status_code == 202, response.text
    assert sorted(failure_reasons(response)) == [CANNOT_UNDERSTAND, CANNOT_UNDERSTAND, STUDY_UID_MISMATCH]
    assert len(blob_files(settings)) == 2
    assert spooled_files(settings) == []


def test_a_conflicting_instance_leaves_no_extra_blob(client: Client, settings: Settings) -> None:
    stored = make_dataset()
    assert store(client, to_bytes(stored)).status_code == 200
    conflicting = make_dataset(
        study_uid=stored.StudyInstanceUID,
        series_uid=stored.SeriesInstanceUID,
        sop_uid=stored.SOPInstanceUID,
        PatientID="OTHER",
    )
    good = make_dataset(study_uid=stored.StudyInstanceUID)
    response = store(client, to_bytes(good), to_bytes(conflicting))
    assert response.status_code == 202, response.text
    assert failure_reasons(response) == [INSTANCE_CONFLICT]
    assert len(blob_files(settings)) == 2
    assert spooled_files(settings) == []


# --- idempotence, warnings, preamble ---------------------------------------------------------


def test_storing_the_same_instance_twice_is_idempotent(client: Client, settings: Settings) -> None:
    body = dicom_file("CT_small.dcm").read_bytes()
    for _ in range(2):
        response = client.post("/v2/studies", content=body, headers={"Content-Type": "application/dicom"})
        assert response.status_code == 200, response.text
        assert len(referenced(response)) == 1
    assert len(blob_files(settings)) == 1
    assert len(instances_found(client, PatientID="1CT1")) == 1
    (study,) = client.get("/v2/studies", params={"PatientID": "1CT1"}).json()
    assert study["00201208"]["Value"] == [1]  # NumberOfStudyRelatedInstances


def test_the_same_instance_twice_in_one_request_is_stored_once(client: Client, settings: Settings) -> None:
    body = to_bytes(make_dataset())
    response = store(client, body, body)
    assert response.status_code == 200, response.text
    assert len(blob_files(settings)) == 1
    assert spooled_files(settings) == []


@pytest.mark.parametrize("bad_date", ["2004.01.19", "notadate"])
def test_an_invalid_optional_attribute_is_stored_with_a_warning_and_not_indexed(
    client: Client, bad_date: str
) -> None:
    """Azure conformance: stored, WarningReason 45063, the invalid value left out of the index."""
    ds = make_dataset(StudyDate=bad_date, PatientID="BAD-DATE")
    response = store(client, to_bytes(ds))
    assert response.status_code == 202, response.text
    (item,) = referenced(response)
    assert value(item, WARNING_REASON) == DATA_SET_DOES_NOT_MATCH_SOP_CLASS
    assert FAILED_SOP_SEQUENCE not in response.json()
    assert [value(i, "00080018") for i in instances_found(client, PatientID="BAD-DATE")] == [
        ds.SOPInstanceUID
    ]
    assert instances_found(client, StudyDate="20040119") == []
    assert client.get("/v2/studies", params={"StudyDate": "20040101-20041231"}).json() == []


def test_the_preamble_is_zeroed_and_every_other_byte_kept(client: Client) -> None:
    """PS3.10 7.1: the preamble may hold anything; stored files get it zeroed."""
    original = dicom_file("CT_small.dcm").read_bytes()
    sent = b"TIFF" + bytes(range(124)) + original[128:]
    assert (
        client.post("/v2/studies", content=sent, headers={"Content-Type": "application/dicom"}).status_code
        == 200
    )
    url = (
        "/v2/studies/1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
        "/series/1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322"
        "/instances/1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
    )
    retrieved = client.get(url, headers={"Accept": "application/dicom; transfer-syntax=*"})
    assert retrieved.status_code == 200, retrieved.text
    assert retrieved.content[:128] == bytes(128)
    assert retrieved.content[128:] == original[128:]


def test_a_zeroed_preamble_makes_resending_with_another_preamble_idempotent(
    client: Client, settings: Settings
) -> None:
    body = to_bytes(make_dataset())
    for preamble in (bytes(128), b"\xff" * 128):
        response = client.post(
            "/v2/studies", content=preamble + body[128:], headers={"Content-Type": "application/dicom"}
        )
        assert response.status_code == 200, response.text
    assert len(blob_files(settings)) == 1


# --- the request itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "text/plain",
        'multipart/related; type="application/json"; boundary=tessera-test',
        "multipart/form-data; boundary=tessera-test",
    ],
)
def test_a_body_of_another_media_type_is_415(client: Client, settings: Settings, content_type: str) -> None:
    body, _ = multipart([to_bytes(make_dataset())])
    response = client.post("/v2/studies", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 415, response.text
    assert blob_files(settings) == []


def test_a_multipart_body_without_its_closing_boundary_is_400(client: Client, settings: Settings) -> None:
    body, content_type = multipart([to_bytes(make_dataset())])
    cut = body[: body.rindex(b"--tessera-test--")]
    response = client.post("/v2/studies", content=cut, headers={"Content-Type": content_type})
    assert response.status_code == 400, response.text
    assert blob_files(settings) == []
    assert spooled_files(settings) == []


def test_a_multipart_content_type_without_a_boundary_is_400(client: Client) -> None:
    body, _ = multipart([to_bytes(make_dataset())])
    response = client.post(
        "/v2/studies", content=body, headers={"Content-Type": 'multipart/related; type="application/dicom"'}
    )
    assert response.status_code == 400, response.text


def test_a_malformed_study_uid_in_the_url_is_400(client: Client) -> None:
    response = store(client, to_bytes(make_dataset()), url="/v2/studies/not-a-uid")
    assert response.status_code == 400, response.text


def test_a_body_over_the_configured_maximum_is_413(settings: Settings) -> None:
    small = settings.with_(max_request_bytes=1000)
    body, content_type = multipart([to_bytes(make_dataset()), to_bytes(make_dataset())])
    assert len(body) > 1000
    with TestClient(create_app(small), base_url="http://testserver.local") as client:
        response = client.post("/v2/studies", content=body, headers={"Content-Type": content_type})
        assert response.status_code == 413, response.text
        assert instances_found(client) == []
    assert blob_files(small) == []
    assert spooled_files(small) == []


def test_a_body_within_the_configured_maximum_is_stored(settings: Settings) -> None:
    body, content_type = multipart([to_bytes(make_dataset())])
    with TestClient(
        create_app(settings.with_(max_request_bytes=len(body))), base_url="http://testserver.local"
    ) as client:
        response = client.post("/v2/studies", content=body, headers={"Content-Type": content_type})
        assert response.status_code == 200, response.text
