"""UID syntax (PS3.5 9.1) and the transfer syntaxes Tessera names."""

from __future__ import annotations

import re

from domain.errors import InvalidRequest

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"

# PS3.5 9.1: digits and dots, at most 64 characters. Leading zeros in a component are
# forbidden by the standard, but real archives hold such UIDs, so they are accepted (as Azure does).
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def is_valid_uid(value: str) -> bool:
    return len(value) <= 64 and bool(_UID.match(value))


def check_uid(value: str, what: str) -> str:
    """The UID from a URL or a query, trailing spaces tolerated, or a 400 that says what is wrong."""
    uid = value.rstrip(" \x00")
    if not is_valid_uid(uid):
        raise InvalidRequest(
            f"{what} {value!r} is not a valid DICOM UID: "
            "use digits separated by dots, at most 64 characters (PS3.5 9.1)"
        )
    return uid
