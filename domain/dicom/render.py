"""Rendered images (PS3.18 8.3.5, 10.4.1.1.3): one frame through the Modality LUT, the VOI window
and the photometric interpretation to 8-bit grey or RGB, scaled to the viewport, encoded by Pillow."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi_lut

from domain.dicom.frames import NoPixelData, check_frame_numbers, decode_frame, read_header
from domain.errors import InvalidRequest, NotAcceptable

JPEG, PNG, GIF = "image/jpeg", "image/png", "image/gif"
RENDERED_TYPES = (JPEG, PNG, GIF)
DEFAULT_QUALITY = 90
# PS3.3 C.11.2.1.3: VOI LUT Function values; PS3.18 8.3.5.1.4 spells them in lower case with '-'.
WINDOW_FUNCTIONS = {"LINEAR", "LINEAR_EXACT", "SIGMOID"}


@dataclass(frozen=True)
class Window:
    center: float
    width: float
    function: str = "LINEAR"


@dataclass(frozen=True)
class Viewport:
    """PS3.18 8.3.5.1.3: the output fits vw×vh; the optional source region is sx,sy,sw,sh."""

    width: int
    height: int
    region: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class RenderOptions:
    media_type: str = JPEG
    quality: int = DEFAULT_QUALITY
    window: Window | None = None
    viewport: Viewport | None = None


def parse_quality(text: str) -> int:
    """PS3.18 8.3.5.1.2: an integer from 1 to 100."""
    try:
        quality = int(text.strip())
    except ValueError:
        quality = 0
    if not 1 <= quality <= 100:
        raise InvalidRequest(f"quality={text!r} is not valid: give an integer from 1 to 100")
    return quality


def parse_window(text: str) -> Window:
    """PS3.18 8.3.5.1.4: `center,width[,function]`, function linear, linear-exact or sigmoid."""
    parts = [p.strip() for p in text.split(",")]
    hint = "give window=center,width[,function], width above 0, function linear, linear-exact or sigmoid"
    if len(parts) not in (2, 3):
        raise InvalidRequest(f"window={text!r} is not valid: {hint}")
    try:
        center, width = float(parts[0]), float(parts[1])
    except ValueError:
        raise InvalidRequest(f"window={text!r} is not valid: {hint}") from None
    function = (parts[2] if len(parts) == 3 else "linear").upper().replace("-", "_")
    if function not in WINDOW_FUNCTIONS or not width > 0 or not np.isfinite(center) or not np.isfinite(width):
        raise InvalidRequest(f"window={text!r} is not valid: {hint}")
    if function == "LINEAR" and width < 1:
        raise InvalidRequest(
            f"window={text!r} is not valid: a linear window is at least 1 wide (PS3.3 C.11.2.1.2)"
        )
    return Window(center, width, function)


def parse_viewport(text: str) -> Viewport:
    """PS3.18 8.3.5.1.3: `vw,vh[,sx,sy,sw,sh]`; vw and vh positive, sw and sh non-zero."""
    hint = "give viewport=vw,vh or vw,vh,sx,sy,sw,sh as integers, vw and vh from 1 to 8192"
    try:
        values = [int(p.strip()) for p in text.split(",")]
    except ValueError:
        raise InvalidRequest(f"viewport={text!r} is not valid: {hint}") from None
    if len(values) not in (2, 6) or not all(1 <= v <= 8192 for v in values[:2]):
        raise InvalidRequest(f"viewport={text!r} is not valid: {hint}")
    if len(values) == 6:
        sx, sy, sw, sh = values[2:]
        if sx < 0 or sy < 0 or sw == 0 or sh == 0:
            raise InvalidRequest(f"viewport={text!r} is not valid: sx,sy at least 0 and sw,sh not 0")
        return Viewport(values[0], values[1], (sx, sy, sw, sh))
    return Viewport(values[0], values[1])


def render_frame(path: Path, number: int, options: RenderOptions) -> bytes:
    """Frame `number` (1-based) of the stored file as an encoded image (runs in a worker thread)."""
    with open(path, "rb") as fp:
        ds, layout = read_header(fp)
    if layout is None:
        raise NoPixelData(f"the instance {ds.get('SOPInstanceUID', '')} has no pixel data to render")
    check_frame_numbers([number], layout)
    try:
        frame = decode_frame(path, number)
    except (ValueError, RuntimeError, NotImplementedError, KeyError, AttributeError) as exc:
        raise NotAcceptable(f"frame {number} cannot be decoded for rendering: {exc}") from exc
    image = Image.fromarray(to_display(frame, ds, options.window))
    if options.viewport is not None:
        image = fit_viewport(image, options.viewport)
    return encode(image, options)


def to_display(frame: np.ndarray, ds: pydicom.Dataset, window: Window | None) -> np.ndarray:
    """8-bit grey (rows, columns) or RGB (rows, columns, 3) for display."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if frame.ndim == 3:  # pydicom gives colour as RGB, YBR converted (PS3.3 C.7.6.3.1.2)
        return _to_8bit(frame, int(ds.get("BitsStored") or 8))
    if photometric == "PALETTE COLOR":
        rgb: np.ndarray = apply_color_lut(frame, ds)
        bits = int(ds.RedPaletteColorLookupTableDescriptor[2])  # PS3.3 C.7.6.3.1.5
        return _to_8bit(rgb, bits)
    grey = _windowed(frame, ds, window)
    if photometric == "MONOCHROME1":  # PS3.3 C.7.6.3.1.2: the minimum value is white
        grey = 255 - grey
    return grey


def _to_8bit(values: np.ndarray, bits: int) -> np.ndarray:
    if values.dtype == np.uint8 or bits <= 8:
        clipped: np.ndarray = np.clip(values, 0, 255).astype(np.uint8)
        return clipped
    shifted: np.ndarray = np.right_shift(values, bits - 8)
    return shifted.clip(0, 255).astype(np.uint8)


LUT_LIMIT = 1 << 20  # integer frames whose values span less than this go through a lookup table


def _windowed(frame: np.ndarray, ds: pydicom.Dataset, window: Window | None) -> np.ndarray:
    """Integer frames: the grey pipeline computed once per stored value, then looked up."""
    if frame.dtype.kind in "iu" and frame.size:
        low, high = int(frame.min()), int(frame.max())
        if high - low < LUT_LIMIT:
            lut = _grey_pipeline(np.arange(low, high + 1, dtype=np.int64).astype(frame.dtype), ds, window)
            looked_up: np.ndarray = lut[np.subtract(frame, low, dtype=np.int64)]
            return looked_up
    return _grey_pipeline(frame, ds, window)


def _grey_pipeline(frame: np.ndarray, ds: pydicom.Dataset, window: Window | None) -> np.ndarray:
    """PS3.3 C.11.2.1: the Modality LUT first, then the window asked for, the file's, its VOI LUT,
    or the full range of the values."""
    if window is None:
        window = file_window(ds)
    if window is None and "VOILUTSequence" in ds:
        return _full_range(apply_voi_lut(frame, ds).astype(np.float64))
    values: np.ndarray = apply_modality_lut(frame, ds).astype(np.float64, copy=False)
    if window is None:
        return _full_range(values)
    return apply_window(values, window)


def file_window(ds: pydicom.Dataset) -> Window | None:
    """The first window of the file (PS3.3 C.11.2.1.2), when it is there and makes sense."""
    try:
        center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    except (TypeError, ValueError, IndexError):
        return None
    function = str(ds.get("VOILUTFunction") or "LINEAR").strip().upper()
    if width > 0 and function in WINDOW_FUNCTIONS and (width >= 1 or function != "LINEAR"):
        return Window(center, width, function)
    return None


def _first(value: object) -> float:
    if isinstance(value, (list, pydicom.multival.MultiValue)):
        value = value[0]
    return float(value)  # type: ignore[arg-type]


def apply_window(values: np.ndarray, window: Window) -> np.ndarray:
    """PS3.3 C.11.2.1.2 (LINEAR, LINEAR_EXACT) and C.11.2.1.3.1 (SIGMOID) onto 0..255."""
    c, w = window.center, window.width
    out: np.ndarray
    if window.function == "SIGMOID":
        out = 255.0 / (1.0 + np.exp(-4.0 * (values - c) / w))
    elif window.function == "LINEAR_EXACT":
        out = ((values - c) / w + 0.5) * 255.0
    else:
        out = ((values - (c - 0.5)) / (w - 1) + 0.5) * 255.0 if w > 1 else (values > c - 0.5) * 255.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _full_range(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    return np.rint((values - low) * (255.0 / (high - low))).astype(np.uint8)


def fit_viewport(image: Image.Image, viewport: Viewport) -> Image.Image:
    """Crop to the source region (a negative sw or sh flips), then scale to fit vw×vh keeping the
    aspect ratio (PS3.18 8.3.5.1.3)."""
    if viewport.region is not None:
        sx, sy, sw, sh = viewport.region
        left, right = sorted((sx, sx + sw))
        top, bottom = sorted((sy, sy + sh))
        left, top = min(max(left, 0), image.width - 1), min(max(top, 0), image.height - 1)
        right, bottom = max(min(right, image.width), left + 1), max(min(bottom, image.height), top + 1)
        image = image.crop((left, top, right, bottom))
        if sw < 0:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if sh < 0:
            image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    scale = min(viewport.width / image.width, viewport.height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0 if scale < 0.5 else None)


def encode(image: Image.Image, options: RenderOptions) -> bytes:
    buffer = io.BytesIO()
    if options.media_type == JPEG:
        image.save(buffer, "JPEG", quality=options.quality)
    elif options.media_type == PNG:
        image.save(buffer, "PNG", compress_level=3)
    else:
        image.save(buffer, "GIF")
    return buffer.getvalue()
