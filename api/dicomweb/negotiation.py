"""Which representation of instances a WADO-RS client gets (PS3.18 8.7.3 and 8.7.3.5)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from api.dicomweb.media import DICOM, MULTIPART, MediaRange, parse_accept
from domain.dicom.uids import EXPLICIT_VR_LITTLE_ENDIAN
from domain.errors import NotAcceptable
from domain.services.renditions import AS_STORED, refusal
from domain.services.retrieve import StoredFile

ZIP = "application/zip"


@dataclass(frozen=True)
class Representation:
    media_type: str  # DICOM (a single part), MULTIPART or ZIP
    transfer_syntax: str  # a UID, or AS_STORED


def choose_representation(accept: str | None, files: Sequence[StoredFile], *, single: bool) -> Representation:
    """The most preferred acceptable representation; at equal quality, one that needs no
    transcoding wins (as Azure does). `*` keeps the stored syntax; a media type without
    transfer-syntax means Explicit VR Little Endian (PS3.18 8.7.3.5.2)."""
    options: list[tuple[float, bool, int, Representation]] = []
    refusals: list[str] = []
    for order, media in enumerate(parse_accept(accept)):
        candidate = _candidate(media, single)
        if candidate is None:
            continue
        reasons = [r for f in files if (r := refusal(f, candidate.transfer_syntax))]
        if reasons:
            refusals.append(reasons[0])
            continue
        syntax = candidate.transfer_syntax
        needs_transcoding = syntax != AS_STORED and any(f.transfer_syntax_uid != syntax for f in files)
        options.append((-media.q, needs_transcoding, order, candidate))
    if options:
        return min(options, key=lambda o: o[:3])[3]
    stored = ", ".join(sorted({f.transfer_syntax_uid for f in files}))
    why = f" ({refusals[0]})" if refusals else ""
    raise NotAcceptable(
        f"cannot answer Accept {accept!r}{why}; the instances are stored as {stored}. Ask for "
        f'multipart/related; type="{DICOM}" with transfer-syntax=* (as stored) or '
        f"{EXPLICIT_VR_LITTLE_ENDIAN} (uncompressed)"
    )


def _candidate(media: MediaRange, single: bool) -> Representation | None:
    syntax = media.params.get("transfer-syntax", EXPLICIT_VR_LITTLE_ENDIAN)
    if media.type in ("*/*", "multipart/*") or (media.type == MULTIPART and "type" not in media.params):
        kind = DICOM if single and media.type == "*/*" else MULTIPART
        return Representation(kind, media.params.get("transfer-syntax", AS_STORED))
    if media.type == MULTIPART and media.params["type"].lower() == DICOM:
        return Representation(MULTIPART, syntax)
    if single and media.type in (DICOM, "application/*"):
        return Representation(DICOM, syntax)
    if not single and media.type == ZIP:
        return Representation(ZIP, AS_STORED)  # a ZIP holds the Part-10 files as stored
    return None
