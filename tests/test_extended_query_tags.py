"""Extended query tags: added through the Azure-compatible API, indexed for the instances already
stored by a background re-index (resumable across restarts) and for new ones at STOW, then
matched in QIDO by the rules of the built-in attributes."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import TestClient
from pydicom.uid import ImplicitVRLittleEndian

from domain.dicom.attributes import Level
from domain.errors import InvalidRequest
from domain.services.extended_query_tags import QueryTag
from domain.services.search import Scope, parse_query
from tests.dicom_factory import make_dataset, multipart, to_bytes
from tests.server import postgres_database, running_server

Client = TestClient  # type: ignore[type-arg]
PRIVATE_TAG = "00091001"


def with_private(ds: Any, creator: str, value: str) -> Any:
    ds.private_block(0x0009, creator, create=True).add_new(0x01, "LO", value)
    return ds


def store(client: Any, *datasets: Any) -> None:
    body, content_type = multipart([to_bytes(ds) for ds in datasets])
    response = client.post("/v2/studies", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text


def add(client: Any, *tags: dict[str, Any]) -> Any:
    return client.post("/v2/extendedquerytags", json=list(tags))


def add_and_wait(client: Any, *tags: dict[str, Any]) -> dict[str, Any]:
    response = add(client, *tags)
    assert response.status_code == 202, response.text
    reference = response.json()
    assert response.headers["location"] == reference["href"]
    assert reference["href"].endswith(f"/v2/operations/{reference['id']}")
    return wait_for_operation(client, reference["id"])


def wait_for_operation(client: Any, operation_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        operation: dict[str, Any] = client.get(f"/v2/operations/{operation_id}").json()
        if operation["status"] in ("succeeded", "failed"):
            return operation
        time.sleep(0.05)
    raise AssertionError(f"operation {operation_id} did not finish: {operation}")


def found(client: Any, path: str, **params: Any) -> set[str]:
    response = client.get(path, params=params)
    assert response.status_code in (200, 204), response.text
    uid_tag = {"/v2/studies": "0020000D", "/v2/series": "0020000E"}.get(path, "00080018")
    return {match[uid_tag]["Value"][0] for match in (response.json() if response.status_code == 200 else [])}


def problem(client: Any, method: str, path: str, status: int, **kwargs: Any) -> str:
    response = client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    detail: str = response.json()["detail"]
    return detail


@pytest.fixture
def archive(client: Client) -> dict[str, Any]:
    """Three instances in two studies, stored before any tag exists."""
    study_a, study_b = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"
    first = make_dataset(
        study_uid=study_a,
        InstitutionName="General Hospital",
        ProtocolName="HEAD ROUTINE",
        OperatorsName="Müller^Hans",
        SliceThickness="2.50",
        ContentDate="20240315",
        AcquisitionDateTime="20240315103000.5",
        AcquisitionNumber=7,
        FrameOfReferenceUID="1.2.3.4",
    )
    second = make_dataset(
        study_uid=study_a,
        InstitutionName="General Hospital",
        ProtocolName="CHEST LOW DOSE",
        OperatorsName="Smith^Anna",
        SliceThickness="5",
        ContentDate="20240401",
        AcquisitionDateTime="20240401",
        AcquisitionNumber=8,
        FrameOfReferenceUID="1.2.3.5",
    )
    third = make_dataset(study_uid=study_b, InstitutionName="City Clinic", SliceThickness="1.25")
    with_private(first, "ACME 1.0", "alpha")
    with_private(third, "OTHER", "alpha")  # another creator's element at the same tag
    store(client, first, second, third)
    return {"first": first, "second": second, "third": third}


def test_adding_tags_reindexes_stored_instances_and_makes_them_queryable(
    client: Client, archive: dict[str, Any]
) -> None:
    operation = add_and_wait(
        client,
        {"path": "InstitutionName", "level": "Study"},
        {"path": "00181030", "level": "series"},  # ProtocolName
        {"path": "SliceThickness", "vr": "DS", "level": "Instance"},
    )
    assert operation["status"] == "succeeded"
    assert operation["percentComplete"] == 100
    assert operation["type"] == "reindex"
    assert {r.rsplit("/", 1)[1] for r in operation["resources"]} == {"00080080", "00181030", "00180050"}
    tags = client.get("/v2/extendedquerytags").json()
    assert [(t["path"], t["vr"], t["level"], t["status"], t["queryStatus"]) for t in tags] == [
        ("00080080", "LO", "Study", "Ready", "Enabled"),
        ("00181030", "LO", "Series", "Ready", "Enabled"),
        ("00180050", "DS", "Instance", "Ready", "Enabled"),
    ]
    study_a = archive["first"].StudyInstanceUID
    assert found(client, "/v2/studies", InstitutionName="General Hospital") == {study_a}
    assert found(client, "/v2/studies", InstitutionName="Gen*") == {study_a}
    assert found(client, "/v2/series", ProtocolName="CHEST*") == {archive["second"].SeriesInstanceUID}
    assert found(client, "/v2/instances", SliceThickness="2.5") == {archive["first"].SOPInstanceUID}
    assert found(client, "/v2/instances", SliceThickness="1.25e0") == {archive["third"].SOPInstanceUID}
    assert found(client, "/v2/instances", InstitutionName="City Clinic") == {archive["third"].SOPInstanceUID}
    assert "study-level" in problem(client, "GET", f"/v2/studies/{study_a}/instances?InstitutionName=x", 400)


def test_a_matched_extended_tag_is_returned_and_can_be_an_includefield(
    client: Client, archive: dict[str, Any]
) -> None:
    add_and_wait(client, {"path": "ProtocolName", "level": "Series"})
    [match] = client.get("/v2/series", params={"ProtocolName": "HEAD ROUTINE"}).json()
    assert match["00181030"] == {"vr": "LO", "Value": ["HEAD ROUTINE"]}
    matches = client.get("/v2/series", params={"includefield": "ProtocolName"}).json()
    assert sorted(m["00181030"]["Value"][0] for m in matches if "00181030" in m) == [
        "CHEST LOW DOSE",
        "HEAD ROUTINE",
    ]


def test_extended_tags_follow_the_matching_rules_of_their_vr(client: Client, archive: dict[str, Any]) -> None:
    add_and_wait(
        client,
        {"path": "ContentDate", "level": "Instance"},
        {"path": "AcquisitionDateTime", "level": "Instance"},
        {"path": "AcquisitionNumber", "level": "Instance"},
        {"path": "OperatorsName", "level": "Series"},
        {"path": "FrameOfReferenceUID", "level": "Series"},
    )
    first, second = archive["first"], archive["second"]
    both = {first.SOPInstanceUID, second.SOPInstanceUID}
    assert found(client, "/v2/instances", ContentDate="20240315") == {first.SOPInstanceUID}
    assert found(client, "/v2/instances", ContentDate="20240301-20240331") == {first.SOPInstanceUID}
    assert found(client, "/v2/instances", ContentDate="20240316-") == {second.SOPInstanceUID}
    assert found(client, "/v2/instances", AcquisitionDateTime="2024") == both
    assert found(client, "/v2/instances", AcquisitionDateTime="202403-202403") == {first.SOPInstanceUID}
    assert found(client, "/v2/instances", AcquisitionDateTime="20240315103001-") == {second.SOPInstanceUID}
    assert found(client, "/v2/instances", AcquisitionNumber="8") == {second.SOPInstanceUID}
    assert found(client, "/v2/series", OperatorsName="muller^hans") == {first.SeriesInstanceUID}
    assert found(client, "/v2/series", OperatorsName="ann", fuzzymatching="true") == {
        second.SeriesInstanceUID
    }
    assert found(client, "/v2/series", FrameOfReferenceUID="1.2.3.4,1.2.3.5") == {
        first.SeriesInstanceUID,
        second.SeriesInstanceUID,
    }
    assert "must be a number" in problem(client, "GET", "/v2/instances?AcquisitionNumber=x", 400)
    assert "ContentDate" in problem(client, "GET", "/v2/instances?ContentDate=2024-03", 400)
    assert "instance-level" in problem(client, "GET", "/v2/studies?AcquisitionNumber=8", 400)


def test_a_private_tag_matches_only_its_creators_element(client: Client, archive: dict[str, Any]) -> None:
    add_and_wait(client, {"path": PRIVATE_TAG, "vr": "LO", "privateCreator": "ACME 1.0", "level": "Instance"})
    tag = client.get(f"/v2/extendedquerytags/{PRIVATE_TAG}").json()
    assert tag == {
        "path": PRIVATE_TAG,
        "vr": "LO",
        "privateCreator": "ACME 1.0",
        "level": "Instance",
        "status": "Ready",
        "queryStatus": "Enabled",
    }
    assert found(client, "/v2/instances", **{PRIVATE_TAG: "alpha"}) == {archive["first"].SOPInstanceUID}


def test_a_private_tag_of_an_implicit_vr_file_is_read_with_the_tags_vr(client: Client) -> None:
    """Without explicit VR the stored metadata holds the element as UN (InlineBinary)."""
    implicit = with_private(make_dataset(), "ACME 1.0", "beta")
    implicit.private_block(0x0009, "ACME 1.0").add_new(0x02, "US", 512)
    implicit.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    store(client, implicit)
    add_and_wait(
        client,
        {"path": PRIVATE_TAG, "vr": "LO", "privateCreator": "ACME 1.0", "level": "Instance"},
        {"path": "00091002", "vr": "US", "privateCreator": "ACME 1.0", "level": "Instance"},
    )
    assert found(client, "/v2/instances", **{PRIVATE_TAG: "beta"}) == {implicit.SOPInstanceUID}
    assert found(client, "/v2/instances", **{"00091002": "512"}) == {implicit.SOPInstanceUID}


def test_instances_stored_after_a_tag_is_ready_are_indexed_at_once(client: Client) -> None:
    add_and_wait(client, {"path": "StationName", "level": "Series"}, {"path": "KVP", "level": "Instance"})
    old = make_dataset(StationName="CT01", KVP="120")
    new = make_dataset(series_uid=old.SeriesInstanceUID, study_uid=old.StudyInstanceUID, StationName="CT02")
    store(client, old)
    assert found(client, "/v2/series", StationName="CT01") == {old.SeriesInstanceUID}
    assert found(client, "/v2/instances", KVP="120.0") == {old.SOPInstanceUID}
    store(client, new)  # the newest instance of a series sets its series-level value
    assert found(client, "/v2/series", StationName="CT02") == {old.SeriesInstanceUID}
    assert found(client, "/v2/series", StationName="CT01") == set()


def test_after_a_delete_a_series_value_is_that_of_its_newest_remaining_instance(client: Client) -> None:
    add_and_wait(
        client, {"path": "StationName", "level": "Series"}, {"path": "InstitutionName", "level": "Study"}
    )
    old = make_dataset(StationName="CT01", InstitutionName="N" * 80)  # an error that stays recorded
    new = make_dataset(series_uid=old.SeriesInstanceUID, study_uid=old.StudyInstanceUID, StationName="CT02")
    store(client, old, new)
    assert (
        client.patch("/v2/extendedquerytags/InstitutionName", json={"queryStatus": "Enabled"}).status_code
        == 200
    )
    assert found(client, "/v2/series", StationName="CT02") == {old.SeriesInstanceUID}
    path = f"/v2/studies/{old.StudyInstanceUID}/series/{old.SeriesInstanceUID}/instances/{new.SOPInstanceUID}"
    assert client.delete(path).status_code == 204
    assert found(client, "/v2/series", StationName="CT01") == {old.SeriesInstanceUID}
    assert found(client, "/v2/series", StationName="CT02") == set()
    # the refresh met the old error again without disabling the tag a second time
    tag = client.get("/v2/extendedquerytags/InstitutionName").json()
    assert (tag["queryStatus"], tag["errors"]["count"]) == ("Enabled", 1)
    store(client, make_dataset(study_uid=old.StudyInstanceUID, series_uid=old.SeriesInstanceUID))
    assert client.delete(f"/v2/studies/{old.StudyInstanceUID}").status_code == 204
    assert client.get("/v2/extendedquerytags/InstitutionName/errors").json() == []


def test_values_that_cannot_be_indexed_are_listed_and_the_instances_stay_stored(client: Client) -> None:
    good = make_dataset(InstitutionName="Short", ContentDate="20240101")
    long_name = make_dataset(InstitutionName="N" * 80, ContentDate="20240101")
    bad_date = make_dataset(InstitutionName="Fine", ContentDate="20241345")
    store(client, good, long_name, bad_date)
    add_and_wait(
        client, {"path": "InstitutionName", "level": "Instance"}, {"path": "ContentDate", "level": "Instance"}
    )
    institution = client.get("/v2/extendedquerytags/InstitutionName").json()
    assert institution["queryStatus"] == "Disabled"
    assert institution["errors"]["count"] == 1
    assert institution["errors"]["href"].endswith("/v2/extendedquerytags/00080080/errors")
    [error] = client.get("/v2/extendedquerytags/InstitutionName/errors").json()
    assert error["sopInstanceUid"] == long_name.SOPInstanceUID
    assert error["studyInstanceUid"] == long_name.StudyInstanceUID
    assert "64" in error["errorMessage"]
    assert error["createdTime"]
    [date_error] = client.get("/v2/extendedquerytags/00080023/errors").json()
    assert date_error["sopInstanceUid"] == bad_date.SOPInstanceUID
    assert "disabled" in problem(client, "GET", "/v2/instances?InstitutionName=Short", 400)
    # the instances stay stored and searchable by the built-in attributes
    assert len(found(client, "/v2/instances")) == 3
    response = client.patch("/v2/extendedquerytags/InstitutionName", json={"queryStatus": "Enabled"})
    assert response.status_code == 200 and response.json()["queryStatus"] == "Enabled"
    assert found(client, "/v2/instances", InstitutionName="Short") == {good.SOPInstanceUID}


def test_a_disabled_tag_is_not_queryable_and_a_deleted_one_is_gone(
    client: Client, archive: dict[str, Any]
) -> None:
    add_and_wait(client, {"path": "InstitutionName", "level": "Study"})
    response = client.patch("/v2/extendedquerytags/00080080", json={"queryStatus": "Disabled"})
    assert response.status_code == 200 and response.json()["queryStatus"] == "Disabled"
    assert "disabled" in problem(client, "GET", "/v2/studies?InstitutionName=City*", 400)
    assert client.delete("/v2/extendedquerytags/InstitutionName").status_code == 204
    assert client.get("/v2/extendedquerytags/InstitutionName").status_code == 404
    assert "cannot be searched" in problem(client, "GET", "/v2/studies?InstitutionName=City*", 400)
    assert client.get("/v2/extendedquerytags").json() == []
    add_and_wait(client, {"path": "InstitutionName", "level": "Study"})  # and it can be added again
    assert found(client, "/v2/studies", InstitutionName="City Clinic") == {archive["third"].StudyInstanceUID}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([], "non-empty"),
        ({"path": "InstitutionName", "level": "Study"}, "non-empty"),
        ([{"path": "NoSuchKeyword", "level": "Study"}], "neither a DICOM keyword"),
        ([{"level": "Study"}], "path"),
        ([{"path": "InstitutionName", "level": "Patient"}], "level must be"),
        ([{"path": "InstitutionName", "vr": "CS", "level": "Study"}], "does not match the dictionary's LO"),
        ([{"path": "00091001", "privateCreator": "ACME", "level": "Study"}], "needs a vr"),
        ([{"path": "00091001", "vr": "LO", "level": "Study"}], "needs a privateCreator"),
        ([{"path": "00090010", "vr": "LO", "privateCreator": "ACME", "level": "Study"}], "private creator"),
        ([{"path": "InstitutionName", "privateCreator": "ACME", "level": "Study"}], "only for private"),
        ([{"path": "PatientID", "level": "Study"}], "already supported"),
        ([{"path": "StudyComments", "level": "Study"}], "not supported"),
        ([{"path": "00091001", "vr": "OB", "privateCreator": "A", "level": "Study"}], "not supported"),
        (
            [{"path": "InstitutionName", "level": "Study"}, {"path": "00080080", "level": "Series"}],
            "more than once",
        ),
    ],
)
def test_invalid_tags_are_rejected_with_a_reason(client: Client, body: Any, expected: str) -> None:
    assert expected in problem(client, "POST", "/v2/extendedquerytags", 400, json=body)
    assert client.get("/v2/extendedquerytags").json() == []


def test_conflicts_and_unknown_resources(client: Client) -> None:
    add_and_wait(client, {"path": "InstitutionName", "level": "Study"})
    assert "already exists" in problem(
        client, "POST", "/v2/extendedquerytags", 409, json=[{"path": "00080080", "level": "Series"}]
    )
    assert (
        client.post(
            "/v2/extendedquerytags", content=b"{", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )
    assert client.get("/v2/extendedquerytags/StationName").status_code == 404
    assert client.get("/v2/extendedquerytags/StationName/errors").status_code == 404
    assert client.delete("/v2/extendedquerytags/StationName").status_code == 404
    assert client.get("/v2/extendedquerytags/NotAKeyword").status_code == 400
    assert client.get("/v2/operations/0123456789abcdef").status_code == 404
    assert "queryStatus" in problem(
        client, "PATCH", "/v2/extendedquerytags/InstitutionName", 400, json={"x": 1}
    )
    assert "limit" in problem(client, "GET", "/v2/extendedquerytags?limit=0", 400)


def test_tags_list_pages_with_limit_and_offset(client: Client) -> None:
    add_and_wait(client, *({"path": k, "level": "Series"} for k in ("StationName", "ProtocolName", "KVP")))
    paths = [t["path"] for t in client.get("/v2/extendedquerytags", params={"limit": 2, "offset": 1}).json()]
    assert paths == ["00181030", "00180060"]


def test_a_tag_that_is_not_ready_is_not_queryable_yet() -> None:
    adding = QueryTag(1, "00080080", "LO", None, Level.STUDY, "Adding", "Enabled", 0, "op")
    with pytest.raises(InvalidRequest, match="not queryable yet"):
        parse_query(Scope(Level.STUDY), [("InstitutionName", "x")], {"00080080": adding})


# --- re-index interrupted by a server restart -------------------------------------------------

INSTANCES = 800


def count(database: str, sql: str) -> int:
    if database.startswith("sqlite:"):
        with sqlite3.connect(database.split("///", 1)[1]) as conn:
            return int(conn.execute(sql).fetchone()[0])

    async def query() -> int:
        conn = await asyncpg.connect(database)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    return asyncio.run(query())


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    if request.param == "sqlite":
        with nullcontext(None) as url:
            yield url
    else:
        with postgres_database(f"tessera_eqt_{os.getpid()}") as url:
            yield url


@pytest.mark.parametrize("stop", ["terminate", "kill"])
def test_a_reindex_interrupted_by_a_restart_completes_indexing_each_instance_once(
    tmp_path: Path, database_url: str | None, stop: str
) -> None:
    """Two server processes share the work queue; stopped cleanly (the operation is handed back)
    or killed (another process takes it over when its lease expires), then started again."""
    env = {
        "TESSERA_REINDEX_BATCH": "1",
        "TESSERA_REINDEX_LEASE_SECONDS": "2",
        "TESSERA_WORKERS": "2",
        "TESSERA_FSYNC": "1",  # the default: durable commits, and a re-index long enough to stop
    }
    study = make_dataset()
    datasets = [
        make_dataset(
            study_uid=study.StudyInstanceUID, series_uid=study.SeriesInstanceUID, AcquisitionNumber=i % 4
        )
        for i in range(INSTANCES)
    ]
    with running_server(tmp_path, database_url=database_url, env=env) as server:
        client = httpx.Client(base_url=server.base_url, timeout=60)
        for start in range(0, INSTANCES, 60):
            store(client, *datasets[start : start + 60])
        response = add(client, {"path": "AcquisitionNumber", "level": "Instance"})
        assert response.status_code == 202, response.text
        operation_id = response.json()["id"]
        deadline = time.monotonic() + 30
        while client.get(f"/v2/operations/{operation_id}").json()["percentComplete"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        client.close()
        if stop == "kill":  # the whole process group: the server and its workers
            for pid in [*_descendants(server.process.pid), server.process.pid]:
                os.kill(pid, signal.SIGKILL)
            server.process.wait()
    # stopped in the middle
    db = database_url or f"sqlite:///{server.data_dir / 'index.db'}"
    assert (
        count(db, f"SELECT count(*) FROM operations WHERE id = '{operation_id}' AND status = 'running'") == 1
    )
    indexed_before = count(db, "SELECT count(*) FROM extended_values")
    assert 0 < indexed_before < INSTANCES
    with running_server(tmp_path, database_url=database_url, env=env) as server:
        client = httpx.Client(base_url=server.base_url, timeout=60)
        operation = wait_for_operation(client, operation_id)
        assert operation["status"] == "succeeded"
        assert operation["percentComplete"] == 100
        assert client.get("/v2/extendedquerytags/AcquisitionNumber").json()["status"] == "Ready"
        counts = [len(found(client, "/v2/instances", AcquisitionNumber=str(n))) for n in range(4)]
        assert counts == [INSTANCES // 4] * 4
    assert count(db, "SELECT count(*) FROM extended_values") == INSTANCES
    # resumed, not restarted, and never two processes on one batch: each instance processed once
    processed = count(db, f"SELECT processed_instances FROM operations WHERE id = '{operation_id}'")
    assert processed == INSTANCES


def _descendants(pid: int) -> list[int]:
    """The processes under `pid` (uvicorn's workers), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, pending = [], list(children.get(pid, []))
    while pending:
        child = pending.pop()
        found.append(child)
        pending += children.get(child, [])
    return found
