"""Bulk data (PS3.18 10.4.1.1.5, F.2.6) and cached metadata (ETag, If-None-Match).

Metadata never inlines pixel data or large binary values: it gives a BulkDataURI, and GET on
that URI returns the bytes as multipart/related parts of application/octet-stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from dicomweb_client import DICOMwebClient
from litestar.testing import TestClient
from pydicom.encaps import generate_frames
from pydicom.uid import JPEG2000Lossless

from tests.conftest import dicom_file
from tests.dicom_factory import make_dataset, parse_multipart, to_bytes
from tests.server import running_server

Client = TestClient  # type: ignore[type-arg]
OCTETS = {"Accept": 'multipart/related; type="application/octet-stream"'}


def store(client: Client, body: bytes) -> None:
    response = client.post("/v2/studies", content=body, headers={"Content-Type": "application/dicom"})
    assert response.status_code in (200, 202), response.text


def instance_url(ds: pydicom.Dataset) -> str:
    return f"/v2/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"


def metadata_of(client: Client, ds: pydicom.Dataset) -> dict[str, Any]:
    (document,) = client.get(instance_url(ds) + "/metadata").json()
    return document  # type: ignore[no-any-return]


def bulk(client: Client, uri: str) -> list[bytes]:
    response = client.get(uri.removeprefix(str(client.base_url)), headers=OCTETS)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith('multipart/related; type="application/octet-stream"')
    return [content for _, content in parse_multipart(response.content, response.headers["content-type"])]


def test_native_pixel_data_is_referenced_and_returned_byte_for_byte(client: Client) -> None:
    path = dicom_file("MR_small.dcm")
    original = pydicom.dcmread(path)
    store(client, path.read_bytes())
    element = metadata_of(client, original)["7FE00010"]
    assert element["vr"] == "OW" and "InlineBinary" not in element
    assert element["BulkDataURI"].startswith("http://testserver.local/v2/studies/")
    (pixels,) = bulk(client, element["BulkDataURI"])
    assert pixels == original.PixelData


def test_encapsulated_pixel_data_comes_back_one_part_per_frame(client: Client) -> None:
    ds = make_dataset(rows=64, columns=64, NumberOfFrames=3)
    ds.PixelData = (np.arange(3 * 64 * 64) % 251).astype(np.uint8).tobytes()
    ds.compress(JPEG2000Lossless, generate_instance_uid=False)
    store(client, to_bytes(ds))
    frames = bulk(client, metadata_of(client, ds)["7FE00010"]["BulkDataURI"])
    assert frames == list(generate_frames(ds.PixelData, number_of_frames=3))


def test_large_binary_values_are_referenced_and_small_ones_inline(client: Client) -> None:
    path = dicom_file("examples_overlay.dcm")
    original = pydicom.dcmread(path)
    store(client, path.read_bytes())
    document = metadata_of(client, original)
    overlay = document["60003000"]  # OverlayData, 10 kB
    assert "InlineBinary" not in overlay
    (value,) = bulk(client, overlay["BulkDataURI"])
    assert value == original[0x60003000].value
    small = [t for t, e in document.items() if "InlineBinary" in e]
    assert all(len(original[int(t, 16)].value) <= 1024 for t in small)


def test_bulk_data_that_does_not_exist_is_404_and_a_malformed_tag_400(client: Client) -> None:
    ds = make_dataset()
    store(client, to_bytes(ds))
    missing = client.get(instance_url(ds) + "/bulkdata/60003000", headers=OCTETS)
    assert missing.status_code == 404 and "60003000"[:4] in missing.json()["detail"]
    assert client.get(instance_url(ds) + "/bulkdata/PixelData", headers=OCTETS).status_code == 400
    assert (
        client.get(instance_url(ds) + "/bulkdata/7FE00010", headers={"Accept": "image/png"}).status_code
        == 406
    )


def test_metadata_carries_an_etag_and_answers_304_while_nothing_changed(client: Client) -> None:
    first = make_dataset()
    store(client, to_bytes(first))
    url = f"/v2/studies/{first.StudyInstanceUID}/metadata"
    response = client.get(url)
    etag = response.headers["etag"]
    unchanged = client.get(url, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert client.get(url, headers={"If-None-Match": '"something-else"'}).status_code == 200
    store(client, to_bytes(make_dataset(study_uid=first.StudyInstanceUID)))  # the study changed
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and len(changed.json()) == 2
    assert changed.headers["etag"] != etag


@pytest.fixture(scope="module")
def server_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DICOMwebClient]:
    with running_server(Path(tmp_path_factory.mktemp("bulk"))) as server:
        yield DICOMwebClient(url=server.dicomweb_url)


def test_dicomweb_client_fetches_metadata_first_and_pixels_later(server_client: DICOMwebClient) -> None:
    original = pydicom.dcmread(dicom_file("CT_small.dcm"))
    server_client.store_instances([original])
    document = server_client.retrieve_instance_metadata(
        original.StudyInstanceUID, original.SeriesInstanceUID, original.SOPInstanceUID
    )
    uri = document["7FE00010"]["BulkDataURI"]
    # dicomweb-client sends Host without the port, so the URI is rebuilt on the server's own URL
    path = uri.split("/v2", 1)[1]
    parts = server_client.retrieve_bulkdata(server_client.base_url + path)
    assert parts == [original.PixelData], [len(p) for p in parts]
