"""Media types with parameters (RFC 9110 8.3.1, 12.5.1): Content-Type and Accept."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.errors import InvalidRequest

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
MULTIPART = "multipart/related"


@dataclass(frozen=True)
class MediaRange:
    type: str
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0

    def matches(self, media_type: str) -> bool:
        major, _, minor = self.type.partition("/")
        want_major, _, want_minor = media_type.partition("/")
        return major in ("*", want_major) and minor in ("*", want_minor)


def parse_media_type(value: str) -> MediaRange:
    """`multipart/related; type="application/dicom"; boundary=x` -> type and parameters."""
    head, *rest = _split(value, ";")
    params: dict[str, str] = {}
    q = 1.0
    for item in rest:
        name, sep, raw = item.partition("=")
        if not sep:
            continue
        name, raw = name.strip().lower(), raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1].replace('\\"', '"')
        if name == "q":
            try:
                q = float(raw)
            except ValueError:
                raise InvalidRequest(f"the q value {raw!r} in {value!r} is not a number") from None
        else:
            params[name] = raw
    return MediaRange(head.strip().lower(), params, q)


def parse_accept(header: str | None) -> list[MediaRange]:
    """Accepted media ranges, most preferred first; an absent header accepts anything."""
    if not header or not header.strip():
        return [MediaRange("*/*")]
    ranges = [parse_media_type(item) for item in _split(header, ",") if item.strip()]
    return sorted((r for r in ranges if r.q > 0), key=lambda r: -r.q)


def _split(text: str, separator: str) -> list[str]:
    """Split outside quoted strings."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == separator and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return items
