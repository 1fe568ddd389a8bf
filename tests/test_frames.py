"""WADO-RS frames (PS3.18 10.4.1.1.2, 8.7.3.5): every pixel-data file pydicom ships gives back its
first and last frames, uncompressed, exactly as pydicom decodes them, and compressed frames as stored;
malformed frame lists, missing frames and syntaxes that cannot be produced are explained 4xx."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from dicomweb_client import DICOMwebClient
from litestar.testing import TestClient
from pydicom.encaps import generate_frames
from pydicom.uid import JPEG2000Lossless, RLELossless

from tests.dicom_factory import make_dataset, parse_multipart, to_bytes
from tests.server import running_server
from tests.test_corpus import VALID, Instance, instance_url, post_file

Client = TestClient  # type: ignore[type-arg]

OCTET = 'multipart/related; type="application/octet-stream"'
ELE = "1.2.840.10008.1.2.1"
NATIVE = {"1.2.840.10008.1.2", ELE, "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"}
FRAME_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/x-dicom-rle",
}


def has_pixel_data(instance: Instance) -> bool:
    ds = pydicom.dcmread(instance.path, defer_size=64)
    return "PixelData" in ds


PIXEL_FILES = [i for i in VALID if has_pixel_data(i)]


def frame_count(ds: pydicom.Dataset) -> int:
    return int(ds.get("NumberOfFrames") or 1)


def expected_frames(path: Path) -> np.ndarray | None:
    """pydicom's own decoding of every frame (frames first), or None when pydicom cannot."""
    try:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
    except Exception:
        return None
    return pixels if frame_count(ds) > 1 else pixels[np.newaxis]


def decode_native(path: Path, frame: bytes, like: np.ndarray) -> np.ndarray:
    """Uncompressed frame bytes read with the instance's own attributes, the way a client would."""
    syntax = str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
    if syntax not in NATIVE:  # decoded by the server: pixels as pydicom gives them, little endian
        if int(pydicom.dcmread(path, stop_before_pixels=True).BitsAllocated) == 1:
            return pydicom.pixels.unpack_bits(frame)[: like.size].reshape(like.shape)  # type: ignore[no-any-return]
        return np.frombuffer(frame, like.dtype.newbyteorder("<")).reshape(like.shape)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.NumberOfFrames = 1
    ds.PixelData = frame + b"\0" * (len(frame) % 2)
    return ds.pixel_array  # type: ignore[no-any-return]


def frames_url(instance: Instance, frames: str) -> str:
    return f"{instance_url(instance)}/frames/{frames}"


def get_frames(client: Client, instance: Instance, frames: str, accept: str | None = OCTET) -> Any:
    headers = {"Accept": accept} if accept else {}
    return client.get(frames_url(instance, frames), headers=headers)


def check_uncompressed_frames(client: Client, instance: Instance) -> list[str]:
    """Frame 1 and the last frame as native little endian equal pydicom's decoding of them."""
    expected = expected_frames(instance.path)
    syntax = str(pydicom.dcmread(instance.path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
    response = get_frames(client, instance, "1")
    if expected is None:
        if syntax in NATIVE or response.status_code == 406:
            return []
        return [f"pydicom cannot decode it, yet frame 1 answered {response.status_code}"]
    problems = []
    for number in sorted({1, len(expected)}):
        response = get_frames(client, instance, str(number))
        if response.status_code != 200:
            problems.append(f"frame {number} answered {response.status_code}: {response.text[:200]}")
            continue
        assert response.headers["content-type"].startswith(OCTET)
        ((headers, body),) = parse_multipart(response.content, response.headers["content-type"])
        if headers["content-type"] != f"application/octet-stream; transfer-syntax={ELE}":
            problems.append(f"frame {number} part Content-Type {headers['content-type']!r}")
        if not np.array_equal(decode_native(instance.path, body, expected[number - 1]), expected[number - 1]):
            problems.append(f"frame {number} differs from pydicom's decoding")
    past = len(expected) + 1
    response = get_frames(client, instance, str(past))
    if response.status_code != 404 or f"frame {past}" not in response.json()["detail"]:
        problems.append(f"frame {past} (past the end) answered {response.status_code}")
    return problems


def check_frames_as_stored(client: Client, instance: Instance) -> list[str]:
    """Without Accept, compressed frames come back byte for byte as stored, typed by their syntax."""
    ds = pydicom.dcmread(instance.path)
    syntax = str(ds.file_meta.TransferSyntaxUID)
    if syntax not in FRAME_TYPES:
        return []
    stored = next(generate_frames(ds.PixelData, number_of_frames=frame_count(ds)))
    response = get_frames(client, instance, "1", accept=None)
    if response.status_code != 200:
        return [f"frame 1 as stored answered {response.status_code}: {response.text[:200]}"]
    ((headers, body),) = parse_multipart(response.content, response.headers["content-type"])
    problems = []
    if headers["content-type"] != f"{FRAME_TYPES[syntax]}; transfer-syntax={syntax}":
        problems.append(f"frame 1 as stored has Content-Type {headers['content-type']!r}")
    if body != stored:
        problems.append("frame 1 as stored differs from the stored fragment bytes")
    return problems


@pytest.mark.parametrize("instance", PIXEL_FILES, ids=lambda i: i.name)
def test_every_pixel_file_gives_its_frames_as_pydicom_decodes_them(
    client: Client, instance: Instance
) -> None:
    stored = post_file(client, instance.path.read_bytes())
    assert stored.status_code in (200, 202), stored.text
    problems = check_uncompressed_frames(client, instance) + check_frames_as_stored(client, instance)
    assert not problems, "\n".join(problems)


def test_the_corpus_holds_compressed_multiframe_and_big_endian_pixel_files() -> None:
    names = {i.path.name for i in PIXEL_FILES}
    assert {
        "MR_small_bigendian.dcm",
        "JPEG2000.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "SC_rgb_jpeg_gdcm.dcm",
        "rtdose.dcm",
        "SC_rgb_rle_2frame.dcm",
        "examples_palette.dcm",
        "image_dfl.dcm",
    } <= names
    assert len(PIXEL_FILES) >= 40


# --- a multi-frame instance made here ----------------------------------------------------------


ROWS, COLUMNS = 64, 48  # OpenJPEG needs 32 pixels or more a side for its default 6 resolutions


def multiframe(frames: int = 5, syntax: str | None = None) -> pydicom.Dataset:
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 4096, (frames, ROWS, COLUMNS), dtype=np.uint16)
    ds = make_dataset(rows=ROWS, columns=COLUMNS, BitsAllocated=16, BitsStored=12, HighBit=11)
    ds.NumberOfFrames = frames
    ds.PixelData = pixels.tobytes()
    if syntax is not None:
        ds.compress(syntax, pixels)
    return ds


def store(client: Client, ds: pydicom.Dataset) -> Instance:
    response = post_file(client, to_bytes(ds))
    assert response.status_code == 200, response.text
    return Instance(Path("made"), ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)


def test_a_frame_list_comes_back_in_the_order_asked(client: Client) -> None:
    ds = multiframe()
    instance = store(client, ds)
    response = get_frames(client, instance, "5,2,2")
    assert response.status_code == 200
    parts = parse_multipart(response.content, response.headers["content-type"])
    pixels = ds.pixel_array
    assert [np.frombuffer(body, "<u2").reshape(ROWS, COLUMNS).tolist() for _, body in parts] == [
        pixels[4].tolist(),
        pixels[1].tolist(),
        pixels[1].tolist(),
    ]
    assert [h["content-location"].rsplit("/", 1)[-1] for h, _ in parts] == ["5", "2", "2"]
    assert parts[0][0]["content-location"].startswith("http://testserver.local/v2/studies/")


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, RLELossless])
def test_compressed_frames_decode_alone_or_pass_through_as_stored(client: Client, syntax: str) -> None:
    ds = multiframe(syntax=syntax)
    instance = store(client, ds)
    response = get_frames(client, instance, "3")
    ((_, body),) = parse_multipart(response.content, response.headers["content-type"])
    assert np.frombuffer(body, "<u2").reshape(ROWS, COLUMNS).tolist() == ds.pixel_array[2].tolist()
    for accept in (f'multipart/related; type="{FRAME_TYPES[syntax]}"', f"{OCTET}; transfer-syntax=*"):
        response = get_frames(client, instance, "3", accept=accept)
        assert response.status_code == 200, response.text
        ((headers, body),) = parse_multipart(response.content, response.headers["content-type"])
        assert headers["content-type"].endswith(f"transfer-syntax={syntax}")
        assert body == list(generate_frames(ds.PixelData, number_of_frames=5))[2]


def test_native_frames_are_not_given_as_a_compressed_type(client: Client) -> None:
    instance = store(client, multiframe())
    response = get_frames(client, instance, "1", accept='multipart/related; type="image/jp2"')
    assert response.status_code == 406
    assert "1.2.840.10008.1.2.1" in response.json()["detail"]
    assert "application/octet-stream" in response.json()["detail"]


def test_a_compressed_type_other_than_the_stored_one_is_406(client: Client) -> None:
    instance = store(client, multiframe(syntax=RLELossless))
    response = get_frames(client, instance, "1", accept='multipart/related; type="image/jpeg"')
    assert response.status_code == 406
    assert "1.2.840.10008.1.2.5" in response.json()["detail"]
    # a preferred alternative that cannot be given yields to one that can
    accept = 'multipart/related; type="image/jpeg", multipart/related; type="image/x-dicom-rle"; q=0.5'
    assert get_frames(client, instance, "1", accept=accept).status_code == 200


@pytest.mark.parametrize(
    ("frames", "status", "says"),
    [
        ("0", 400, "frame 0"),
        ("1,0", 400, "frame 0"),
        ("a,b", 400, "'a'"),
        ("1,,2", 400, "frame numbers from 1"),
        ("-1", 400, "frame numbers from 1"),
        ("6", 404, "frame 6 does not exist: the instance has 5 frames"),
        ("1,99", 404, "frame 99"),
    ],
)
def test_bad_frame_lists_are_explained(client: Client, frames: str, status: int, says: str) -> None:
    instance = store(client, multiframe())
    response = get_frames(client, instance, frames)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert says in response.json()["detail"]


def test_frames_of_an_instance_without_pixel_data_or_not_stored_are_404(client: Client) -> None:
    ds = make_dataset(PixelData=None, Rows=None, Columns=None, BitsAllocated=None)
    instance = store(client, ds)
    response = get_frames(client, instance, "1")
    assert response.status_code == 404
    assert "no pixel data" in response.json()["detail"]
    missing = Instance(Path("x"), instance.study_uid, instance.series_uid, "1.2.3.4")
    assert get_frames(client, missing, "1").status_code == 404


# --- dicomweb-client against tessera serve -----------------------------------------------------


def test_dicomweb_client_retrieves_frames(tmp_path: Path) -> None:
    ds = multiframe(frames=4)
    compressed = multiframe(frames=3, syntax=JPEG2000Lossless)
    with running_server(tmp_path) as server:
        dicomweb = DICOMwebClient(server.dicomweb_url)
        dicomweb.store_instances([ds, compressed])
        uids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        frames = dicomweb.retrieve_instance_frames(
            *uids, frame_numbers=[2, 4], media_types=(("application/octet-stream", ELE),)
        )
        assert [np.frombuffer(f, "<u2").reshape(ROWS, COLUMNS).tolist() for f in frames] == [
            ds.pixel_array[1].tolist(),
            ds.pixel_array[3].tolist(),
        ]
        c_uids = (compressed.StudyInstanceUID, compressed.SeriesInstanceUID, compressed.SOPInstanceUID)
        (as_stored,) = dicomweb.retrieve_instance_frames(*c_uids, frame_numbers=[2])
        assert as_stored == list(generate_frames(compressed.PixelData, number_of_frames=3))[1]
        (jp2,) = dicomweb.retrieve_instance_frames(
            *c_uids, frame_numbers=[1], media_types=(("image/jp2", JPEG2000Lossless),)
        )
        assert jp2 == next(generate_frames(compressed.PixelData, number_of_frames=3))
