"""Index column values as DICOM JSON elements (PS3.18 F.2)."""

from __future__ import annotations

import datetime as dt
from typing import Any

_NUMBERS = {"IS", "DS", "US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"}


def element(vr: str, value: Any) -> dict[str, Any]:
    """`{"vr": vr, "Value": [...]}`, or `{"vr": vr}` for an attribute known to be empty."""
    if value is None or value == "":
        return {"vr": vr}
    if vr == "PN":
        groups = str(value).split("=")
        name = {
            key: text
            for key, text in zip(("Alphabetic", "Ideographic", "Phonetic"), groups, strict=False)
            if text
        }
        return {"vr": vr, "Value": [name]}
    if isinstance(value, dt.date):
        return {"vr": vr, "Value": [value.strftime("%Y%m%d")]}
    if vr == "CS" and isinstance(value, str) and "\\" in value:
        return {"vr": vr, "Value": value.split("\\")}
    if vr in _NUMBERS:
        return {"vr": vr, "Value": [value]}
    return {"vr": vr, "Value": [str(value)]}
