"""WADO-RS (PS3.18 10.4): studies, series and instances as stored Part-10 files, and their metadata."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import pydicom
import pytest
from litestar.testing import TestClient

from tests.conftest import dicom_file
from tests.dicom_factory import make_dataset, multipart, parse_multipart, to_bytes

Client = TestClient  # type: ignore[type-arg]

AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'
STUDY = "1.2.826.0.1.3680043.8.498.3001"
SERIES_A = "1.2.826.0.1.3680043.8.498.3001.1"
SERIES_B = "1.2.826.0.1.3680043.8.498.3001.2"
MISSING = "1.2.826.0.1.3680043.8.498.9999"


@pytest.fixture
def stored(client: Client) -> dict[str, bytes]:
    """One study of two series (two instances, then one), by SOPInstanceUID -> Part-10 bytes."""
    datasets = [
        make_dataset(study_uid=STUDY, series_uid=SERIES_A, InstanceNumber=1),
        make_dataset(study_uid=STUDY, series_uid=SERIES_A, InstanceNumber=2),
        make_dataset(study_uid=STUDY, series_uid=SERIES_B, Modality="SR", rows=4, columns=4),
    ]
    files = {ds.SOPInstanceUID: to_bytes(ds) for ds in datasets}
    body, content_type = multipart(list(files.values()))
    response = client.post("/v2/studies", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    return files


def instance_url(sop_uid: str, series_uid: str = SERIES_A, study_uid: str = STUDY) -> str:
    return f"/v2/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"


def sop_uid_of(part: bytes) -> str:
    return str(pydicom.dcmread(BytesIO(part), stop_before_pixels=True).SOPInstanceUID)


def retrieved_parts(response: Any) -> dict[str, bytes]:
    assert response.status_code == 200, response.text
    content_type = response.headers["content-type"]
    assert content_type.startswith("multipart/related")
    assert 'type="application/dicom"' in content_type
    parts = parse_multipart(response.content, content_type)
    for headers, _ in parts:
        assert headers["content-type"].startswith("application/dicom")
    return {sop_uid_of(content): content for _, content in parts}


# --- Part-10 files as stored -----------------------------------------------------------------


def test_a_study_is_retrieved_as_multipart_with_every_instance_byte_identical(
    client: Client, stored: dict[str, bytes]
) -> None:
    parts = retrieved_parts(client.get(f"/v2/studies/{STUDY}", headers={"Accept": AS_STORED}))
    assert parts == stored


def test_a_series_is_retrieved_with_only_its_own_instances(client: Client, stored: dict[str, bytes]) -> None:
    parts = retrieved_parts(
        client.get(f"/v2/studies/{STUDY}/series/{SERIES_A}", headers={"Accept": AS_STORED})
    )
    assert len(parts) == 2
    assert parts == {uid: body for uid, body in stored.items() if uid in parts}


def test_an_instance_is_retrieved_as_multipart(client: Client, stored: dict[str, bytes]) -> None:
    sop_uid = next(iter(stored))
    parts = retrieved_parts(client.get(instance_url(sop_uid), headers={"Accept": AS_STORED}))
    assert parts == {sop_uid: stored[sop_uid]}


def test_each_part_names_its_transfer_syntax(client: Client, stored: dict[str, bytes]) -> None:
    """PS3.18 8.7.3.5.2: parts carry the transfer-syntax parameter of their content."""
    response = client.get(f"/v2/studies/{STUDY}", headers={"Accept": AS_STORED})
    for headers, _ in parse_multipart(response.content, response.headers["content-type"]):
        assert "transfer-syntax=1.2.840.10008.1.2.1" in headers["content-type"].replace(" ", "")


def test_a_single_instance_is_retrieved_as_application_dicom(
    client: Client, stored: dict[str, bytes]
) -> None:
    sop_uid = next(iter(stored))
    for accept in ("application/dicom", "application/dicom; transfer-syntax=*"):
        response = client.get(instance_url(sop_uid), headers={"Accept": accept})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/dicom")
        assert response.content == stored[sop_uid]


def test_a_pydicom_file_comes_back_as_sent_but_for_the_zeroed_preamble(client: Client) -> None:
    original = dicom_file("MR_small_bigendian.dcm").read_bytes()
    sent = b"\x7f" * 128 + original[128:]
    assert (
        client.post("/v2/studies", content=sent, headers={"Content-Type": "application/dicom"}).status_code
        == 200
    )
    ds = pydicom.dcmread(dicom_file("MR_small_bigendian.dcm"), stop_before_pixels=True)
    url = instance_url(ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID)
    ((_, body),) = parse_multipart(
        (response := client.get(url, headers={"Accept": AS_STORED})).content, response.headers["content-type"]
    )
    assert body[:128] == bytes(128)
    assert body[128:] == original[128:]


# --- metadata --------------------------------------------------------------------------------


def metadata(client: Client, url: str) -> list[dict[str, Any]]:
    response = client.get(url, headers={"Accept": "application/dicom+json"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/dicom+json")
    result: list[dict[str, Any]] = response.json()
    return result


def test_study_metadata_has_one_dicom_json_object_per_instance(
    client: Client, stored: dict[str, bytes]
) -> None:
    documents = metadata(client, f"/v2/studies/{STUDY}/metadata")
    assert {d["00080018"]["Value"][0] for d in documents} == set(stored)
    for document in documents:
        pixel_data = document.pop("7FE00010")  # PS3.18 F.2.6: pixels by reference, never inline
        assert set(pixel_data) == {"vr", "BulkDataURI"}
        assert pixel_data["BulkDataURI"].endswith(
            f"/instances/{document['00080018']['Value'][0]}/bulkdata/7FE00010"
        )
        ds = pydicom.Dataset.from_json(document)
        assert ds.StudyInstanceUID == STUDY
        assert ds.PatientName == "Test^Patient"


def test_series_metadata_has_only_its_own_instances(client: Client, stored: dict[str, bytes]) -> None:
    documents = metadata(client, f"/v2/studies/{STUDY}/series/{SERIES_B}/metadata")
    (document,) = documents
    assert document["0020000E"]["Value"] == [SERIES_B]
    assert document["00080060"]["Value"] == ["SR"]


def test_instance_metadata_matches_the_stored_header(client: Client, stored: dict[str, bytes]) -> None:
    sop_uid = next(iter(stored))
    (document,) = metadata(client, instance_url(sop_uid) + "/metadata")
    ds = pydicom.Dataset.from_json(document)
    assert ds.SOPInstanceUID == sop_uid
    assert ds.Rows == 8
    assert ds.Columns == 8
    assert ds.InstanceNumber == 1
    assert ds.StudyDate == "20240101"


def test_binary_values_up_to_1024_bytes_are_inline_in_the_metadata(client: Client) -> None:
    """PS3.18 F.2.7: a binary value is given inline or by BulkDataURI, never silently left out."""
    ds = make_dataset()
    ds.add_new(0x00091010, "LO", "TESSERA")  # private creator
    ds.add_new(0x00091011, "OB", bytes(range(256)) * 3 + bytes(200))  # 968 bytes
    body, content_type = multipart([to_bytes(ds)])
    assert client.post("/v2/studies", content=body, headers={"Content-Type": content_type}).status_code == 200
    url = instance_url(ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID) + "/metadata"
    (document,) = metadata(client, url)
    assert pydicom.Dataset.from_json(document)[0x00091011].value == bytes(range(256)) * 3 + bytes(200)


def test_metadata_without_an_accept_header_is_dicom_json(client: Client, stored: dict[str, bytes]) -> None:
    response = client.get(f"/v2/studies/{STUDY}/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/dicom+json")


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"/v2/studies/{MISSING}",
        f"/v2/studies/{STUDY}/series/{MISSING}",
        f"/v2/studies/{STUDY}/series/{SERIES_A}/instances/{MISSING}",
        f"/v2/studies/{MISSING}/series/{SERIES_A}",
        f"/v2/studies/{MISSING}/metadata",
        f"/v2/studies/{STUDY}/series/{MISSING}/metadata",
        f"/v2/studies/{STUDY}/series/{SERIES_A}/instances/{MISSING}/metadata",
    ],
)
def test_what_is_not_stored_is_404(client: Client, stored: dict[str, bytes], path: str) -> None:
    response = client.get(path, headers={"Accept": AS_STORED if not path.endswith("metadata") else "*/*"})
    assert response.status_code == 404, response.text


def test_an_instance_addressed_under_another_series_is_404(client: Client, stored: dict[str, bytes]) -> None:
    sop_uid = next(iter(stored))  # it is in SERIES_A
    assert client.get(instance_url(sop_uid, SERIES_B), headers={"Accept": AS_STORED}).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/v2/studies/not-a-uid",
        "/v2/studies/1.2.abc/metadata",
        f"/v2/studies/{STUDY}/series/1..2",
        f"/v2/studies/{STUDY}/series/{SERIES_A}/instances/{'1.' * 40}1",
        f"/v2/studies/{STUDY}/series/{SERIES_A}/instances/x/metadata",
    ],
)
def test_a_malformed_uid_in_the_path_is_400(client: Client, stored: dict[str, bytes], path: str) -> None:
    response = client.get(path, headers={"Accept": AS_STORED if not path.endswith("metadata") else "*/*"})
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    "accept",
    [
        'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50',
        "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50",
        "image/png",
        "application/pdf",
    ],
)
def test_an_instance_in_a_representation_that_cannot_be_served_is_406(
    client: Client, stored: dict[str, bytes], accept: str
) -> None:
    response = client.get(instance_url(next(iter(stored))), headers={"Accept": accept})
    assert response.status_code == 406, response.text


def test_a_study_in_a_transfer_syntax_it_is_not_stored_in_is_406(
    client: Client, stored: dict[str, bytes]
) -> None:
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'
    assert client.get(f"/v2/studies/{STUDY}", headers={"Accept": accept}).status_code == 406


def test_metadata_in_another_media_type_than_dicom_json_is_406(
    client: Client, stored: dict[str, bytes]
) -> None:
    response = client.get(f"/v2/studies/{STUDY}/metadata", headers={"Accept": "application/dicom"})
    assert response.status_code == 406, response.text
