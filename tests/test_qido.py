"""QIDO-RS (PS3.18 10.6): the six search resources, matching per PS3.4 C.2.2.2, the returned
attributes, includefield, paging, and the 400s that name what to fix.

Every test runs against SQLite and PostgreSQL over the same small archive:

    study 1  Doe^John        CT series 1a (2 instances), MR series 1b (1 instance)
    study 2  Müller^Hans     CT series 2a (1 instance)
    study 3  Smith^Jane      DX series 3a (1 instance)
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient
from pydicom.uid import CTImageStorage, DigitalXRayImageStorageForPresentation, MRImageStorage

from tests.dicom_factory import make_dataset, multipart, to_bytes

STUDY_1, STUDY_2, STUDY_3 = "1.2.826.0.1.3680043.10.1", "1.2.826.0.1.3680043.10.2", "1.2.826.0.1.3680043.10.3"
SERIES_1A, SERIES_1B = f"{STUDY_1}.1", f"{STUDY_1}.2"
SERIES_2A, SERIES_3A = f"{STUDY_2}.1", f"{STUDY_3}.1"
SERIES_2B = f"{STUDY_2}.2"  # stored later, by one test
SOP_1A1, SOP_1A2, SOP_1B1 = f"{SERIES_1A}.1", f"{SERIES_1A}.2", f"{SERIES_1B}.1"
SOP_2A1, SOP_3A1 = f"{SERIES_2A}.1", f"{SERIES_3A}.1"

ALL_STUDIES = {STUDY_1, STUDY_2, STUDY_3}
ALL_SERIES = {SERIES_1A, SERIES_1B, SERIES_2A, SERIES_3A}
ALL_INSTANCES = {SOP_1A1, SOP_1A2, SOP_1B1, SOP_2A1, SOP_3A1}

STUDY_UID, SERIES_UID, SOP_UID = "0020000D", "0020000E", "00080018"

STUDY_ATTRIBUTES: dict[str, dict[str, Any]] = {
    STUDY_1: {
        "PatientName": "Doe^John",
        "PatientID": "PID-1",
        "PatientBirthDate": "19800115",
        "PatientSex": "M",
        "PatientAge": "044Y",
        "AccessionNumber": "ACC-001",
        "ReferringPhysicianName": "House^Gregory",
        "StudyDate": "20240110",
        "StudyTime": "083000",
        "StudyDescription": "Head CT",
        "StudyID": "S-1",
    },
    STUDY_2: {
        "PatientName": "Müller^Hans",
        "PatientID": "PID-2",
        "PatientBirthDate": "19751231",
        "PatientSex": "M",
        "AccessionNumber": "ACC-002",
        "ReferringPhysicianName": "Quinn^Michaela",
        "StudyDate": "20240215",
        "StudyTime": "141500",
        "StudyDescription": "head ct follow-up",
        "StudyID": "S-2",
    },
    STUDY_3: {
        "PatientName": "Smith^Jane",
        "PatientID": "PID-3",
        "PatientBirthDate": "19900601",
        "PatientSex": "F",
        "AccessionNumber": "X_10",
        "StudyDate": "20231231",
        "StudyTime": "235959",
        "StudyDescription": None,  # universal matching (a lone *) still finds this study
    },
}
SERIES_ATTRIBUTES: dict[str, dict[str, Any]] = {
    SERIES_1A: {
        "Modality": "CT",
        "SeriesDescription": "Axial",
        "SeriesNumber": 1,
        "SeriesDate": "20240110",
        "PerformedProcedureStepStartDate": "20240110",
        "ManufacturerModelName": "Scanner X",
        "BodyPartExamined": "HEAD",
    },
    SERIES_1B: {
        "Modality": "MR",
        "SeriesDescription": "T1 sagittal",
        "SeriesNumber": 2,
        "SeriesDate": "20240111",
        "PerformedProcedureStepStartDate": "20240111",
        "ManufacturerModelName": "Magnet Y",
        "BodyPartExamined": "BRAIN",
    },
    SERIES_2A: {
        "Modality": "CT",
        "SeriesDescription": "Axial",
        "SeriesNumber": 1,
        "SeriesDate": "20240215",
        "PerformedProcedureStepStartDate": "20240215",
        "ManufacturerModelName": "Scanner X",
        "BodyPartExamined": "HEAD",
    },
    SERIES_2B: {
        "Modality": "MR",
        "SeriesDescription": "T2",
        "SeriesNumber": 2,
        "SeriesDate": "20240215",
        "PerformedProcedureStepStartDate": "20240215",
        "ManufacturerModelName": "Magnet Y",
        "BodyPartExamined": "HEAD",
    },
    SERIES_3A: {
        "Modality": "DX",
        "SeriesDescription": "PA",
        "SeriesNumber": 1,
        "SeriesDate": "20231231",
        "PerformedProcedureStepStartDate": "20231231",
        "ManufacturerModelName": "Detector Z",
        "BodyPartExamined": "CHEST",
    },
}
# (study, series, SOP instance, SOP class, InstanceNumber)
INSTANCES = [
    (STUDY_1, SERIES_1A, SOP_1A1, CTImageStorage, 1),
    (STUDY_1, SERIES_1A, SOP_1A2, CTImageStorage, 2),
    (STUDY_1, SERIES_1B, SOP_1B1, MRImageStorage, 1),
    (STUDY_2, SERIES_2A, SOP_2A1, CTImageStorage, 1),
    (STUDY_3, SERIES_3A, SOP_3A1, DigitalXRayImageStorageForPresentation, 1),
]


def instance(study: str, series: str, sop: str, sop_class: str, number: int) -> bytes:
    ds = make_dataset(
        study_uid=study,
        series_uid=series,
        sop_uid=sop,
        SOPClassUID=sop_class,
        InstanceNumber=number,
        **STUDY_ATTRIBUTES[study],
        **SERIES_ATTRIBUTES[series],
    )
    return to_bytes(ds)


def store(client: TestClient, parts: list[bytes]) -> None:  # type: ignore[type-arg]
    body, content_type = multipart(parts)
    response = client.post("/v2/studies", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text


@pytest.fixture
def archive(client: TestClient) -> TestClient:  # type: ignore[type-arg]
    """The client, over an index holding the three studies above."""
    store(client, [instance(*row) for row in INSTANCES])
    return client


def search(client: TestClient, path: str, params: Any = None) -> list[dict[str, Any]]:  # type: ignore[type-arg]
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/dicom+json")
    result: list[dict[str, Any]] = response.json()
    return result


def uid_tag(path: str) -> str:
    """The tag naming the entities a resource returns."""
    resource = path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
    return {"studies": STUDY_UID, "series": SERIES_UID, "instances": SOP_UID}[resource]


def found(client: TestClient, path: str, params: Any = None) -> set[str]:  # type: ignore[type-arg]
    """The UIDs of the entities a search finds; each is found once."""
    tag = uid_tag(path)
    uids = [match[tag]["Value"][0] for match in search(client, path, params)]
    assert len(uids) == len(set(uids)), f"an entity is returned more than once: {uids}"
    return set(uids)


def by_uid(matches: list[dict[str, Any]], tag: str) -> dict[str, dict[str, Any]]:
    return {m[tag]["Value"][0]: m for m in matches}


def value(match: dict[str, Any], tag: str) -> list[Any]:
    values: list[Any] = match[tag].get("Value", [])
    return values


# --- the six resources -----------------------------------------------------------------------

RESOURCES = [
    ("/v2/studies", ALL_STUDIES),
    ("/v2/series", ALL_SERIES),
    ("/v2/instances", ALL_INSTANCES),
    (f"/v2/studies/{STUDY_1}/series", {SERIES_1A, SERIES_1B}),
    (f"/v2/studies/{STUDY_1}/instances", {SOP_1A1, SOP_1A2, SOP_1B1}),
    (f"/v2/studies/{STUDY_1}/series/{SERIES_1A}/instances", {SOP_1A1, SOP_1A2}),
]


def test_each_resource_without_a_query_finds_everything_in_its_scope(
    archive: TestClient,  # type: ignore[type-arg]
    subtests: pytest.Subtests,
) -> None:
    for path, expected in RESOURCES:
        with subtests.test(path):
            assert found(archive, path) == expected


def test_a_series_path_under_another_study_finds_no_instances(archive: TestClient) -> None:  # type: ignore[type-arg]
    assert found(archive, f"/v2/studies/{STUDY_2}/series/{SERIES_1A}/instances") == set()


# --- matching (PS3.4 C.2.2.2) ----------------------------------------------------------------

STUDIES = "/v2/studies"
SERIES = "/v2/series"
INSTANCES_ = "/v2/instances"
STUDY_1_SERIES = f"/v2/studies/{STUDY_1}/series"
STUDY_1_INSTANCES = f"/v2/studies/{STUDY_1}/instances"
SERIES_1A_INSTANCES = f"/v2/studies/{STUDY_1}/series/{SERIES_1A}/instances"

MATCHING: list[tuple[str, str, dict[str, str], set[str]]] = [
    # (what it shows, resource, query, expected UIDs)
    # single value matching
    ("study uid", STUDIES, {"StudyInstanceUID": STUDY_2}, {STUDY_2}),
    ("patient id", STUDIES, {"PatientID": "PID-2"}, {STUDY_2}),
    ("accession number", STUDIES, {"AccessionNumber": "ACC-001"}, {STUDY_1}),
    ("study description", STUDIES, {"StudyDescription": "Head CT"}, {STUDY_1}),
    ("study description is case-sensitive", STUDIES, {"StudyDescription": "head ct"}, set()),
    ("patient sex", STUDIES, {"PatientSex": "F"}, {STUDY_3}),
    ("study id", STUDIES, {"StudyID": "S-2"}, {STUDY_2}),
    ("study date", STUDIES, {"StudyDate": "20240110"}, {STUDY_1}),
    ("study time", STUDIES, {"StudyTime": "083000"}, {STUDY_1}),
    ("patient birth date", STUDIES, {"PatientBirthDate": "19800115"}, {STUDY_1}),
    ("modalities in study, one of two", STUDIES, {"ModalitiesInStudy": "MR"}, {STUDY_1}),
    ("modalities in study, several studies", STUDIES, {"ModalitiesInStudy": "CT"}, {STUDY_1, STUDY_2}),
    ("two attributes must both match", STUDIES, {"PatientSex": "M", "StudyDate": "20240201-"}, {STUDY_2}),
    # UID list matching (C.2.2.2.2)
    ("study uids, comma list", STUDIES, {"StudyInstanceUID": f"{STUDY_1},{STUDY_2}"}, {STUDY_1, STUDY_2}),
    (
        "study uids, backslash list",
        STUDIES,
        {"StudyInstanceUID": f"{STUDY_1}\\{STUDY_3}"},
        {STUDY_1, STUDY_3},
    ),
    (
        "series uids, comma list",
        SERIES,
        {"SeriesInstanceUID": f"{SERIES_1A},{SERIES_2A}"},
        {SERIES_1A, SERIES_2A},
    ),
    ("sop uids, backslash list", INSTANCES_, {"SOPInstanceUID": f"{SOP_1B1}\\{SOP_3A1}"}, {SOP_1B1, SOP_3A1}),
    ("sop class uid", INSTANCES_, {"SOPClassUID": MRImageStorage}, {SOP_1B1}),
    # wildcard matching (C.2.2.2.4), case-sensitive except for person names
    ("star matches a run", STUDIES, {"PatientID": "PID-*"}, ALL_STUDIES),
    ("star at the start", STUDIES, {"PatientID": "*2"}, {STUDY_2}),
    ("star on both sides", STUDIES, {"StudyDescription": "*ct*"}, {STUDY_2}),
    ("question mark matches one character", STUDIES, {"AccessionNumber": "ACC-00?"}, {STUDY_1, STUDY_2}),
    ("question mark needs a character", STUDIES, {"AccessionNumber": "ACC-0?"}, set()),
    ("prefix is case-sensitive", STUDIES, {"StudyDescription": "Head*"}, {STUDY_1}),
    ("lower-case prefix", STUDIES, {"StudyDescription": "head*"}, {STUDY_2}),
    ("upper-case pattern", STUDIES, {"StudyDescription": "H?ad*"}, {STUDY_1}),
    ("lower-case pattern", STUDIES, {"StudyDescription": "h?ad*"}, {STUDY_2}),
    ("wildcards are case-sensitive", STUDIES, {"PatientID": "pid-*"}, set()),
    ("underscore is not a wildcard", STUDIES, {"AccessionNumber": "ACC_00?"}, set()),
    ("underscore matches itself", STUDIES, {"AccessionNumber": "X_1*"}, {STUDY_3}),
    ("percent is not a wildcard", STUDIES, {"AccessionNumber": "*%*"}, set()),
    ("lone star matches empty values too", STUDIES, {"StudyDescription": "*"}, ALL_STUDIES),
    ("modality wildcard", SERIES, {"Modality": "?R"}, {SERIES_1B}),
    ("model name with a space", SERIES, {"ManufacturerModelName": "Scanner?X"}, {SERIES_1A, SERIES_2A}),
    ("model name suffix", SERIES, {"ManufacturerModelName": "*Y"}, {SERIES_1B}),
    ("modality is case-sensitive", SERIES, {"Modality": "ct"}, set()),
    # person names: case- and accent-insensitive
    ("person name", STUDIES, {"PatientName": "Doe^John"}, {STUDY_1}),
    ("person name in lower case", STUDIES, {"PatientName": "doe^john"}, {STUDY_1}),
    ("person name without accents", STUDIES, {"PatientName": "MULLER^HANS"}, {STUDY_2}),
    ("person name with accents", STUDIES, {"PatientName": "Müller^Hans"}, {STUDY_2}),
    ("person name prefix", STUDIES, {"PatientName": "muller*"}, {STUDY_2}),
    ("person name accented prefix", STUDIES, {"PatientName": "Mül*"}, {STUDY_2}),
    ("person name suffix", STUDIES, {"PatientName": "*hans"}, {STUDY_2}),
    ("person name one character", STUDIES, {"PatientName": "D?E^john"}, {STUDY_1}),
    ("a family name alone is not the whole name", STUDIES, {"PatientName": "Doe"}, set()),
    ("referring physician", STUDIES, {"ReferringPhysicianName": "house^gregory"}, {STUDY_1}),
    ("referring physician prefix", STUDIES, {"ReferringPhysicianName": "QUINN*"}, {STUDY_2}),
    # range matching (C.2.2.2.5), both ends inclusive
    ("birth date range", STUDIES, {"PatientBirthDate": "19751231-19800115"}, {STUDY_1, STUDY_2}),
    ("birth date range of one day", STUDIES, {"PatientBirthDate": "19800115-19800115"}, {STUDY_1}),
    ("birth date from", STUDIES, {"PatientBirthDate": "19800115-"}, {STUDY_1, STUDY_3}),
    ("birth date until", STUDIES, {"PatientBirthDate": "-19800115"}, {STUDY_1, STUDY_2}),
    ("study date range", STUDIES, {"StudyDate": "20240110-20240215"}, {STUDY_1, STUDY_2}),
    ("study date from", STUDIES, {"StudyDate": "20240101-"}, {STUDY_1, STUDY_2}),
    ("study date until", STUDIES, {"StudyDate": "-20231231"}, {STUDY_3}),
    ("study time range", STUDIES, {"StudyTime": "080000-090000"}, {STUDY_1}),
    ("study time range inclusive", STUDIES, {"StudyTime": "083000-141500"}, {STUDY_1, STUDY_2}),
    ("study time from", STUDIES, {"StudyTime": "120000-"}, {STUDY_2, STUDY_3}),
    ("study time until, hours and minutes", STUDIES, {"StudyTime": "-0830"}, {STUDY_1}),
    ("series date from", SERIES, {"SeriesDate": "20240111-"}, {SERIES_1B, SERIES_2A}),
    ("series date until", SERIES, {"SeriesDate": "-20240110"}, {SERIES_1A, SERIES_3A}),
    (
        "performed procedure step start date range",
        SERIES,
        {"PerformedProcedureStepStartDate": "20240110-20240111"},
        {SERIES_1A, SERIES_1B},
    ),
    # series and instance attributes
    ("modality", SERIES, {"Modality": "CT"}, {SERIES_1A, SERIES_2A}),
    ("series description", SERIES, {"SeriesDescription": "Axial"}, {SERIES_1A, SERIES_2A}),
    ("series description prefix", SERIES, {"SeriesDescription": "T1*"}, {SERIES_1B}),
    ("series number", SERIES, {"SeriesNumber": "2"}, {SERIES_1B}),
    ("model name", SERIES, {"ManufacturerModelName": "Scanner X"}, {SERIES_1A, SERIES_2A}),
    ("body part", SERIES, {"BodyPartExamined": "HEAD"}, {SERIES_1A, SERIES_2A}),
    ("study attribute on all series", SERIES, {"PatientName": "doe^john"}, {SERIES_1A, SERIES_1B}),
    ("study date on all series", SERIES, {"StudyDate": "20240215"}, {SERIES_2A}),
    ("modality in a study", STUDY_1_SERIES, {"Modality": "CT"}, {SERIES_1A}),
    ("series number in a study", STUDY_1_SERIES, {"SeriesNumber": "2"}, {SERIES_1B}),
    ("sop instance uid", INSTANCES_, {"SOPInstanceUID": SOP_2A1}, {SOP_2A1}),
    ("instance number", INSTANCES_, {"InstanceNumber": "2"}, {SOP_1A2}),
    ("series attribute on all instances", INSTANCES_, {"Modality": "CT"}, {SOP_1A1, SOP_1A2, SOP_2A1}),
    ("study attribute on all instances", INSTANCES_, {"PatientID": "PID-2"}, {SOP_2A1}),
    ("series uid on all instances", INSTANCES_, {"SeriesInstanceUID": SERIES_1A}, {SOP_1A1, SOP_1A2}),
    ("modality in a study's instances", STUDY_1_INSTANCES, {"Modality": "MR"}, {SOP_1B1}),
    ("instance number in a study", STUDY_1_INSTANCES, {"InstanceNumber": "1"}, {SOP_1A1, SOP_1B1}),
    ("instance number in a series", SERIES_1A_INSTANCES, {"InstanceNumber": "2"}, {SOP_1A2}),
    ("sop uid in a series", SERIES_1A_INSTANCES, {"SOPInstanceUID": SOP_1A1}, {SOP_1A1}),
    ("sop class in a series", SERIES_1A_INSTANCES, {"SOPClassUID": CTImageStorage}, {SOP_1A1, SOP_1A2}),
    # attribute IDs as eight hex digits
    ("tag for patient id", STUDIES, {"00100020": "PID-1"}, {STUDY_1}),
    ("tag for study date", STUDIES, {"00080020": "20240215"}, {STUDY_2}),
    ("tag for study uid", STUDIES, {"0020000D": STUDY_3}, {STUDY_3}),
    ("tag in lower case", SERIES, {"0008103e": "T1*"}, {SERIES_1B}),
    ("tag for modality", SERIES, {"00080060": "MR"}, {SERIES_1B}),
    ("tag for instance number", INSTANCES_, {"00200013": "1"}, {SOP_1A1, SOP_1B1, SOP_2A1, SOP_3A1}),
]


def test_matching_finds_exactly_the_entities_whose_attributes_match(
    archive: TestClient,  # type: ignore[type-arg]
    subtests: pytest.Subtests,
) -> None:
    for what, resource, query, expected in MATCHING:
        with subtests.test(what, resource=resource, query=query):
            assert found(archive, resource, query) == expected


def test_every_searchable_attribute_is_accepted_on_the_resources_that_hold_its_level(
    archive: TestClient,  # type: ignore[type-arg]
) -> None:
    """The Azure set and the rest of the README's list, each matching study 1's values."""
    study = {
        "StudyInstanceUID": STUDY_1,
        "PatientName": "Doe^John",
        "PatientID": "PID-1",
        "PatientBirthDate": "19800115",
        "PatientSex": "M",
        "AccessionNumber": "ACC-001",
        "ReferringPhysicianName": "House^Gregory",
        "StudyDate": "20240110",
        "StudyTime": "083000",
        "StudyDescription": "Head CT",
        "StudyID": "S-1",
        "ModalitiesInStudy": "CT",
    }
    series = {
        "SeriesInstanceUID": SERIES_1A,
        "Modality": "CT",
        "SeriesDescription": "Axial",
        "SeriesNumber": "1",
        "SeriesDate": "20240110",
        "PerformedProcedureStepStartDate": "20240110",
        "ManufacturerModelName": "Scanner X",
        "BodyPartExamined": "HEAD",
    }
    instance = {"SOPInstanceUID": SOP_1A2, "SOPClassUID": CTImageStorage, "InstanceNumber": "2"}
    for keyword, text in study.items():
        assert STUDY_1 in found(archive, STUDIES, {keyword: text}), keyword
        assert STUDY_1 in {m[STUDY_UID]["Value"][0] for m in search(archive, SERIES, {keyword: text})}
        assert STUDY_1 in {m[STUDY_UID]["Value"][0] for m in search(archive, INSTANCES_, {keyword: text})}
    for keyword, text in series.items():
        assert found(archive, SERIES, {keyword: text}) >= {SERIES_1A}, keyword
        assert found(archive, STUDY_1_SERIES, {keyword: text}) == {SERIES_1A}, keyword
        assert found(archive, STUDY_1_INSTANCES, {keyword: text}) == {SOP_1A1, SOP_1A2}, keyword
    for keyword, text in instance.items():
        assert SOP_1A2 in found(archive, INSTANCES_, {keyword: text}), keyword
        assert SOP_1A2 in found(archive, SERIES_1A_INSTANCES, {keyword: text}), keyword


# --- fuzzy matching ------------------------------------------------------------------------------

FUZZY = [
    ("joh", {STUDY_1}),
    ("JOH", {STUDY_1}),
    ("do jo", {STUDY_1}),
    ("doe^john", {STUDY_1}),
    ("hans mul", {STUDY_2}),
    ("mül", {STUDY_2}),
    ("ohn", set()),
    ("oe", set()),
    ("jo xyz", set()),
]


def test_fuzzy_matching_finds_a_name_by_the_start_of_any_component(
    archive: TestClient,  # type: ignore[type-arg]
    subtests: pytest.Subtests,
) -> None:
    for name, expected in FUZZY:
        with subtests.test(name):
            assert found(archive, STUDIES, {"PatientName": name, "fuzzymatching": "true"}) == expected


def test_fuzzy_matching_applies_to_the_referring_physician_too(archive: TestClient) -> None:  # type: ignore[type-arg]
    assert found(archive, STUDIES, {"ReferringPhysicianName": "greg", "fuzzymatching": "true"}) == {STUDY_1}


def test_fuzzy_matching_works_on_series_and_instance_searches(archive: TestClient) -> None:  # type: ignore[type-arg]
    query = {"PatientName": "joh", "fuzzymatching": "true"}
    assert found(archive, SERIES, query) == {SERIES_1A, SERIES_1B}
    assert found(archive, INSTANCES_, query) == {SOP_1A1, SOP_1A2, SOP_1B1}


def test_without_fuzzy_matching_a_name_prefix_matches_nothing(archive: TestClient) -> None:  # type: ignore[type-arg]
    assert found(archive, STUDIES, {"PatientName": "joh"}) == set()
    assert found(archive, STUDIES, {"PatientName": "joh", "fuzzymatching": "false"}) == set()


# --- percent-encoding ----------------------------------------------------------------------------


PERCENT_ENCODED = [
    ("/v2/studies?PatientName=Doe%5EJohn", {STUDY_1}),
    ("/v2/studies?PatientName=M%C3%BCller%5EHans", {STUDY_2}),
    ("/v2/studies?PatientName=Doe%5EJ%2A", {STUDY_1}),
    (f"/v2/studies?StudyInstanceUID={STUDY_1}%2C{STUDY_2}", {STUDY_1, STUDY_2}),
    (f"/v2/studies?StudyInstanceUID={STUDY_1}%5C{STUDY_3}", {STUDY_1, STUDY_3}),
    ("/v2/series?ManufacturerModelName=Scanner%20X", {SERIES_1A, SERIES_2A}),
    ("/v2/studies?%50atientID=PID-3", {STUDY_3}),
]


def test_percent_encoded_query_values_are_decoded(archive: TestClient, subtests: pytest.Subtests) -> None:  # type: ignore[type-arg]
    for url, expected in PERCENT_ENCODED:
        with subtests.test(url):
            assert found(archive, url) == expected


# --- returned attributes ---------------------------------------------------------------------


def test_a_study_result_holds_the_study_attributes_and_where_to_retrieve_it(archive: TestClient) -> None:  # type: ignore[type-arg]
    study = by_uid(search(archive, STUDIES), STUDY_UID)[STUDY_1]
    assert value(study, "00100010") == [{"Alphabetic": "Doe^John"}]  # PatientName
    assert value(study, "00100020") == ["PID-1"]  # PatientID
    assert value(study, "00100030") == ["19800115"]  # PatientBirthDate
    assert value(study, "00100040") == ["M"]  # PatientSex
    assert value(study, "00080050") == ["ACC-001"]  # AccessionNumber
    assert value(study, "00080090") == [{"Alphabetic": "House^Gregory"}]  # ReferringPhysicianName
    assert value(study, "00080020") == ["20240110"]  # StudyDate
    assert value(study, "00080030")[0].startswith("083000")  # StudyTime
    assert value(study, "00081030") == ["Head CT"]  # StudyDescription
    assert value(study, "00200010") == ["S-1"]  # StudyID
    assert study["00081190"]["vr"] == "UR"
    assert value(study, "00081190")[0].endswith(f"/v2/studies/{STUDY_1}")  # RetrieveURL
    assert study["00100010"]["vr"] == "PN"
    assert study["00080020"]["vr"] == "DA"


def test_a_person_name_is_returned_as_stored_not_as_normalized(archive: TestClient) -> None:  # type: ignore[type-arg]
    (study,) = search(archive, STUDIES, {"PatientName": "muller^hans"})
    assert value(study, "00100010") == [{"Alphabetic": "Müller^Hans"}]


def test_a_series_result_holds_the_series_attributes(archive: TestClient) -> None:  # type: ignore[type-arg]
    series = by_uid(search(archive, STUDY_1_SERIES), SERIES_UID)
    ct = series[SERIES_1A]
    assert value(ct, "00080060") == ["CT"]  # Modality
    assert value(ct, "0008103E") == ["Axial"]  # SeriesDescription
    assert value(ct, "00200011") == [1]  # SeriesNumber
    assert value(ct, "00400244") == ["20240110"]  # PerformedProcedureStepStartDate
    assert value(ct, "00081190")[0].endswith(f"/v2/studies/{STUDY_1}/series/{SERIES_1A}")
    assert value(series[SERIES_1B], "00080060") == ["MR"]


def test_an_instance_result_holds_its_series_and_study_when_searched_from_the_top(
    archive: TestClient,  # type: ignore[type-arg]
) -> None:
    found_instances = by_uid(search(archive, INSTANCES_), SOP_UID)
    mr = found_instances[SOP_1B1]
    assert value(mr, "00080016") == [MRImageStorage]  # SOPClassUID
    assert value(mr, "00200013") == [1]  # InstanceNumber
    assert value(mr, SERIES_UID) == [SERIES_1B]
    assert value(mr, STUDY_UID) == [STUDY_1]
    assert value(mr, "00080060") == ["MR"]
    assert value(mr, "00100020") == ["PID-1"]
    assert value(mr, "00081190")[0].endswith(f"/v2/studies/{STUDY_1}/series/{SERIES_1B}/instances/{SOP_1B1}")


def test_modalities_in_study_lists_the_modality_of_every_series(archive: TestClient) -> None:  # type: ignore[type-arg]
    studies = by_uid(search(archive, STUDIES), STUDY_UID)
    assert studies[STUDY_1]["00080061"]["vr"] == "CS"
    assert sorted(value(studies[STUDY_1], "00080061")) == ["CT", "MR"]
    assert value(studies[STUDY_2], "00080061") == ["CT"]
    assert value(studies[STUDY_3], "00080061") == ["DX"]


def test_a_study_counts_its_series_and_instances(archive: TestClient) -> None:  # type: ignore[type-arg]
    studies = by_uid(search(archive, STUDIES), STUDY_UID)
    assert value(studies[STUDY_1], "00201206") == [2]  # NumberOfStudyRelatedSeries
    assert value(studies[STUDY_1], "00201208") == [3]  # NumberOfStudyRelatedInstances
    assert value(studies[STUDY_2], "00201206") == [1]
    assert value(studies[STUDY_2], "00201208") == [1]


def test_a_series_counts_its_instances(archive: TestClient) -> None:  # type: ignore[type-arg]
    series = by_uid(search(archive, SERIES), SERIES_UID)
    assert value(series[SERIES_1A], "00201209") == [2]  # NumberOfSeriesRelatedInstances
    assert value(series[SERIES_1B], "00201209") == [1]


def test_computed_attributes_follow_what_is_stored_later(archive: TestClient) -> None:  # type: ignore[type-arg]
    store(archive, [instance(STUDY_2, SERIES_2B, f"{SERIES_2B}.1", MRImageStorage, 1)])
    store(archive, [instance(STUDY_1, SERIES_1B, f"{SERIES_1B}.2", MRImageStorage, 2)])
    study_2 = by_uid(search(archive, STUDIES), STUDY_UID)[STUDY_2]
    assert sorted(value(study_2, "00080061")) == ["CT", "MR"]
    assert value(study_2, "00201206") == [2]
    assert value(study_2, "00201208") == [2]
    assert found(archive, STUDIES, {"ModalitiesInStudy": "MR"}) == {STUDY_1, STUDY_2}
    series_1b = by_uid(search(archive, STUDY_1_SERIES), SERIES_UID)[SERIES_1B]
    assert value(series_1b, "00201209") == [2]
    study_1 = by_uid(search(archive, STUDIES), STUDY_UID)[STUDY_1]
    assert value(study_1, "00201208") == [4]


def test_a_matched_attribute_is_returned_even_at_another_level(archive: TestClient) -> None:  # type: ignore[type-arg]
    (series,) = search(archive, SERIES, {"StudyDate": "20240215"})
    assert value(series, "00080020") == ["20240215"]
    (series,) = search(archive, SERIES, {"BodyPartExamined": "BRAIN"})
    assert value(series, "00180015") == ["BRAIN"]


# --- includefield ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"includefield": "ManufacturerModelName"},
        {"includefield": "00081090"},
        {"includefield": "ManufacturerModelName,BodyPartExamined,SeriesDate"},
        [
            ("includefield", "ManufacturerModelName"),
            ("includefield", "00180015"),
            ("includefield", "SeriesDate"),
        ],
    ],
    ids=["keyword", "tag", "comma list", "repeated"],
)
def test_includefield_adds_the_named_attributes(archive: TestClient, params: Any) -> None:  # type: ignore[type-arg]
    series = by_uid(search(archive, SERIES, params), SERIES_UID)[SERIES_1B]
    assert value(series, "00081090") == ["Magnet Y"]
    if "SeriesDate" in str(params):
        assert value(series, "00180015") == ["BRAIN"]
        assert value(series, "00080021") == ["20240111"]


def test_includefield_can_name_attributes_only_the_stored_header_holds(archive: TestClient) -> None:  # type: ignore[type-arg]
    study = by_uid(search(archive, STUDIES, {"includefield": "PatientAge"}), STUDY_UID)[STUDY_1]
    assert value(study, "00101010") == ["044Y"]
    (mr,) = search(archive, INSTANCES_, {"SOPInstanceUID": SOP_1B1, "includefield": "00280010"})
    assert value(mr, "00280010") == [8]  # Rows


def test_includefield_can_ask_for_the_computed_study_attributes_on_series(archive: TestClient) -> None:  # type: ignore[type-arg]
    params = {"includefield": "NumberOfStudyRelatedInstances,00080061"}
    series = by_uid(search(archive, SERIES, params), SERIES_UID)[SERIES_1A]
    assert value(series, "00201208") == [3]
    assert sorted(value(series, "00080061")) == ["CT", "MR"]


def test_includefield_all_returns_every_attribute_of_the_level(archive: TestClient) -> None:  # type: ignore[type-arg]
    study = by_uid(search(archive, STUDIES, {"includefield": "all"}), STUDY_UID)[STUDY_1]
    assert value(study, "00101010") == ["044Y"]  # PatientAge, from PS3.18 Table 10.6.3-3
    assert value(study, "00100010") == [{"Alphabetic": "Doe^John"}]
    (mr,) = search(archive, INSTANCES_, {"SOPInstanceUID": SOP_1B1, "includefield": "all"})
    assert value(mr, "00280010") == [8]  # Rows
    assert value(mr, "00280101") == [8]  # BitsStored
    assert value(mr, "00080060") == ["MR"]


def test_includefield_all_together_with_a_keyword_is_accepted(archive: TestClient) -> None:  # type: ignore[type-arg]
    params = [("includefield", "all"), ("includefield", "PatientAge")]
    assert found(archive, STUDIES, params) == ALL_STUDIES


# --- paging ------------------------------------------------------------------------------------


def test_limit_and_offset_page_through_every_match_exactly_once(
    archive: TestClient,  # type: ignore[type-arg]
    subtests: pytest.Subtests,
) -> None:
    for path, expected in RESOURCES:
        with subtests.test(path):
            pages: list[set[str]] = []
            for offset in range(0, len(expected) + 2, 2):
                page = found(archive, path, {"limit": "2", "offset": str(offset)})
                assert len(page) <= 2
                pages.append(page)
            assert set().union(*pages) == expected
            assert sum(len(p) for p in pages) == len(expected)  # disjoint


def test_limit_applies_after_matching(archive: TestClient) -> None:  # type: ignore[type-arg]
    first = found(archive, INSTANCES_, {"Modality": "CT", "limit": "2"})
    rest = found(archive, INSTANCES_, {"Modality": "CT", "limit": "2", "offset": "2"})
    assert len(first) == 2
    assert first | rest == {SOP_1A1, SOP_1A2, SOP_2A1}
    assert not first & rest


def test_an_offset_past_the_end_finds_nothing(archive: TestClient) -> None:  # type: ignore[type-arg]
    assert found(archive, STUDIES, {"offset": "3"}) == set()
    assert found(archive, STUDIES, {"offset": "100", "limit": "5"}) == set()


def test_a_limit_the_client_chose_is_not_reported_as_the_servers_maximum(archive: TestClient) -> None:  # type: ignore[type-arg]
    """PS3.18 8.3.4.4: the 299 Warning says the *server's* maximum cut the results short."""
    response = archive.get(STUDIES, params={"limit": "1"})
    assert response.status_code == 200
    assert len(response.json()) == 1
    assert "warning" not in response.headers, response.headers.get("warning")


def test_a_limit_above_the_servers_maximum_warns_only_when_results_are_cut_short(
    archive: TestClient,  # type: ignore[type-arg]
) -> None:
    response = archive.get(STUDIES, params={"limit": "100000"})
    assert response.status_code == 200
    assert len(response.json()) == 3  # all of them: nothing was cut short
    assert "warning" not in response.headers, response.headers.get("warning")


# --- errors ------------------------------------------------------------------------------------

ERRORS: list[tuple[str, str, Any, str]] = [
    # (what it shows, resource, query, what the detail must name)
    ("unknown keyword", STUDIES, {"NoSuchAttribute": "x"}, "NoSuchAttribute"),
    ("keyword in the wrong case", STUDIES, {"patientname": "x"}, "patientname"),
    ("unknown tag", STUDIES, {"00091001": "x"}, "00091001"),
    ("instance attribute on studies", STUDIES, {"SOPInstanceUID": SOP_1A1}, "SOPInstanceUID"),
    ("series attribute on studies", STUDIES, {"Modality": "CT"}, "Modality"),
    ("instance attribute on series", SERIES, {"SOPInstanceUID": SOP_1A1}, "SOPInstanceUID"),
    ("instance attribute tag on series", SERIES, {"00200013": "1"}, "InstanceNumber"),
    (
        "computed count is not searchable",
        STUDIES,
        {"NumberOfStudyRelatedSeries": "2"},
        "NumberOfStudyRelatedSeries",
    ),
    ("malformed date", STUDIES, {"StudyDate": "20241301"}, "StudyDate"),
    ("date with dashes", STUDIES, {"StudyDate": "2024-01-10"}, "StudyDate"),
    ("short date", STUDIES, {"PatientBirthDate": "198001"}, "PatientBirthDate"),
    ("reversed date range", STUDIES, {"StudyDate": "20240301-20240101"}, "StudyDate"),
    ("date range of nothing", STUDIES, {"StudyDate": "-"}, "StudyDate"),
    ("malformed series date", SERIES, {"SeriesDate": "yesterday"}, "SeriesDate"),
    (
        "reversed pps date range",
        SERIES,
        {"PerformedProcedureStepStartDate": "20240111-20240110"},
        "PerformedProcedureStepStartDate",
    ),
    ("malformed time", STUDIES, {"StudyTime": "2500"}, "StudyTime"),
    ("reversed time range", STUDIES, {"StudyTime": "140000-080000"}, "StudyTime"),
    ("malformed uid", STUDIES, {"StudyInstanceUID": "1.2.abc"}, "StudyInstanceUID"),
    ("malformed uid in a list", SERIES, {"SeriesInstanceUID": f"{SERIES_1A},x.y"}, "SeriesInstanceUID"),
    ("malformed number", SERIES, {"SeriesNumber": "two"}, "SeriesNumber"),
    ("limit zero", STUDIES, {"limit": "0"}, "limit"),
    ("limit not a number", STUDIES, {"limit": "abc"}, "limit"),
    ("negative limit", STUDIES, {"limit": "-5"}, "limit"),
    ("negative offset", STUDIES, {"offset": "-1"}, "offset"),
    ("offset not a number", STUDIES, {"offset": "x"}, "offset"),
    ("fuzzymatching neither true nor false", STUDIES, {"fuzzymatching": "maybe"}, "fuzzymatching"),
    ("unknown includefield", STUDIES, {"includefield": "NoSuchAttribute"}, "includefield"),
    ("malformed uid in the path", f"/v2/studies/{STUDY_1}.x/series", None, "StudyInstanceUID"),
    (
        "malformed series uid in the path",
        f"/v2/studies/{STUDY_1}/series/abc/instances",
        None,
        "SeriesInstanceUID",
    ),
]


def test_a_malformed_query_is_a_400_problem_that_names_the_parameter(
    archive: TestClient,  # type: ignore[type-arg]
    subtests: pytest.Subtests,
) -> None:
    for what, resource, query, named in ERRORS:
        with subtests.test(what, resource=resource, query=query):
            response = archive.get(resource, params=query)
            assert response.status_code == 400, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            problem = response.json()
            assert problem["status"] == 400
            assert named in problem["detail"], problem["detail"]


def test_every_resource_rejects_an_attribute_it_cannot_search(archive: TestClient) -> None:  # type: ignore[type-arg]
    for path, _ in RESOURCES:
        response = archive.get(path, params={"NoSuchAttribute": "1"})
        assert response.status_code == 400, path
        assert "NoSuchAttribute" in response.json()["detail"]
