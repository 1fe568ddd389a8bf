"""Rendered resources and thumbnails (PS3.18 8.3.5, 10.4.1.1.3-4): every pixel-data file pydicom
ships renders to PNG and JPEG at its own size and is not blank; windows follow PS3.3 C.11.2.1;
MONOCHROME1 is inverted; viewports scale keeping the aspect ratio; bad parameters are explained 400s."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from dicomweb_client import DICOMwebClient
from litestar.testing import TestClient
from PIL import Image
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import CTImageStorage, JPEG2000Lossless

from tests.dicom_factory import make_dataset, to_bytes
from tests.server import running_server
from tests.test_corpus import Instance, instance_url, post_file
from tests.test_frames import PIXEL_FILES, expected_frames

Client = TestClient  # type: ignore[type-arg]


def image_of(response: Any) -> Image.Image:
    assert response.status_code == 200, response.text
    return Image.open(io.BytesIO(response.content))


def rendered(client: Client, url: str, accept: str | None = None, **params: str) -> Any:
    headers = {"Accept": accept} if accept else {}
    return client.get(url, headers=headers, params=params)


@pytest.mark.parametrize("instance", PIXEL_FILES, ids=lambda i: i.name)
def test_every_pixel_file_renders_to_png_and_jpeg(client: Client, instance: Instance) -> None:
    stored = post_file(client, instance.path.read_bytes())
    assert stored.status_code in (200, 202), stored.text
    frames = expected_frames(instance.path)
    url = instance_url(instance) + "/rendered"
    if frames is None:  # pydicom cannot decode it: neither can the renderer, and it says so
        response = rendered(client, url, "image/png")
        assert response.status_code == 406, response.text
        assert "cannot be" in response.json()["detail"]
        return
    ds = pydicom.dcmread(instance.path)
    contrast = has_contrast(frames[0], ds)
    for accept, format_ in (("image/png", "PNG"), ("image/jpeg", "JPEG")):
        image = image_of(rendered(client, url, accept))
        assert image.format == format_
        assert image.size == (ds.Columns, ds.Rows)
        if contrast:  # an image that pydicom shows with contrast is not blank
            assert np.asarray(image).std() > 0, f"{accept} of {instance.name} is blank"


def has_contrast(frame: np.ndarray, ds: pydicom.Dataset) -> bool:
    """Whether pydicom's own display pipeline (Modality LUT, then VOI) leaves any contrast."""
    if frame.ndim == 3 or ds.PhotometricInterpretation == "PALETTE COLOR":
        return bool(np.ptp(frame) > 0)
    return bool(np.ptp(apply_voi_lut(apply_modality_lut(frame, ds), ds)) > 0)


# --- windows, photometric interpretations, viewports on images made here -----------------------


def ct(**attributes: Any) -> pydicom.Dataset:
    """16-bit signed CT, 4×256: each row runs from -1024 to +1016 HU in steps of 8."""
    hu = np.tile(np.arange(-1024, 1024, 8, dtype=np.int16), (4, 1))
    stored = hu + 1024  # RescaleIntercept -1024
    ds = make_dataset(
        rows=4,
        columns=256,
        SOPClassUID=CTImageStorage,
        Modality="CT",
        BitsAllocated=16,
        BitsStored=16,
        HighBit=15,
        PixelRepresentation=1,
        RescaleIntercept=-1024,
        RescaleSlope=1,
        WindowCenter=40,
        WindowWidth=400,
    )
    ds.PixelData = stored.astype("<i2").tobytes()
    for keyword, value in attributes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


def store(client: Client, ds: pydicom.Dataset) -> str:
    response = post_file(client, to_bytes(ds))
    assert response.status_code in (200, 202), response.text
    return f"/v2/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"


def grey(client: Client, url: str, **params: str) -> np.ndarray:
    return np.asarray(image_of(rendered(client, url + "/rendered", "image/png", **params)))[0]


HU = np.arange(-1024, 1024, 8)


def test_the_files_window_applies_after_the_rescale(client: Client) -> None:
    row = grey(client, store(client, ct()))
    # PS3.3 C.11.2.1.2.1, center 40 width 400: black up to -160 HU, white above 240 HU
    assert (row[HU <= -160] == 0).all()
    assert (row[HU > 240] == 255).all()
    assert 120 <= row[HU == 40][0] <= 135


def test_the_window_parameter_overrides_the_file(client: Client) -> None:
    url = store(client, ct())
    row = grey(client, url, window="0,2000,linear")
    assert row[0] == 0 and row[-1] == 255 and 126 <= row[HU == 0][0] <= 129
    exact = grey(client, url, window="0,100,linear-exact")
    assert (exact[HU <= -50] == 0).all() and (exact[HU >= 50] == 255).all()
    sigmoid = grey(client, url, window="0,400,SIGMOID")
    assert sigmoid[HU == 0][0] in (127, 128) and 0 < sigmoid[HU == -200][0] < sigmoid[HU == 200][0] < 255


def test_without_a_window_the_full_range_is_shown(client: Client) -> None:
    row = grey(client, store(client, ct(WindowCenter=None, WindowWidth=None)))
    assert row[0] == 0 and row[-1] == 255
    assert (np.diff(row.astype(int)) >= 0).all()


def test_monochrome1_is_inverted(client: Client) -> None:
    normal = grey(client, store(client, ct()))
    inverted = grey(client, store(client, ct(PhotometricInterpretation="MONOCHROME1")))
    assert (inverted == 255 - normal).all()


def test_palette_color_goes_through_its_lookup_table(client: Client) -> None:
    ds = make_dataset(rows=2, columns=4, PhotometricInterpretation="PALETTE COLOR")
    ds.PixelData = bytes([0, 1, 2, 3, 0, 1, 2, 3])
    ds.RedPaletteColorLookupTableDescriptor = [4, 0, 8]
    ds.GreenPaletteColorLookupTableDescriptor = [4, 0, 8]
    ds.BluePaletteColorLookupTableDescriptor = [4, 0, 8]
    ds.RedPaletteColorLookupTableData = bytes([255, 0, 0, 10])
    ds.GreenPaletteColorLookupTableData = bytes([0, 255, 0, 20])
    ds.BluePaletteColorLookupTableData = bytes([0, 0, 255, 30])
    image = image_of(rendered(client, store(client, ds) + "/rendered", "image/png"))
    assert image.mode == "RGB"
    assert np.asarray(image)[0].tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]


def test_rgb_comes_out_as_rgb(client: Client) -> None:
    ds = make_dataset(rows=2, columns=2, SamplesPerPixel=3, PhotometricInterpretation="RGB")
    ds.PlanarConfiguration = 0
    ds.PixelData = bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 8, 7])
    image = image_of(rendered(client, store(client, ds) + "/rendered", "image/png"))
    assert np.asarray(image).reshape(4, 3).tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 8, 7]]


@pytest.mark.parametrize(
    ("viewport", "size"),
    [("128,128", (128, 2)), ("64,64", (64, 1)), ("512,16", (512, 8)), ("16,16,0,0,128,4", (16, 1))],
)
def test_viewport_fits_keeping_the_aspect_ratio(client: Client, viewport: str, size: tuple[int, int]) -> None:
    url = store(client, ct())
    assert image_of(rendered(client, url + "/rendered", "image/png", viewport=viewport)).size == size


def test_a_negative_region_width_flips_the_image(client: Client) -> None:
    url = store(client, ct())
    flipped = np.asarray(
        image_of(rendered(client, url + "/rendered", "image/png", viewport="256,4,256,0,-256,4"))
    )
    assert (flipped[0] == grey(client, url)[::-1]).all()


def test_quality_trades_size_for_fidelity(client: Client) -> None:
    rng = np.random.default_rng(1)
    ds = make_dataset(rows=64, columns=64)
    ds.PixelData = rng.integers(0, 256, (64, 64), dtype=np.uint8).tobytes()
    url = store(client, ds) + "/rendered"
    low = rendered(client, url, "image/jpeg", quality="10").content
    high = rendered(client, url, "image/jpeg", quality="95").content
    assert len(low) < len(high)


def test_jpeg_is_the_default_and_gif_is_offered(client: Client) -> None:
    url = store(client, ct()) + "/rendered"
    assert rendered(client, url).headers["content-type"] == "image/jpeg"
    assert rendered(client, url, "*/*").headers["content-type"] == "image/jpeg"
    assert image_of(rendered(client, url, "image/gif")).format == "GIF"
    assert rendered(client, url, "image/webp, image/png;q=0.5").headers["content-type"] == "image/png"


def test_frames_render_one_by_one(client: Client) -> None:
    ds = make_dataset(rows=8, columns=8)
    ds.NumberOfFrames = 3
    ds.PixelData = bytes([0] * 64 + [255] * 64 + list(range(0, 256, 4)))
    url = store(client, ds)
    assert np.asarray(image_of(rendered(client, url + "/frames/3/rendered", "image/png"))).std() > 0
    first = rendered(client, url + "/frames/1/rendered", "image/png")
    assert np.asarray(image_of(first)).tolist() == [[0] * 8] * 8
    assert rendered(client, url + "/frames/4/rendered").status_code == 404
    assert rendered(client, url + "/frames/1,2/rendered").status_code == 400


def test_compressed_multiframe_renders_the_frame_asked_for(client: Client) -> None:
    pixels = np.zeros((3, 32, 32), np.uint8)
    pixels[1, :, 16:] = 200
    ds = make_dataset(rows=32, columns=32)
    ds.NumberOfFrames = 3
    ds.compress(JPEG2000Lossless, pixels)
    url = store(client, ds)
    row = np.asarray(image_of(rendered(client, url + "/frames/2/rendered", "image/png")))[0]
    assert (row[:16] == 0).all() and (row[16:] == 255).all()


def test_series_and_study_render_their_first_instance_with_pixel_data(client: Client) -> None:
    image = ct()
    without = make_dataset(
        study_uid=image.StudyInstanceUID,
        series_uid=image.SeriesInstanceUID,
        PixelData=None,
        Rows=None,
        Columns=None,
    )
    no_pixels = store(client, without)
    url = store(client, image)
    expected = rendered(client, url + "/rendered", "image/png").content
    series = f"/v2/studies/{image.StudyInstanceUID}/series/{image.SeriesInstanceUID}"
    assert rendered(client, series + "/rendered", "image/png").content == expected
    assert rendered(client, f"/v2/studies/{image.StudyInstanceUID}/rendered", "image/png").content == expected
    response = rendered(client, no_pixels + "/rendered")
    assert response.status_code == 404
    assert "no pixel data" in response.json()["detail"]


def test_a_study_without_any_pixel_data_has_nothing_to_render(client: Client) -> None:
    ds = make_dataset(PixelData=None, Rows=None, Columns=None)
    store(client, ds)
    response = rendered(client, f"/v2/studies/{ds.StudyInstanceUID}/thumbnail")
    assert response.status_code == 404
    assert f"study {ds.StudyInstanceUID}" in response.json()["detail"]


def test_thumbnails_are_small_jpegs_at_every_level(client: Client) -> None:
    ds = make_dataset(rows=512, columns=256)
    ds.PixelData = np.tile(np.arange(256, dtype=np.uint8), (512, 1)).tobytes()
    url = store(client, ds)
    series = f"/v2/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
    for thumbnail in (
        url + "/thumbnail",
        series + "/thumbnail",
        f"/v2/studies/{ds.StudyInstanceUID}/thumbnail",
        url + "/frames/1/thumbnail",
    ):
        image = image_of(rendered(client, thumbnail))
        assert (image.format, image.size) == ("JPEG", (64, 128))
    assert image_of(rendered(client, url + "/thumbnail", viewport="32,32")).size == (16, 32)


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"quality": "0"}, "quality='0'"),
        ({"quality": "101"}, "from 1 to 100"),
        ({"quality": "high"}, "from 1 to 100"),
        ({"window": "40"}, "center,width"),
        ({"window": "40,abc"}, "center,width"),
        ({"window": "40,0"}, "width above 0"),
        ({"window": "40,400,cubic"}, "linear, linear-exact or sigmoid"),
        ({"viewport": "0,10"}, "vw,vh"),
        ({"viewport": "10"}, "vw,vh"),
        ({"viewport": "10,10,0,0,0,5"}, "sw,sh not 0"),
        ({"viewport": "a,b"}, "vw,vh"),
    ],
)
def test_bad_rendering_parameters_are_explained(client: Client, params: dict[str, str], says: str) -> None:
    url = store(client, ct())
    response = rendered(client, url + "/rendered", **params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert says in response.json()["detail"]


@pytest.mark.parametrize("accept", ["image/webp", "application/dicom", "text/html"])
def test_unsupported_rendered_types_are_406(client: Client, accept: str) -> None:
    url = store(client, ct())
    response = rendered(client, url + "/rendered", accept)
    assert response.status_code == 406
    assert "image/jpeg, image/png, image/gif" in response.json()["detail"]


def test_rendering_what_is_not_stored_is_404(client: Client) -> None:
    assert rendered(client, "/v2/studies/1.2.3/rendered").status_code == 404
    assert rendered(client, "/v2/studies/1.2.3/series/1.2.4/instances/1.2.5/thumbnail").status_code == 404
    assert rendered(client, "/v2/studies/not-a-uid/rendered").status_code == 400


def test_dicomweb_client_retrieves_rendered_images(tmp_path: Path) -> None:
    ds = ct()
    uids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    with running_server(tmp_path) as server:
        dicomweb = DICOMwebClient(server.dicomweb_url)
        dicomweb.store_instances([ds])
        jpeg = Image.open(io.BytesIO(dicomweb.retrieve_instance_rendered(*uids, media_types=("image/jpeg",))))
        assert (jpeg.format, jpeg.size) == ("JPEG", (256, 4))
        png = dicomweb.retrieve_instance_rendered(
            *uids, media_types=("image/png",), params={"window": "0,2048,linear", "viewport": "128,128"}
        )
        assert Image.open(io.BytesIO(png)).size == (128, 2)
        frame = dicomweb.retrieve_instance_frames_rendered(
            *uids, frame_numbers=[1], media_types=("image/png",)
        )
        assert Image.open(io.BytesIO(frame)).format == "PNG"
