"""No request, however malformed, gets a 500: each gets a 4xx with a problem body that says
what to fix, and nothing is stored by it."""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import quote

import pytest
from litestar.testing import TestClient

from domain.settings import Settings
from tests.dicom_factory import make_dataset, multipart, to_bytes

UID = "1.2.3"
NASTY_VALUES = [
    "",
    "*",
    "?",
    "\\",
    ",",
    "-",
    "--",
    "%00",
    "\x00",
    "😀",
    "a" * 5000,
    "1.2..3",
    "..",
    "-1",
    "1e309",
]
PATHS = [
    "/v2/studies/{v}",
    "/v2/studies/{v}/metadata",
    "/v2/studies/{v}/series",
    "/v2/studies/{v}/instances",
    "/v2/studies/1.2/series/{v}",
    "/v2/studies/1.2/series/{v}/metadata",
    "/v2/studies/1.2/series/1.3/instances/{v}",
    "/v2/studies/1.2/series/1.3/instances/{v}/metadata",
]
QUERY_KEYS = [
    "PatientName",
    "StudyDate",
    "StudyTime",
    "00100020",
    "SeriesNumber",
    "ModalitiesInStudy",
    "StudyInstanceUID",
    "limit",
    "offset",
    "includefield",
    "fuzzymatching",
    "0010",
    "x" * 300,
]
ACCEPTS = ["", "*/*", "image/png", "application/dicom; q=abc", 'multipart/related; type="', "a/b/c", ";;;,,,"]
CONTENT_TYPES = [
    "",
    "application/dicom",
    "multipart/related",
    'multipart/related; type="application/dicom"',
    'multipart/related; type="application/dicom"; boundary=',
    'multipart/related; type="application/dicom"; boundary="x"',
    'multipart/related; type="application/dicom+json"; boundary=x',
    "text/plain; charset=utf-8",
]


def assert_client_error(response: Any) -> None:
    """A 2xx, or a 4xx that explains itself: a problem body, or STOW's per-instance failures."""
    status = response.status_code
    assert 200 <= status < 500, f"{status}: {response.text[:300]}"
    if status == 409 and "00081198" in response.json():  # PS3.18 10.5.3: none stored
        return
    if status >= 400:
        body = response.json()
        assert body.get("status") == status and body.get("detail"), response.text[:300]


@pytest.mark.parametrize("path", PATHS)
def test_malformed_uids_in_the_path_are_client_errors(client: TestClient, path: str) -> None:  # type: ignore[type-arg]
    for value in NASTY_VALUES:
        for method in ("GET", "DELETE"):
            assert_client_error(client.request(method, path.format(v=quote(value, safe=""))))


def test_random_queries_and_headers_are_client_errors(client: TestClient) -> None:  # type: ignore[type-arg]
    client.post(
        "/v2/studies", content=to_bytes(make_dataset()), headers={"Content-Type": "application/dicom"}
    )
    rng = random.Random(20261130)
    for _ in range(300):
        params = [(rng.choice(QUERY_KEYS), rng.choice(NASTY_VALUES)) for _ in range(rng.randint(1, 3))]
        resource = rng.choice(["/v2/studies", "/v2/series", "/v2/instances", f"/v2/studies/{UID}/series"])
        assert_client_error(client.get(resource, params=params, headers={"Accept": rng.choice(ACCEPTS)}))


def test_malformed_bodies_store_nothing(client: TestClient, settings: Settings) -> None:  # type: ignore[type-arg]
    good, _ = multipart([to_bytes(make_dataset())])
    rng = random.Random(7)
    bodies = [
        b"",
        b"\r\n",
        b"--x\r\n\r\n",
        good[: len(good) // 2],
        good.replace(b"\r\n", b"\n"),
        bytes(range(256)),
    ]
    bodies += [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4000))) for _ in range(20)]
    for body in bodies:
        for content in CONTENT_TYPES:
            response = client.post("/v2/studies", content=body, headers={"Content-Type": content})
            assert_client_error(response)
            assert response.status_code != 200
    assert client.get("/v2/instances").json() == []
    assert not [p for p in settings.blob_dir.rglob("*") if p.is_file()]
    assert not [p for p in settings.spool_dir.rglob("*") if p.is_file()]
