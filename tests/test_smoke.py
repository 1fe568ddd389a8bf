"""The shortest path through the platform: store one file, find it, get it back, delete it."""

from litestar.testing import TestClient

from tests.conftest import dicom_file


def test_a_stored_instance_can_be_found_retrieved_and_deleted(client: TestClient) -> None:  # type: ignore[type-arg]
    body = dicom_file("CT_small.dcm").read_bytes()
    stored = client.post("/v2/studies", content=body, headers={"Content-Type": "application/dicom"})
    assert stored.status_code == 200, stored.text
    studies = client.get("/v2/studies", params={"PatientID": "1CT1"}).json()
    assert len(studies) == 1
    study_uid = studies[0]["0020000D"]["Value"][0]
    files = client.get(
        f"/v2/studies/{study_uid}",
        headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
    )
    assert files.status_code == 200
    assert body[132:] in files.content
    assert client.delete(f"/v2/studies/{study_uid}").status_code == 204
    assert client.get("/v2/studies", params={"PatientID": "1CT1"}).json() == []
    assert client.delete(f"/v2/studies/{study_uid}").status_code == 404
