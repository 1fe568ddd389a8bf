"""`POST /v2/studies/$bulkUpdate`: stored files are rewritten with the new values, the original
stays retrievable, QIDO and metadata show the new values, and the change feed says Update."""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

import pydicom
import pytest
from litestar.testing import TestClient
from sqlalchemy import select

from domain.model import ChangeEvent, Instance, Operation
from domain.runtime import Runtime
from domain.services import bulk_update as bu
from domain.services.ingest import IncomingFile
from domain.services.reindex import _claim
from domain.settings import Settings
from tests.dicom_factory import make_dataset, to_bytes

Client = TestClient  # type: ignore[type-arg]
NEW_NAME = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Neu^Name"}]}}
AS_STORED = {"Accept": "application/dicom; transfer-syntax=*"}
ORIGINAL = {"msdicom-request-original": "true"}


def store(client: Client, *datasets: Any) -> None:
    for ds in datasets:
        response = client.post(
            "/v2/studies", content=to_bytes(ds), headers={"Content-Type": "application/dicom"}
        )
        assert response.status_code == 200, response.text


def update(client: Client, study_uids: list[str], change: dict[str, Any]) -> Any:
    """Post the update and wait (bounded) for its operation to end, as a client would poll."""
    body = {"studyInstanceUids": study_uids, "changeDataset": change}
    answer = client.post("/v2/studies/$bulkUpdate", json=body)
    if answer.status_code == 202:
        wait_for(client, answer.json()["href"])
    return answer


def wait_for(client: Client, href: str) -> dict[str, Any]:
    operation: dict[str, Any] = {}
    for _ in range(600):
        operation = client.get(href.removeprefix("http://testserver.local")).json()
        if operation["status"] in ("succeeded", "failed"):
            return operation
        time.sleep(0.05)
    raise AssertionError(f"the operation did not end: {operation}")


def url(ds: Any) -> str:
    return f"/v2/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"


def test_an_update_rewrites_files_and_the_index_and_keeps_the_original(client: Client) -> None:
    first = make_dataset(PatientName="Alt^Name", PatientID="P-1")
    second = make_dataset(study_uid=first.StudyInstanceUID, PatientName="Alt^Name", PatientID="P-1")
    other = make_dataset(PatientName="Alt^Name", PatientID="P-2")
    store(client, first, second, other)
    answer = update(client, [first.StudyInstanceUID], NEW_NAME)
    assert answer.status_code == 202, answer.text
    operation = client.get(answer.json()["href"].removeprefix("http://testserver.local")).json()
    assert (operation["type"], operation["status"], operation["percentComplete"]) == (
        "update",
        "succeeded",
        100,
    )

    assert [
        s["0020000D"]["Value"][0] for s in client.get("/v2/studies", params={"PatientName": "neu*"}).json()
    ] == [first.StudyInstanceUID]
    assert len(client.get("/v2/studies", params={"PatientName": "alt*"}).json()) == 1  # the other study
    for ds in (first, second):
        (document,) = client.get(url(ds) + "/metadata").json()
        assert document["00100010"]["Value"] == [{"Alphabetic": "Neu^Name"}]
        now = pydicom.dcmread(io.BytesIO(client.get(url(ds), headers=AS_STORED).content))
        assert now.PatientName == "Neu^Name" and now.PatientID == "P-1"
        assert now.PixelData == ds.PixelData
        before = client.get(url(ds), headers={**AS_STORED, **ORIGINAL})
        assert before.content[128:] == to_bytes(ds)[128:]
        (original,) = client.get(url(ds) + "/metadata", headers=ORIGINAL).json()
        assert original["00100010"]["Value"] == [{"Alphabetic": "Alt^Name"}]


def test_each_updated_instance_gets_an_update_entry_and_its_create_says_replaced(client: Client) -> None:
    ds = make_dataset(PatientName="Alt^Name")
    store(client, ds)
    update(client, [ds.StudyInstanceUID], NEW_NAME)
    created, updated = client.get("/v2/changefeed").json()
    assert (created["Action"], created["State"], "Metadata" in created) == ("Create", "replaced", False)
    assert (updated["Action"], updated["State"]) == ("Update", "current")
    assert updated["Metadata"]["00100010"]["Value"] == [{"Alphabetic": "Neu^Name"}]


def test_a_second_update_keeps_the_first_original_and_no_other_file(
    client: Client, settings: Settings
) -> None:
    ds = make_dataset(PatientName="Alt^Name", AccessionNumber="A1")
    store(client, ds)
    update(client, [ds.StudyInstanceUID], NEW_NAME)
    update(client, [ds.StudyInstanceUID], {"00080050": {"vr": "SH", "Value": ["A2"]}})
    now = pydicom.dcmread(io.BytesIO(client.get(url(ds), headers=AS_STORED).content))
    assert (str(now.PatientName), now.AccessionNumber) == ("Neu^Name", "A2")
    original = pydicom.dcmread(io.BytesIO(client.get(url(ds), headers={**AS_STORED, **ORIGINAL}).content))
    assert (str(original.PatientName), original.AccessionNumber) == ("Alt^Name", "A1")
    assert len([p for p in settings.blob_dir.rglob("*.dcm")]) == 2  # current and original only
    assert client.delete(f"/v2/studies/{ds.StudyInstanceUID}").status_code == 204
    assert not list(settings.blob_dir.rglob("*.dcm"))


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({"studyInstanceUids": [], "changeDataset": NEW_NAME}, "studyInstanceUids"),
        ({"studyInstanceUids": [f"1.2.{i}" for i in range(51)], "changeDataset": NEW_NAME}, "50"),
        ({"studyInstanceUids": ["not-a-uid"], "changeDataset": NEW_NAME}, "not a valid UID"),
        ({"studyInstanceUids": ["1.2.3"], "changeDataset": {}}, "changeDataset"),
        (
            {"studyInstanceUids": ["1.2.3"], "changeDataset": {"00080060": {"vr": "CS", "Value": ["MR"]}}},
            "Modality",
        ),
        ({"studyInstanceUids": ["1.2.3"], "changeDataset": {"zz": 1}}, "DICOM JSON"),
        ([1, 2], "JSON object"),
    ],
)
def test_a_malformed_update_is_400_and_changes_nothing(client: Client, body: Any, word: str) -> None:
    ds = make_dataset()
    store(client, ds)
    response = client.post("/v2/studies/$bulkUpdate", json=body)
    assert response.status_code == 400 and word in response.json()["detail"]
    assert [e["Action"] for e in client.get("/v2/changefeed").json()] == ["Create"]


def test_an_unknown_study_is_404(client: Client) -> None:
    assert update(client, ["1.2.3.4.5.6"], NEW_NAME).status_code == 404


def test_extended_query_tags_follow_an_update(client: Client) -> None:
    ds = make_dataset(IssuerOfPatientID="before")
    store(client, ds)
    added = client.post("/v2/extendedquerytags", json=[{"path": "IssuerOfPatientID", "level": "Instance"}])
    assert added.status_code == 202, added.text
    assert wait_for(client, added.json()["href"])["status"] == "succeeded"
    assert len(client.get("/v2/instances", params={"IssuerOfPatientID": "before"}).json()) == 1
    update(client, [ds.StudyInstanceUID], {"00100021": {"vr": "LO", "Value": ["after"]}})
    assert client.get("/v2/instances", params={"IssuerOfPatientID": "before"}).json() == []
    assert len(client.get("/v2/instances", params={"IssuerOfPatientID": "after"}).json()) == 1


def test_an_update_interrupted_after_a_study_resumes_at_the_next_one(settings: Settings) -> None:
    """A process updates one study of three and dies; another takes the operation over when
    the lease expires and finishes it: every instance is updated exactly once."""

    studies = [make_dataset(PatientName="Alt^Name") for _ in range(3)]
    operations = Operation.__table__

    async def scenario() -> None:
        runtime = await Runtime.start(settings.with_(reindex_lease_seconds=0.2))
        assert runtime.operations is not None
        await runtime.operations.stop()  # this process will play the one that dies
        await runtime.ingest.store_instances([_spooled(settings, ds) for ds in studies])
        request = bu.validate_update(
            {"studyInstanceUids": [s.StudyInstanceUID for s in studies], "changeDataset": NEW_NAME}
        )
        operation_id = await bu.start_bulk_update(runtime.db, request)
        now = int(time.time() * 1000)
        assert await runtime.db.write(_claim, operation_id, "dying", now, 200, ("update",))
        step = await runtime.db.write(bu._next_study, operation_id, "dying", 200)
        assert step is not None and step[0] == 0
        await bu._update_study(
            runtime.db, runtime.blobs, settings.spool_dir, step[1], request.change, (operation_id, "dying", 0)
        )
        await runtime.stop()  # dies without finishing: the lease runs out

        survivor = await Runtime.start(settings.with_(reindex_lease_seconds=0.2))
        try:
            for _ in range(400):
                async with survivor.db.read() as conn:
                    status = await conn.scalar(
                        select(operations.c.status).where(operations.c.id == operation_id)
                    )
                if status == "succeeded":
                    break
                await asyncio.sleep(0.05)
            assert status == "succeeded"
            async with survivor.db.read() as conn:
                versions = list(await conn.scalars(select(Instance.version)))
                updates = list(
                    await conn.scalars(select(ChangeEvent.action).where(ChangeEvent.action == "Update"))
                )
            assert versions == [2, 2, 2] and len(updates) == 3
        finally:
            await survivor.stop()

    asyncio.run(scenario())


def _spooled(settings: Settings, ds: Any) -> IncomingFile:
    settings.spool_dir.mkdir(parents=True, exist_ok=True)
    path = settings.spool_dir / f"test-{ds.SOPInstanceUID}"
    path.write_bytes(to_bytes(ds))
    return IncomingFile(path)
