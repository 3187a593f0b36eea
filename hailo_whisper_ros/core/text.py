"""The one rule for comparing transcripts: scores (evaluation), export checks, and any matching of spoken text."""

from __future__ import annotations

import re
import unicodedata

_APOSTROPHES = re.compile(r"['\u2019]")
_THOUSANDS_SEPARATOR = re.compile(r"(?<=\d),(?=\d{3})")


def normalise(text: str) -> str:
    """Lower case, punctuation removed, whitespace folded: the normalisation of the set's reference figures.

    Apostrophes and thousands separators are dropped (don't -> dont, 1,000 -> 1000) and other punctuation becomes
    a space (fellow-citizens -> fellow citizens), the same on both sides, so neither style of reference is penalised.
    """
    text = _THOUSANDS_SEPARATOR.sub("", _APOSTROPHES.sub("", text.lower()))
    text = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    return " ".join(text.split())
