"""Absolute DICOMweb URLs as the client addressed the server."""

from typing import Any

from litestar import Request

from domain.dicom.fast_json import BULK_DATA_PREFIX
from domain.dicom.uids import check_uid

VERSION_PREFIX = "/v2"


def dicomweb_base(request: Request[Any, Any, Any]) -> str:
    """`http://host:port/v2`, from the request's own base URL (Host header and root path)."""
    return str(request.base_url).rstrip("/") + VERSION_PREFIX


def path_uids(study: str, series: str | None, instance: str | None) -> tuple[str, str | None, str | None]:
    """The UIDs of a resource path, each checked (400 naming the bad one)."""
    return (
        check_uid(study, "StudyInstanceUID"),
        None if series is None else check_uid(series, "SeriesInstanceUID"),
        None if instance is None else check_uid(instance, "SOPInstanceUID"),
    )


def with_absolute_bulk_data_uris(dicom_json: str, instance_url: str) -> str:
    """Stored metadata names bulk data relative to its instance (`bulkdata/7FE00010`); clients
    get absolute URIs (PS3.18 F.2.6). `instance_url` ends with a slash."""
    return dicom_json.replace(
        f'"BulkDataURI":"{BULK_DATA_PREFIX}', f'"BulkDataURI":"{instance_url}{BULK_DATA_PREFIX}'
    )


def wants_original(request: Request[Any, Any, Any]) -> bool:
    """Azure's `msdicom-request-original: true`: the files as first stored, before any update."""
    return request.headers.get("msdicom-request-original", "").strip().lower() == "true"
