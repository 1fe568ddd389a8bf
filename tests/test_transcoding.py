"""WADO-RS transfer syntax negotiation and transcoding (PS3.18 8.7.3, 8.7.3.5).

Every pixel-data file of pydicom's test data that Tessera stores (tests/test_corpus.py's
classification) comes back in Explicit VR Little Endian with the pixels pydicom decodes from the
original; lossless and uncompressed files also come back as RLE, JPEG-LS and JPEG 2000 lossless
with the same pixels. What cannot be produced is a 406 with a message, never a 500. Studies and
series are transcoded part by part; `*` keeps the stored bytes. dicomweb-client asks for a
transfer syntax against a real server process.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from dicomweb_client import DICOMwebClient
from litestar.testing import TestClient
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

from tests.conftest import dicom_file
from tests.dicom_factory import make_dataset, multipart, parse_multipart, to_bytes
from tests.server import running_server
from tests.test_corpus import VALID, Instance

Client = TestClient  # type: ignore[type-arg]

ELE = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"
RLE = "1.2.840.10008.1.2.5"
JPEG_LS = "1.2.840.10008.1.2.4.80"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
LOSSLESS_TARGETS = (RLE, JPEG_LS, J2K_LOSSLESS)
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'
AS_STORED = f"{MULTIPART_DICOM}; transfer-syntax=*"

# Syntaxes whose pixels are exact (PS3.5 A.4, Table A-1): native, deflate, RLE, JPEG lossless
# (14 and 14 SV1), JPEG-LS lossless and JPEG 2000 lossless only. JPEG 2000 (.91) may be either
# and is treated as lossy, as is JPEG baseline/extended.
LOSSLESS_SOURCES = {
    IMPLICIT,
    ELE,
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99",
    RLE,
    JPEG_LS,
    J2K_LOSSLESS,
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
}


def _has_pixels(instance: Instance) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return "PixelData" in pydicom.dcmread(instance.path, specific_tags=["PixelData"])


def _syntax(instance: Instance) -> str:
    return str(pydicom.dcmread(instance.path, stop_before_pixels=True).file_meta.TransferSyntaxUID)


PIXEL_FILES = [i for i in VALID if _has_pixels(i)]

# Images the encoders here take (8/16-bit monochrome, 8-bit RGB): into each lossless syntax they
# must come back with the same pixels, not a 406.
MUST_ENCODE = [
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_jp2klossless.dcm",
    "SC_rgb_rle.dcm",
    "SC_rgb_rle_2frame.dcm",
    "SC_rgb_jpeg_gdcm.dcm",
    "examples_rgb_color.dcm",
    "image_dfl.dcm",
]


# --- helpers ---------------------------------------------------------------------------------


def store(client: Client, data: bytes) -> None:
    response = client.post("/v2/studies", content=data, headers={"Content-Type": "application/dicom"})
    assert response.status_code in (200, 202), response.text  # 202: stored, with warnings
    assert "00081198" not in response.json(), response.text


def instance_url(instance: Instance) -> str:
    return f"/v2/studies/{instance.study_uid}/series/{instance.series_uid}/instances/{instance.sop_uid}"


def url_of(ds: pydicom.Dataset) -> str:
    return f"/v2/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"


def as_stored(raw: bytes) -> bytes:
    return bytes(128) + raw[128:]


def decode(data: bytes | Path) -> np.ndarray[Any, Any]:
    """pydicom's decoding. pydicom 3 converts YBR_FULL and YBR_FULL_422 to RGB by default
    (`as_rgb=True`), the conversion `Dataset.decompress(as_rgb=True)` applies when transcoding;
    JPEG 2000's YBR_RCT/YBR_ICT come out of the decoder as RGB. So the original's `pixel_array`
    is the reference for what a transcoded file must hold, for lossy sources too (same decoder)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(BytesIO(data) if isinstance(data, bytes) else data).pixel_array


def decodes(path: Path) -> bool:
    try:
        decode(path)
    except Exception:
        return False
    return True


def read(data: bytes) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(BytesIO(data))


def pixel_differences(expected: np.ndarray[Any, Any], got: np.ndarray[Any, Any]) -> list[str]:
    if expected.shape != got.shape:
        return [f"pixel array shape {got.shape}, original {expected.shape}"]
    if (expected.dtype.kind, expected.dtype.itemsize) != (got.dtype.kind, got.dtype.itemsize):
        return [f"pixel dtype {got.dtype}, original {expected.dtype}"]
    if not np.array_equal(expected, got):
        return [f"{int(np.count_nonzero(expected != got))} pixels differ from the original"]
    return []


def no_problems(problems: list[str]) -> None:
    assert not problems, "\n".join(problems)


def transfer_syntax_of(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "transfer-syntax":
            return value.strip('"')
    return None


def refusal_problems(response: Any) -> list[str]:
    """A 406 with a problem document whose detail explains it."""
    if response.status_code != 406:
        return [f"answered {response.status_code}, expected 406: {response.text[:200]}"]
    detail = response.json().get("detail", "")
    return [] if len(detail) > 20 else [f"406 without a useful detail: {response.text[:200]}"]


def check_single(
    response: Any, instance: Instance, target: str, original: np.ndarray[Any, Any] | None
) -> list[str]:
    """An application/dicom answer in `target`: Content-Type, file meta, encoding, pixels."""
    if response.status_code != 200:
        return [f"answered {response.status_code}: {response.text[:200]}"]
    return check_part(response.headers["content-type"], response.content, instance, target, original)


def check_part(
    content_type: str, body: bytes, instance: Instance, target: str, original: np.ndarray[Any, Any] | None
) -> list[str]:
    problems = []
    if not content_type.startswith("application/dicom") or transfer_syntax_of(content_type) != target:
        problems.append(f"Content-Type {content_type!r} does not name {target}")
    raw = instance.path.read_bytes()
    if _syntax(instance) == target:  # nothing to transcode: the stored file itself
        if body != as_stored(raw):
            problems.append("not the stored bytes although no transcoding was needed")
        return problems
    ds = read(body)
    if ds.file_meta.TransferSyntaxUID != target:
        problems.append(f"file meta says {ds.file_meta.TransferSyntaxUID}, not {target}")
    if ds.original_encoding != (False, True):
        problems.append(f"encoded as (implicit VR, little endian) = {ds.original_encoding}")
    if ds.SOPInstanceUID != instance.sop_uid:
        problems.append(f"SOPInstanceUID changed to {ds.SOPInstanceUID}")
    if original is not None:
        try:
            problems += pixel_differences(original, decode(body))
        except Exception as exc:
            problems.append(f"the answer's pixels do not decode: {exc}")
    return problems


# --- every pixel-data file of the corpus -----------------------------------------------------


def test_the_corpus_has_pixel_files_of_many_syntaxes() -> None:
    syntaxes = {_syntax(i) for i in PIXEL_FILES}
    assert {IMPLICIT, ELE, "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99", RLE, JPEG_LS} <= syntaxes
    assert {J2K_LOSSLESS, "1.2.840.10008.1.2.4.91", JPEG_BASELINE, "1.2.840.10008.1.2.4.70"} <= syntaxes
    assert set(MUST_ENCODE) <= {i.path.name for i in PIXEL_FILES}


def test_every_pixel_file_comes_back_in_explicit_vr_little_endian_with_the_same_pixels(
    client: Client,
) -> None:
    """Asked as application/dicom with transfer-syntax=1.2.840.10008.1.2.1, and as multipart with no
    transfer-syntax (PS3.18 8.7.3.5.2: Explicit VR Little Endian). A file no decoder here can
    read is a 406 with a message, unless it is stored in that syntax already."""
    problems = []
    for instance in PIXEL_FILES:
        raw = instance.path.read_bytes()
        store(client, raw)
        url = instance_url(instance)
        original = decode(instance.path) if decodes(instance.path) else None
        single = client.get(url, headers={"Accept": f"application/dicom; transfer-syntax={ELE}"})
        several = client.get(url, headers={"Accept": MULTIPART_DICOM})
        if original is None and _syntax(instance) != ELE:
            found = refusal_problems(single) + refusal_problems(several)
        else:
            found = check_single(single, instance, ELE, original)
            if several.status_code != 200:
                found.append(f"multipart answered {several.status_code}: {several.text[:200]}")
            else:
                parts = parse_multipart(several.content, several.headers["content-type"])
                if len(parts) != 1:
                    found.append(f"multipart has {len(parts)} parts")
                else:
                    (headers, body) = parts[0]
                    found += [
                        f"multipart: {p}"
                        for p in check_part(headers["content-type"], body, instance, ELE, original)
                    ]
        problems += [f"{instance.name} ({_syntax(instance)}): {p}" for p in found]
        assert client.delete(f"/v2/studies/{instance.study_uid}").status_code == 204
    assert not problems, "\n".join(problems)


def test_lossless_and_uncompressed_files_come_back_in_each_lossless_syntax_with_the_same_pixels(
    client: Client,
) -> None:
    """RLE, JPEG-LS lossless and JPEG 2000 lossless: the same pixels, or a 406 with a message
    where the encoder cannot take the image (32 bits, 1 bit, ...); never another status."""
    problems = []
    encoded = set()
    for instance in PIXEL_FILES:
        if _syntax(instance) not in LOSSLESS_SOURCES or not decodes(instance.path):
            continue
        store(client, instance.path.read_bytes())
        original = decode(instance.path)
        for target in LOSSLESS_TARGETS:
            response = client.get(
                instance_url(instance), headers={"Accept": f"application/dicom; transfer-syntax={target}"}
            )
            if response.status_code == 406:
                found = refusal_problems(response)
                if instance.path.name in MUST_ENCODE:
                    found.append(f"refused: {response.json().get('detail')}")
            else:
                found = check_single(response, instance, target, original)
                encoded.add((instance.path.name, target))
            problems += [f"{instance.name} ({_syntax(instance)}) as {UID(target).name}: {p}" for p in found]
        assert client.delete(f"/v2/studies/{instance.study_uid}").status_code == 204
    assert not problems, "\n".join(problems)
    assert {(name, target) for name in MUST_ENCODE for target in LOSSLESS_TARGETS} <= encoded


@pytest.mark.parametrize("target", LOSSLESS_TARGETS)
def test_a_16_bit_image_becomes_each_lossless_syntax(client: Client, target: str) -> None:
    """The corpus check on one file, for a readable failure."""
    (instance,) = [i for i in PIXEL_FILES if i.path.name == "CT_small.dcm"]
    store(client, instance.path.read_bytes())
    response = client.get(
        instance_url(instance), headers={"Accept": f"application/dicom; transfer-syntax={target}"}
    )
    no_problems(check_single(response, instance, target, decode(instance.path)))
    assert int(response.headers["content-length"]) == len(response.content)


@pytest.mark.parametrize(
    "name",
    [
        "SC_rgb_jpeg.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
        "MR_small_bigendian.dcm",
        "liver_expb_1frame.dcm",
        "image_dfl.dcm",
    ],
)
def test_a_typical_file_comes_back_uncompressed(client: Client, name: str) -> None:
    """The corpus check on single files, for a readable failure. SC_rgb_jpeg.dcm says JPEG baseline
    (explicit VR) but its dataset is implicit VR; pydicom reads and decodes it all the same."""
    (instance,) = [i for i in PIXEL_FILES if i.path.name == name]
    store(client, instance.path.read_bytes())
    response = client.get(
        instance_url(instance), headers={"Accept": f"application/dicom; transfer-syntax={ELE}"}
    )
    no_problems(check_single(response, instance, ELE, decode(instance.path)))


@pytest.mark.parametrize("target", LOSSLESS_TARGETS)
def test_uncompressed_subsampled_ybr_becomes_each_lossless_syntax(client: Client, target: str) -> None:
    """SC_ybr_full_422_uncompressed.dcm: 100×100 8-bit colour, which every one of these encoders
    takes once the 4:2:2 samples are expanded (pydicom decodes it to RGB). RLE may not carry
    YBR_FULL_422 at all (PS3.5 8.2.2), so the pixels must be expanded before encoding."""
    (instance,) = [i for i in PIXEL_FILES if i.path.name == "SC_ybr_full_422_uncompressed.dcm"]
    store(client, instance.path.read_bytes())
    response = client.get(
        instance_url(instance), headers={"Accept": f"application/dicom; transfer-syntax={target}"}
    )
    no_problems(check_single(response, instance, target, decode(instance.path)))


def test_32_bit_pixels_that_an_encoder_cannot_take_are_a_406_with_a_message(client: Client) -> None:
    """JPEG-LS and JPEG 2000 hold at most 16 and 24 bits per sample (ISO 14495-1, 15444-1 as
    pydicom's encoders implement them): 32-bit RT Dose cannot become either."""
    (instance,) = [i for i in PIXEL_FILES if i.path.name == "rtdose_1frame.dcm"]
    store(client, instance.path.read_bytes())
    for target in (JPEG_LS, J2K_LOSSLESS):
        response = client.get(
            instance_url(instance), headers={"Accept": f"application/dicom; transfer-syntax={target}"}
        )
        no_problems(refusal_problems(response))


# --- what cannot be produced ----------------------------------------------------------------


def test_a_lossy_instance_is_not_re_encoded_lossless(client: Client) -> None:
    (instance,) = [i for i in PIXEL_FILES if i.path.name == "SC_rgb_jpeg_dcmtk.dcm"]
    store(client, instance.path.read_bytes())
    for target in LOSSLESS_TARGETS:
        for accept in (
            f"application/dicom; transfer-syntax={target}",
            f"{MULTIPART_DICOM}; transfer-syntax={target}",
        ):
            response = client.get(instance_url(instance), headers={"Accept": accept})
            no_problems(refusal_problems(response))
            assert "lossy" in response.json()["detail"]
    # decoding it is still fine
    response = client.get(
        instance_url(instance), headers={"Accept": f"application/dicom; transfer-syntax={ELE}"}
    )
    no_problems(check_single(response, instance, ELE, decode(instance.path)))


@pytest.mark.parametrize(
    "syntax",
    [JPEG_BASELINE, "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.2", "1.2.3.4", "not-a-uid"],
)
def test_a_syntax_tessera_cannot_produce_is_a_406(client: Client, syntax: str) -> None:
    """JPEG baseline and JPEG 2000 (lossy) as targets, the retired big endian, an unknown UID."""
    ds = make_dataset()
    store(client, to_bytes(ds))
    single = client.get(url_of(ds), headers={"Accept": f"application/dicom; transfer-syntax={syntax}"})
    no_problems(refusal_problems(single))
    accept = f"{MULTIPART_DICOM}; transfer-syntax={syntax}"
    no_problems(refusal_problems(client.get(url_of(ds), headers={"Accept": accept})))
    no_problems(
        refusal_problems(client.get(f"/v2/studies/{ds.StudyInstanceUID}", headers={"Accept": accept}))
    )


def test_a_file_no_decoder_here_can_read_is_a_406(client: Client) -> None:
    """JPEG-lossy.dcm (12-bit extended JPEG that no plugin here decodes) as uncompressed."""
    path = dicom_file("JPEG-lossy.dcm")
    assert not decodes(path)
    (instance,) = [i for i in PIXEL_FILES if i.path == path]
    store(client, path.read_bytes())
    response = client.get(
        instance_url(instance), headers={"Accept": f"application/dicom; transfer-syntax={ELE}"}
    )
    no_problems(refusal_problems(response))
    # as stored it is always available
    response = client.get(instance_url(instance), headers={"Accept": "application/dicom; transfer-syntax=*"})
    assert response.status_code == 200
    assert response.content == as_stored(path.read_bytes())


def test_a_study_with_an_instance_no_decoder_can_read_is_a_406_not_a_broken_stream(client: Client) -> None:
    """The undecodable instance stored second: the answer must still be a 406 (or at least never a
    200 whose multipart body is cut off when the codec fails on that instance)."""
    study = generate_uid()
    first = make_dataset(study_uid=study)
    store(client, to_bytes(first))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        undecodable = pydicom.dcmread(dicom_file("JPEG-lossy.dcm"))
    undecodable.StudyInstanceUID = study
    store(client, to_bytes(undecodable))
    response = client.get(
        f"/v2/studies/{study}", headers={"Accept": f"{MULTIPART_DICOM}; transfer-syntax={ELE}"}
    )
    no_problems(refusal_problems(response))


# --- q-values and alternatives (RFC 9110 12.5.1, PS3.18 8.7.3.5) -----------------------------


def stored_instance(client: Client, name: str) -> Instance:
    (instance,) = [i for i in PIXEL_FILES if i.path.name == name]
    store(client, instance.path.read_bytes())
    return instance


def single_part(response: Any) -> tuple[str, bytes]:
    assert response.status_code == 200, response.text
    (headers, body), *rest = parse_multipart(response.content, response.headers["content-type"])
    assert rest == []
    return headers["content-type"], body


def test_a_lower_q_alternative_is_taken_when_the_preferred_syntax_cannot_be_produced(client: Client) -> None:
    instance = stored_instance(client, "MR_small_implicit.dcm")  # stored Implicit VR Little Endian
    accept = (
        f"{MULTIPART_DICOM}; transfer-syntax={JPEG_BASELINE}, {MULTIPART_DICOM}; transfer-syntax=*; q=0.5"
    )
    content_type, body = single_part(client.get(instance_url(instance), headers={"Accept": accept}))
    assert transfer_syntax_of(content_type) == IMPLICIT
    assert body == as_stored(instance.path.read_bytes())


def test_at_equal_q_the_representation_needing_no_transcoding_wins(client: Client) -> None:
    rle = stored_instance(client, "MR_small_RLE.dcm")
    accept = f"{MULTIPART_DICOM}; transfer-syntax={ELE}, {MULTIPART_DICOM}; transfer-syntax={RLE}"
    content_type, body = single_part(client.get(instance_url(rle), headers={"Accept": accept}))
    assert transfer_syntax_of(content_type) == RLE
    assert body == as_stored(rle.path.read_bytes())
    client.delete(f"/v2/studies/{rle.study_uid}")
    ele = stored_instance(client, "MR_small.dcm")
    content_type, body = single_part(client.get(instance_url(ele), headers={"Accept": accept}))
    assert transfer_syntax_of(content_type) == ELE
    assert body == as_stored(ele.path.read_bytes())


def test_a_higher_q_wins_over_needing_no_transcoding(client: Client) -> None:
    instance = stored_instance(client, "MR_small_RLE.dcm")
    accept = f"{MULTIPART_DICOM}; transfer-syntax=*; q=0.4, {MULTIPART_DICOM}; transfer-syntax={ELE}; q=0.9"
    content_type, body = single_part(client.get(instance_url(instance), headers={"Accept": accept}))
    no_problems(check_part(content_type, body, instance, ELE, decode(instance.path)))


def test_q_zero_means_not_acceptable(client: Client) -> None:
    instance = stored_instance(client, "MR_small.dcm")
    response = client.get(
        instance_url(instance), headers={"Accept": f"{MULTIPART_DICOM}; transfer-syntax=*; q=0"}
    )
    no_problems(refusal_problems(response))


def test_a_lossless_request_on_a_lossy_file_falls_back_to_the_next_alternative(client: Client) -> None:
    instance = stored_instance(client, "SC_rgb_jpeg_dcmtk.dcm")
    accept = (
        f"application/dicom; transfer-syntax={J2K_LOSSLESS}, application/dicom; transfer-syntax={ELE}; q=0.5"
    )
    response = client.get(instance_url(instance), headers={"Accept": accept})
    no_problems(check_single(response, instance, ELE, decode(instance.path)))


def test_any_media_type_gets_the_files_as_stored(client: Client) -> None:
    instance = stored_instance(client, "MR_small_jp2klossless.dcm")
    response = client.get(instance_url(instance), headers={"Accept": "*/*"})
    assert response.status_code == 200
    assert transfer_syntax_of(response.headers["content-type"]) == J2K_LOSSLESS
    assert response.content == as_stored(instance.path.read_bytes())
    study = client.get(f"/v2/studies/{instance.study_uid}", headers={"Accept": "*/*"})
    content_type, body = single_part(study)
    assert transfer_syntax_of(content_type) == J2K_LOSSLESS
    assert body == as_stored(instance.path.read_bytes())


# --- studies and series, transcoded part by part ---------------------------------------------


def _image(seed: int, **attributes: Any) -> pydicom.Dataset:
    """A 12-bit 64×48 image with pixels of its own."""
    rows, columns = 64, 48
    pixels = np.random.default_rng(seed).integers(0, 4096, size=(rows, columns), dtype=np.uint16)
    return make_dataset(
        rows=rows,
        columns=columns,
        BitsAllocated=16,
        BitsStored=12,
        HighBit=11,
        PixelData=pixels.tobytes(),
        **attributes,
    )


@pytest.fixture
def mixed_study(client: Client) -> tuple[str, str, dict[str, bytes]]:
    """One study of two series: ELE and RLE instances in the first, JPEG 2000 lossless and JPEG-LS
    in the second; by SOPInstanceUID -> the stored Part-10 bytes."""
    study, series_a, series_b = generate_uid(), generate_uid(), generate_uid()
    layout = [
        (series_a, None),
        (series_a, RLELossless),
        (series_b, JPEG2000Lossless),
        (series_b, JPEGLSLossless),
    ]
    files = {}
    for number, (series, syntax) in enumerate(layout, start=1):
        ds = _image(number, study_uid=study, series_uid=series, InstanceNumber=number)
        if syntax is not None:
            ds.compress(syntax, generate_instance_uid=False)
        files[ds.SOPInstanceUID] = as_stored(to_bytes(ds))
    body, content_type = multipart(list(files.values()))
    response = client.post("/v2/studies", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    return study, series_a, files


def parts_by_uid(response: Any) -> dict[str, tuple[str, bytes]]:
    assert response.status_code == 200, response.text
    parts = parse_multipart(response.content, response.headers["content-type"])
    return {str(read(body).SOPInstanceUID): (headers["content-type"], body) for headers, body in parts}


def test_a_study_in_four_syntaxes_comes_back_in_explicit_vr_little_endian(
    client: Client, mixed_study: tuple[str, str, dict[str, bytes]]
) -> None:
    study, _, files = mixed_study
    parts = parts_by_uid(
        client.get(f"/v2/studies/{study}", headers={"Accept": f"{MULTIPART_DICOM}; transfer-syntax={ELE}"})
    )
    assert set(parts) == set(files)
    for uid, (content_type, body) in parts.items():
        assert transfer_syntax_of(content_type) == ELE
        ds = read(body)
        assert ds.file_meta.TransferSyntaxUID == ELE
        assert ds.original_encoding == (False, True)
        assert np.array_equal(ds.pixel_array, decode(files[uid]))
    stored_syntaxes = {str(read(f).file_meta.TransferSyntaxUID) for f in files.values()}
    assert stored_syntaxes == {ELE, RLE, J2K_LOSSLESS, JPEG_LS}


def test_a_series_comes_back_transcoded_with_only_its_instances(
    client: Client, mixed_study: tuple[str, str, dict[str, bytes]]
) -> None:
    study, series, files = mixed_study
    accept = f"{MULTIPART_DICOM}; transfer-syntax={J2K_LOSSLESS}"
    parts = parts_by_uid(client.get(f"/v2/studies/{study}/series/{series}", headers={"Accept": accept}))
    expected = {uid for uid, f in files.items() if read(f).SeriesInstanceUID == series}
    assert set(parts) == expected and len(expected) == 2
    for uid, (content_type, body) in parts.items():
        assert transfer_syntax_of(content_type) == J2K_LOSSLESS
        assert read(body).file_meta.TransferSyntaxUID == J2K_LOSSLESS
        assert np.array_equal(decode(body), decode(files[uid]))


def test_a_study_as_stored_names_each_part_s_syntax_and_keeps_its_bytes(
    client: Client, mixed_study: tuple[str, str, dict[str, bytes]]
) -> None:
    study, _, files = mixed_study
    response = client.get(f"/v2/studies/{study}", headers={"Accept": AS_STORED})
    parts = parts_by_uid(response)
    assert set(parts) == set(files)
    for uid, (content_type, body) in parts.items():
        assert body == files[uid]
        assert transfer_syntax_of(content_type) == read(files[uid]).file_meta.TransferSyntaxUID
    assert int(response.headers["content-length"]) == len(response.content)


# --- dicomweb-client against a server process -----------------------------------------------


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[DICOMwebClient, list[pydicom.Dataset]]]:
    """`tessera serve` (SQLite) holding one study: RLE, JPEG 2000 lossless and JPEG-LS instances."""
    study = generate_uid()
    datasets = []
    for number, syntax in enumerate((RLELossless, JPEG2000Lossless, JPEGLSLossless), start=1):
        ds = _image(100 + number, study_uid=study, InstanceNumber=number)
        ds.compress(syntax, generate_instance_uid=False)
        ds.preamble = bytes(128)
        datasets.append(ds)
    with running_server(tmp_path_factory.mktemp("transcoding-e2e")) as server:
        client = DICOMwebClient(url=server.dicomweb_url)
        response = client.store_instances(datasets)
        assert "FailedSOPSequence" not in response
        yield client, datasets


def test_dicomweb_client_retrieves_a_compressed_instance_decoded(
    served: tuple[DICOMwebClient, list[pydicom.Dataset]],
) -> None:
    client, datasets = served
    for sent in datasets:
        received = client.retrieve_instance(
            sent.StudyInstanceUID,
            sent.SeriesInstanceUID,
            sent.SOPInstanceUID,
            media_types=(("application/dicom", ELE),),
        )
        assert received.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert np.array_equal(received.pixel_array, sent.pixel_array)


def test_dicomweb_client_retrieves_a_study_decoded(
    served: tuple[DICOMwebClient, list[pydicom.Dataset]],
) -> None:
    client, datasets = served
    received = client.retrieve_study(datasets[0].StudyInstanceUID, media_types=(("application/dicom", ELE),))
    sent = {ds.SOPInstanceUID: ds for ds in datasets}
    assert {ds.SOPInstanceUID for ds in received} == set(sent)
    for ds in received:
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert np.array_equal(ds.pixel_array, sent[ds.SOPInstanceUID].pixel_array)


def test_dicomweb_client_retrieves_a_study_as_stored(
    served: tuple[DICOMwebClient, list[pydicom.Dataset]],
) -> None:
    client, datasets = served
    received = client.retrieve_study(datasets[0].StudyInstanceUID, media_types=(("application/dicom", "*"),))
    sent = {ds.SOPInstanceUID: ds for ds in datasets}
    for ds in received:
        assert ds.file_meta.TransferSyntaxUID == sent[ds.SOPInstanceUID].file_meta.TransferSyntaxUID
        assert ds.PixelData == sent[ds.SOPInstanceUID].PixelData
