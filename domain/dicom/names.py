"""Person names normalized for matching: upper case, accents folded (PS3.4 C.2.2.2.1 allows
case- and accent-insensitive matching of PN)."""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[\^= ,]+")


def normalize_person_name(value: str) -> str:
    """`Müller^Hans` -> `MULLER^HANS`; trailing empty components dropped."""
    folded = unicodedata.normalize("NFKD", value)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    groups = [group.rstrip("^").strip() for group in folded.upper().split("=")]
    while groups and not groups[-1]:
        groups.pop()
    return "=".join(groups)


def name_words(normalized: str) -> str:
    """Every name component as a word, space-led, so a fuzzy prefix is `LIKE '% JOH%'`."""
    words = [word for word in _SEPARATORS.split(normalized) if word]
    return " " + " ".join(words) + " " if words else ""
