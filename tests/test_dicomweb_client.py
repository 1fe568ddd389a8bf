"""End to end with a real client: `dicomweb_client.DICOMwebClient` against `tessera serve`
running as its own process on 127.0.0.1 (SQLite, and PostgreSQL when one is reachable).

What is stored comes back the same: UIDs, names (with non-ASCII characters), pixel bytes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest
from dicomweb_client import DICOMwebClient
from pydicom.uid import CTImageStorage, MRImageStorage, generate_uid

from tests.dicom_factory import make_dataset
from tests.server import Server, postgres_database, running_server

STUDY_UID, SERIES_UID, SOP_UID = "0020000D", "0020000E", "00080018"


@dataclass
class Archive:
    """A running server, a client for it, and what was stored through that client."""

    server: Server
    client: DICOMwebClient
    study_a: str
    study_b: str
    series_a_ct: str
    series_a_mr: str
    series_b_ct: str
    stored: dict[str, pydicom.Dataset]  # by SOPInstanceUID
    store_response: pydicom.Dataset

    def instances(self, study: str, series: str | None = None) -> dict[str, pydicom.Dataset]:
        return {
            uid: ds
            for uid, ds in self.stored.items()
            if ds.StudyInstanceUID == study and (series is None or ds.SeriesInstanceUID == series)
        }


def _datasets() -> tuple[dict[str, str], list[pydicom.Dataset]]:
    uids = {
        name: generate_uid() for name in ("study_a", "study_b", "series_a_ct", "series_a_mr", "series_b_ct")
    }
    patient_a = {
        "PatientName": "Doe^John",
        "PatientID": "E2E-A",
        "StudyDate": "20240110",
        "StudyDescription": "Head",
        "AccessionNumber": "E2E-ACC-A",
    }
    patient_b = {
        "SpecificCharacterSet": "ISO_IR 192",
        "PatientName": "Müller^Hans",
        "PatientID": "E2E-B",
        "StudyDate": "20240215",
        "StudyDescription": "Thorax",
        "AccessionNumber": "E2E-ACC-B",
    }
    layout = [
        ("study_a", "series_a_ct", CTImageStorage, "CT", 1, patient_a),
        ("study_a", "series_a_ct", CTImageStorage, "CT", 2, patient_a),
        ("study_a", "series_a_mr", MRImageStorage, "MR", 1, patient_a),
        ("study_b", "series_b_ct", CTImageStorage, "CT", 1, patient_b),
    ]
    datasets = []
    for study, series, sop_class, modality, number, patient in layout:
        rows, columns = 16, 24
        datasets.append(
            in_memory_dataset(
                study_uid=uids[study],
                series_uid=uids[series],
                rows=rows,
                columns=columns,
                SOPClassUID=sop_class,
                Modality=modality,
                SeriesNumber=1 if modality == "CT" else 2,
                InstanceNumber=number,
                PixelData=os.urandom(rows * columns),  # every instance's pixels are its own
                **patient,
            )
        )
    for ds in datasets:
        ds.preamble = bytes(128)  # as pydicom.dcmread leaves it: dcmwrite then writes a Part-10 file
    return uids, datasets


def in_memory_dataset(**kwargs: Any) -> pydicom.Dataset:
    """A dataset built in memory (as highdicom builds them): file meta, but no preamble."""
    ds = make_dataset(**kwargs)
    assert getattr(ds, "preamble", None) is None
    return ds


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def archive(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    workdir = tmp_path_factory.mktemp(f"e2e-{request.param}")
    with (
        _database(request.param) as database_url,
        running_server(workdir, database_url=database_url) as server,
    ):
        client = DICOMwebClient(url=server.dicomweb_url)
        uids, datasets = _datasets()
        response = client.store_instances(datasets)
        yield Archive(
            server,
            client,
            stored={ds.SOPInstanceUID: ds for ds in datasets},
            store_response=response,
            **uids,
        )


def _database(backend: str) -> Any:
    if backend == "sqlite":
        return nullcontext(None)
    return postgres_database(f"tessera_e2e_{os.getpid()}")


def uids_of(matches: list[dict[str, Any]], tag: str) -> set[str]:
    return {m[tag]["Value"][0] for m in matches}


def assert_same_instance(received: pydicom.Dataset, sent: pydicom.Dataset) -> None:
    assert received.SOPInstanceUID == sent.SOPInstanceUID
    assert received.SOPClassUID == sent.SOPClassUID
    assert received.StudyInstanceUID == sent.StudyInstanceUID
    assert received.SeriesInstanceUID == sent.SeriesInstanceUID
    assert str(received.PatientName) == str(sent.PatientName)
    assert received.PatientID == sent.PatientID
    assert received.InstanceNumber == sent.InstanceNumber
    assert received.Rows == sent.Rows and received.Columns == sent.Columns
    assert received.PixelData == sent.PixelData


# --- STOW-RS -------------------------------------------------------------------------------------


def test_storing_references_every_instance_and_fails_none(archive: Archive) -> None:
    response = archive.store_response
    assert "FailedSOPSequence" not in response
    referenced = {item.ReferencedSOPInstanceUID for item in response.ReferencedSOPSequence}
    assert referenced == set(archive.stored)
    for item in response.ReferencedSOPSequence:
        sent = archive.stored[item.ReferencedSOPInstanceUID]
        assert item.ReferencedSOPClassUID == sent.SOPClassUID
        # dicomweb-client sends `Host: 127.0.0.1` without the port, so only the path is certain
        assert item.RetrieveURL.endswith(
            f"/v2/studies/{sent.StudyInstanceUID}/series/{sent.SeriesInstanceUID}"
            f"/instances/{sent.SOPInstanceUID}"
        )


def test_store_instances_accepts_a_dataset_built_in_memory(archive: Archive) -> None:
    """dicomweb-client writes such a dataset with `pydicom.dcmwrite(buffer, ds)`: its File Meta
    Information (0002,xxxx) comes first, without the 128-byte preamble and "DICM" prefix.
    The README's own example (`client.store_instances([dataset])`) must work with it."""
    ds = in_memory_dataset(
        study_uid=archive.study_b,
        PatientName="Müller^Hans",
        PatientID="E2E-B",
        SpecificCharacterSet="ISO_IR 192",
    )
    response = archive.client.store_instances([ds])
    assert "FailedSOPSequence" not in response
    received = archive.client.retrieve_instance(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    assert_same_instance(received, ds)
    archive.client.delete_instance(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)


def test_storing_the_same_instances_again_is_harmless(archive: Archive) -> None:
    again = archive.client.store_instances([next(iter(archive.stored.values()))])
    assert "FailedSOPSequence" not in again
    assert len(archive.client.search_for_instances()) == len(archive.stored)


# --- QIDO-RS -------------------------------------------------------------------------------------


def test_search_for_studies_finds_each_study_by_its_attributes(archive: Archive) -> None:
    client = archive.client
    assert uids_of(client.search_for_studies(), STUDY_UID) == {archive.study_a, archive.study_b}
    assert uids_of(client.search_for_studies(search_filters={"PatientID": "E2E-B"}), STUDY_UID) == {
        archive.study_b
    }
    assert uids_of(client.search_for_studies(search_filters={"PatientName": "muller^hans"}), STUDY_UID) == {
        archive.study_b
    }
    assert uids_of(
        client.search_for_studies(search_filters={"StudyDate": "20240101-20240131"}), STUDY_UID
    ) == {archive.study_a}
    assert uids_of(client.search_for_studies(search_filters={"ModalitiesInStudy": "MR"}), STUDY_UID) == {
        archive.study_a
    }
    assert uids_of(
        client.search_for_studies(search_filters={"PatientName": "joh"}, fuzzymatching=True), STUDY_UID
    ) == {archive.study_a}


def test_search_for_studies_returns_names_and_computed_attributes(archive: Archive) -> None:
    (study_b,) = archive.client.search_for_studies(search_filters={"StudyInstanceUID": archive.study_b})
    assert study_b["00100010"]["Value"] == [{"Alphabetic": "Müller^Hans"}]
    (study_a,) = archive.client.search_for_studies(
        search_filters={"AccessionNumber": "E2E-ACC-A"}, fields=["StudyDescription"]
    )
    assert sorted(study_a["00080061"]["Value"]) == ["CT", "MR"]
    assert study_a["00201206"]["Value"] == [2]
    assert study_a["00201208"]["Value"] == [3]
    assert study_a["00081030"]["Value"] == ["Head"]


def test_search_for_studies_pages_with_limit_and_offset(archive: Archive) -> None:
    first = archive.client.search_for_studies(limit=1)
    second = archive.client.search_for_studies(limit=1, offset=1)
    assert len(first) == len(second) == 1
    assert uids_of(first + second, STUDY_UID) == {archive.study_a, archive.study_b}


def test_search_for_series_at_every_level(archive: Archive) -> None:
    client = archive.client
    every = {archive.series_a_ct, archive.series_a_mr, archive.series_b_ct}
    assert uids_of(client.search_for_series(), SERIES_UID) == every
    assert uids_of(client.search_for_series(search_filters={"Modality": "CT"}), SERIES_UID) == {
        archive.series_a_ct,
        archive.series_b_ct,
    }
    assert uids_of(client.search_for_series(search_filters={"PatientID": "E2E-B"}), SERIES_UID) == {
        archive.series_b_ct
    }
    in_a = client.search_for_series(study_instance_uid=archive.study_a)
    assert uids_of(in_a, SERIES_UID) == {archive.series_a_ct, archive.series_a_mr}
    counts = {m[SERIES_UID]["Value"][0]: m["00201209"]["Value"] for m in in_a}
    assert counts == {archive.series_a_ct: [2], archive.series_a_mr: [1]}
    mr = client.search_for_series(study_instance_uid=archive.study_a, search_filters={"Modality": "MR"})
    assert uids_of(mr, SERIES_UID) == {archive.series_a_mr}


def test_search_for_instances_at_every_level(archive: Archive) -> None:
    client = archive.client
    assert uids_of(client.search_for_instances(), SOP_UID) == set(archive.stored)
    assert uids_of(client.search_for_instances(search_filters={"Modality": "MR"}), SOP_UID) == set(
        archive.instances(archive.study_a, archive.series_a_mr)
    )
    assert uids_of(client.search_for_instances(study_instance_uid=archive.study_a), SOP_UID) == set(
        archive.instances(archive.study_a)
    )
    in_series = client.search_for_instances(
        study_instance_uid=archive.study_a, series_instance_uid=archive.series_a_ct
    )
    assert uids_of(in_series, SOP_UID) == set(archive.instances(archive.study_a, archive.series_a_ct))
    second = client.search_for_instances(
        study_instance_uid=archive.study_a,
        series_instance_uid=archive.series_a_ct,
        search_filters={"InstanceNumber": "2"},
    )
    assert [m["00200013"]["Value"] for m in second] == [[2]]


# --- WADO-RS -------------------------------------------------------------------------------------


def test_retrieve_study_returns_every_instance_as_stored(archive: Archive) -> None:
    for study in (archive.study_a, archive.study_b):
        received = archive.client.retrieve_study(study)
        expected = archive.instances(study)
        assert {ds.SOPInstanceUID for ds in received} == set(expected)
        for ds in received:
            assert_same_instance(ds, expected[ds.SOPInstanceUID])


def test_retrieve_series_returns_the_instances_of_that_series_only(archive: Archive) -> None:
    received = archive.client.retrieve_series(archive.study_a, archive.series_a_ct)
    expected = archive.instances(archive.study_a, archive.series_a_ct)
    assert len(received) == len(expected) == 2
    for ds in received:
        assert_same_instance(ds, expected[ds.SOPInstanceUID])


def test_retrieve_instance_returns_that_instance(archive: Archive) -> None:
    for sop_uid, sent in archive.stored.items():
        received = archive.client.retrieve_instance(sent.StudyInstanceUID, sent.SeriesInstanceUID, sop_uid)
        assert_same_instance(received, sent)


def _assert_metadata_matches(documents: list[dict[str, Any]], expected: dict[str, pydicom.Dataset]) -> None:
    received = {}
    for document in documents:
        ds = pydicom.Dataset.from_json(document)
        received[ds.SOPInstanceUID] = ds
    assert set(received) == set(expected)
    for uid, ds in received.items():
        sent = expected[uid]
        assert ds.StudyInstanceUID == sent.StudyInstanceUID
        assert ds.SeriesInstanceUID == sent.SeriesInstanceUID
        assert ds.SOPClassUID == sent.SOPClassUID
        assert str(ds.PatientName) == str(sent.PatientName)
        assert ds.Modality == sent.Modality
        assert ds.Rows == sent.Rows


def test_retrieve_study_metadata_describes_every_instance(archive: Archive) -> None:
    for study in (archive.study_a, archive.study_b):
        _assert_metadata_matches(archive.client.retrieve_study_metadata(study), archive.instances(study))


def test_retrieve_series_metadata_describes_the_series_instances(archive: Archive) -> None:
    documents = archive.client.retrieve_series_metadata(archive.study_a, archive.series_a_mr)
    _assert_metadata_matches(documents, archive.instances(archive.study_a, archive.series_a_mr))


def test_retrieve_instance_metadata_describes_that_instance(archive: Archive) -> None:
    for sop_uid, sent in archive.stored.items():
        document = archive.client.retrieve_instance_metadata(
            sent.StudyInstanceUID, sent.SeriesInstanceUID, sop_uid
        )
        documents = document if isinstance(document, list) else [document]
        _assert_metadata_matches(documents, {sop_uid: sent})


def test_the_server_process_keeps_its_data_in_its_own_folder(archive: Archive) -> None:
    assert archive.server.process.poll() is None
    blobs = [p for p in Path(archive.server.blob_dir).rglob("*") if p.is_file()]
    assert len(blobs) == len(archive.stored)
