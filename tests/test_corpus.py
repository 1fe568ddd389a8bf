"""Every file of pydicom's test data through STOW-RS, WADO-RS and QIDO-RS, one file per request.

Valid Part-10 instances come back byte for byte (but the zeroed preamble), are found by their
SOPInstanceUID, and their metadata says what pydicom reads from them. Everything else (not DICOM,
no file meta, truncated, missing a required UID) is refused with 43264 and leaves nothing behind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest
from litestar.testing import TestClient
from pydicom.dataelem import DataElement
from pydicom.multival import MultiValue

from domain.settings import Settings
from tests.conftest import TEST_FILES
from tests.dicom_factory import multipart, parse_multipart

Client = TestClient  # type: ignore[type-arg]

AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'
CANNOT_UNDERSTAND = 43264
INSTANCE_CONFLICT = 45070
BULK_DATA_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}
NUMERIC_VRS = {"DS", "IS", "US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"}
INLINE_LIMIT = 1024
REQUIRED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")  # PS3.5 9.1, leading zeros tolerated as real archives hold them
# Cut short by design in pydicom's test data; pydicom itself reads them without complaint.
KNOWN_TRUNCATED = {"MR_truncated.dcm", "rtplan_truncated.dcm"}

CORPUS = sorted(p for p in TEST_FILES.rglob("*") if p.is_file())


@dataclass(frozen=True)
class Instance:
    path: Path
    study_uid: str
    series_uid: str
    sop_uid: str

    @property
    def name(self) -> str:
        return str(self.path.relative_to(TEST_FILES))


def valid_instance(path: Path) -> Instance | None:
    """The file as a storable Part-10 instance, or None when it must be refused."""
    if path.name in KNOWN_TRUNCATED:
        return None
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)  # no force: a Part-10 file or nothing
    except Exception:
        return None
    syntax = str(ds.file_meta.get("TransferSyntaxUID", "") or "")
    uids = [str(ds.get(keyword, "") or "").rstrip("\x00 ") for keyword in REQUIRED_UIDS]
    if not all(UID.match(uid) and len(uid) <= 64 for uid in [syntax, *uids]):
        return None
    return Instance(path, uids[0], uids[1], uids[2])


CLASSIFIED = [(path, valid_instance(path)) for path in CORPUS]
VALID = [instance for _, instance in CLASSIFIED if instance is not None]
BROKEN = [path for path, instance in CLASSIFIED if instance is None]


def test_the_corpus_has_both_valid_and_broken_files() -> None:
    names = {path.name for path in BROKEN}
    assert {"MR_truncated.dcm", "no_meta.dcm", "README.txt", "test1.json", "zipMR.gz"} <= names
    assert {"CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "waveform_ecg.dcm"} <= {
        i.path.name for i in VALID
    }


def post_file(client: Client, body: bytes) -> Any:
    return client.post("/v2/studies", content=body, headers={"Content-Type": "application/dicom"})


def failure_reasons(response: Any) -> list[int]:
    return [item["00081197"]["Value"][0] for item in response.json().get("00081198", {}).get("Value", [])]


def referenced_uids(response: Any) -> list[str]:
    return [item["00081155"]["Value"][0] for item in response.json().get("00081199", {}).get("Value", [])]


def blob_files(settings: Settings) -> list[Path]:
    return sorted(p for p in settings.blob_dir.rglob("*") if p.is_file())


def instance_url(instance: Instance) -> str:
    return f"/v2/studies/{instance.study_uid}/series/{instance.series_uid}/instances/{instance.sop_uid}"


# --- comparing metadata with what pydicom reads ----------------------------------------------


def is_left_out(element: DataElement) -> bool:
    """File meta, group lengths (retired, PS3.5 7.2: they describe the encoding) and bulk data."""
    return element.tag.group == 0x0002 or element.tag.element == 0x0000 or is_bulk_data(element)


def is_bulk_data(element: DataElement) -> bool:
    return element.VR in BULK_DATA_VRS and element.value is not None and len(element.value) > INLINE_LIMIT


def comparable(element: DataElement) -> Any:
    """A value to compare across the JSON round trip: numbers as floats, text as str, SQ recursively."""
    if element.VR == "SQ":
        return [comparable_items(item) for item in element.value]
    value = element.value
    if value is None or value == "" or value == b"":
        return None
    values = list(value) if isinstance(value, (list, MultiValue)) else [value]
    if not values:
        return None
    if element.VR in NUMERIC_VRS:
        return [None if v in (None, "") else float(v) for v in values]
    if isinstance(values[0], bytes):
        return values
    return [str(v) for v in values]


def comparable_items(ds: pydicom.Dataset) -> dict[str, Any]:
    return {f"{e.tag:08X}": comparable(e) for e in ds if not is_left_out(e)}


def metadata_differences(path: Path, document: dict[str, Any], warned: str = "") -> list[str]:
    """What differs from pydicom's reading; an element whose value does not conform to its VR
    may be left out, as long as the store warned about it (`warned` holds the warnings)."""
    expected = pydicom.dcmread(path, stop_before_pixels=True)
    got = pydicom.Dataset.from_json(document)
    differences = []
    for element in expected:
        if is_left_out(element):
            continue
        name = f"{element.tag} {element.keyword or 'private'}"
        if element.tag not in got:
            if f"({element.tag.group:04X},{element.tag.elem:04X})" in warned:
                continue
            differences.append(f"{name} is missing from the metadata")
        elif (want := comparable(element)) != (have := comparable(got[element.tag])):
            differences.append(f"{name}: file has {want!r:.120}, metadata {have!r:.120}")
    return differences


# --- the corpus, one file per request --------------------------------------------------------


def check_round_trip(client: Client, instance: Instance) -> list[str]:
    """Store one valid file, then retrieve, find and describe it; returns what went wrong."""
    raw = instance.path.read_bytes()
    stored = post_file(client, raw)
    if stored.status_code not in (200, 202) or referenced_uids(stored) != [instance.sop_uid]:
        return [f"STOW answered {stored.status_code}: {stored.text[:300]}"]
    problems = []
    if failure_reasons(stored):
        problems.append(f"STOW reported failures {failure_reasons(stored)}")
    retrieved = client.get(instance_url(instance), headers={"Accept": AS_STORED})
    if retrieved.status_code != 200:
        problems.append(f"WADO answered {retrieved.status_code}")
    else:
        parts = parse_multipart(retrieved.content, retrieved.headers["content-type"])
        if len(parts) != 1:
            problems.append(f"WADO returned {len(parts)} parts")
        elif parts[0][1][:128] != bytes(128) or parts[0][1][128:] != raw[128:]:
            problems.append("WADO did not return the stored bytes (but the zeroed preamble)")
    found = client.get("/v2/instances", params={"SOPInstanceUID": instance.sop_uid})
    if found.status_code != 200 or [a["00080018"]["Value"][0] for a in found.json()] != [instance.sop_uid]:
        problems.append(f"QIDO by SOPInstanceUID answered {found.status_code}: {found.text[:200]}")
    metadata = client.get(instance_url(instance) + "/metadata")
    if metadata.status_code != 200 or len(metadata.json()) != 1:
        problems.append(f"metadata answered {metadata.status_code}: {metadata.text[:200]}")
    else:
        problems += metadata_differences(instance.path, metadata.json()[0], stored.text)
    return problems


def test_every_valid_file_is_stored_and_comes_back_as_it_was(client: Client, settings: Settings) -> None:
    """Each file into an empty archive: several of pydicom's files share one SOPInstanceUID."""
    problems = []
    for instance in VALID:
        problems += [f"{instance.name}: {p}" for p in check_round_trip(client, instance)]
        deleted = client.delete(f"/v2/studies/{instance.study_uid}")
        if deleted.status_code != 204:
            problems.append(f"{instance.name}: DELETE of its study answered {deleted.status_code}")
        if blob_files(settings):
            problems.append(f"{instance.name}: blob files left after deleting its study")
    assert not problems, "\n".join(problems)


def test_every_broken_file_is_refused_with_43264_and_nothing_is_stored(
    client: Client, settings: Settings
) -> None:
    problems = []
    for path in BROKEN:
        response = post_file(client, path.read_bytes())
        name = str(path.relative_to(TEST_FILES))
        if response.status_code != 409 or failure_reasons(response) != [CANNOT_UNDERSTAND]:
            problems.append(f"{name}: answered {response.status_code} {response.text[:200]}")
        if blob_files(settings):
            problems.append(f"{name}: left blob files behind")
            study_url = response.json()["00081190"]["Value"][0]
            client.delete("/v2/studies/" + study_url.rsplit("/", 1)[-1])
    assert client.get("/v2/instances").json() == []
    assert not problems, "\n".join(problems)


def test_the_whole_corpus_into_one_archive_refuses_other_content_under_a_stored_uid(
    client: Client, settings: Settings
) -> None:
    """Sent one multipart request per file: identical bytes are accepted again, other bytes are 45070."""
    first_stored: dict[str, bytes] = {}  # SOPInstanceUID -> the bytes stored, preamble zeroed
    problems = []
    for path, instance in CLASSIFIED:
        raw = path.read_bytes()
        body, content_type = multipart([raw])
        response = client.post("/v2/studies", content=body, headers={"Content-Type": content_type})
        name = str(path.relative_to(TEST_FILES))
        if instance is None:
            expected_status, expected_failures = [409], [CANNOT_UNDERSTAND]
        elif instance.sop_uid not in first_stored or first_stored[instance.sop_uid] == bytes(128) + raw[128:]:
            expected_status, expected_failures = [200, 202], []
            first_stored.setdefault(instance.sop_uid, bytes(128) + raw[128:])
        else:
            expected_status, expected_failures = [409], [INSTANCE_CONFLICT]
        if response.status_code not in expected_status or failure_reasons(response) != expected_failures:
            problems.append(
                f"{name}: expected {expected_status} {expected_failures}, got {response.status_code} "
                f"{failure_reasons(response)}"
            )
    assert len(blob_files(settings)) == len(first_stored)
    found = client.get("/v2/instances", params={"limit": "1000"}).json()
    assert {answer["00080018"]["Value"][0] for answer in found} == set(first_stored)
    for instance in VALID:
        if first_stored.get(instance.sop_uid) == bytes(128) + instance.path.read_bytes()[128:]:
            response = client.get(
                instance_url(instance), headers={"Accept": "application/dicom; transfer-syntax=*"}
            )
            if response.content != first_stored[instance.sop_uid]:
                problems.append(f"{instance.name}: the stored bytes changed")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", ["MR_small.dcm", "CT_small.dcm", "rtplan.dcm", "waveform_ecg.dcm"])
def test_a_typical_file_round_trips(client: Client, name: str) -> None:
    """The corpus check on single files, for a readable failure when one of them breaks."""
    (instance,) = [i for i in VALID if i.path.name == name]
    assert check_round_trip(client, instance) == []
