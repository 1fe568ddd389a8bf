"""Small valid DICOM Part-10 datasets for tests, and the multipart/related bodies that carry them."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

DEFAULT_BOUNDARY = "tessera-test"


def make_dataset(
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    rows: int = 8,
    columns: int = 8,
    **attributes: Any,
) -> pydicom.Dataset:
    """A small Secondary Capture image; keyword arguments set (or, with None, remove) attributes."""
    ds = pydicom.Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.PatientName = "Test^Patient"
    ds.PatientID = "TESSERA-TEST"
    ds.StudyDate = "20240101"
    ds.StudyTime = "120000"
    ds.Modality = "OT"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    pixels = bytes(i % 256 for i in range(rows * columns))
    ds.PixelData = pixels + b"\0" * (len(pixels) % 2)  # OB/OW values have even length
    for keyword, value in attributes.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", SecondaryCaptureImageStorage)
    meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID", generate_uid())
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def to_bytes(ds: pydicom.Dataset) -> bytes:
    """The dataset as a Part-10 file: preamble, DICM prefix, file meta, then the dataset."""
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def multipart(parts: list[bytes], boundary: str = DEFAULT_BOUNDARY) -> tuple[bytes, str]:
    """A multipart/related body of application/dicom parts, and its Content-Type (PS3.18 8.6.1.2)."""
    chunks: list[bytes] = []
    for part in parts:
        chunks.append(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        chunks.append(part)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return b"".join(chunks), content_type


def parse_multipart(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/related body as (lower-cased headers, content), strictly framed."""
    boundary = next(
        p.split("=", 1)[1].strip().strip('"')
        for p in content_type.split(";")
        if p.strip().lower().startswith("boundary=")
    )
    delimiter = b"\r\n--" + boundary.encode()
    sections = (b"\r\n" + body).split(delimiter)
    assert sections[-1].startswith(b"--"), "the body has no closing boundary"
    parts = []
    for section in sections[1:-1]:
        assert section.startswith(b"\r\n"), "a boundary line is not followed by CRLF"
        head, _, content = section[2:].partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, content))
    return parts
