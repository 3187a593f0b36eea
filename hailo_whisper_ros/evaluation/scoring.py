"""Word error rate on a speech set: loading the set, normalising text, counting errors with jiwer.

A set is a folder with ``ALL.tsv`` (path, duration_s, reference, with a header row; paths relative to the folder)
or with ``transcripts.tsv`` (id, reference, no header; the audio is the file ``id.*`` beside it).
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from hailo_whisper_ros.core import HailoWhisperError

AUDIO_SUFFIXES = (".wav", ".flac")


@dataclass(frozen=True)
class Utterance:
    audio_path: Path
    reference: str
    duration_s: float | None = None  # as listed in ALL.tsv; None for transcripts.tsv sets


def load_dataset(folder: str | Path) -> list[Utterance]:
    """The utterances of a set folder, from its ALL.tsv or else its transcripts.tsv."""
    folder = Path(folder)
    if (folder / "ALL.tsv").is_file():
        rows = _read_tsv(folder / "ALL.tsv")
        if rows and rows[0][:1] == ["path"]:
            rows = rows[1:]
        return [Utterance(folder / path, reference, float(duration)) for path, duration, reference in rows]
    if (folder / "transcripts.tsv").is_file():
        utterances = []
        for utterance_id, reference in _read_tsv(folder / "transcripts.tsv"):
            candidates = [folder / (utterance_id + suffix) for suffix in AUDIO_SUFFIXES]
            matches = [path for path in candidates if path.is_file()]
            if not matches:
                raise HailoWhisperError(f"no audio file {utterance_id}{{{','.join(AUDIO_SUFFIXES)}}} in {folder}")
            utterances.append(Utterance(matches[0], reference))
        return utterances
    raise HailoWhisperError(f"speech set {folder} has neither ALL.tsv nor transcripts.tsv")


def _read_tsv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as file:
        rows = [row for row in csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE) if row]
    for number, row in enumerate(rows, start=1):
        if len(row) not in (2, 3):
            raise HailoWhisperError(f"{path} line {number}: expected 2 or 3 tab-separated fields, got {len(row)}")
    return rows


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


@dataclass(frozen=True)
class WordErrors:
    substitutions: int
    deletions: int
    insertions: int
    reference_words: int

    @property
    def wer(self) -> float:
        """Word error rate as a fraction (0.08 is 8 %)."""
        return (self.substitutions + self.deletions + self.insertions) / max(self.reference_words, 1)


def word_errors(references: Sequence[str], hypotheses: Sequence[str]) -> WordErrors:
    """Corpus-level word errors after normalising both sides."""
    import jiwer

    if len(references) != len(hypotheses):
        raise HailoWhisperError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    pairs = [(normalise(r), normalise(h)) for r, h in zip(references, hypotheses)]
    # jiwer rejects empty references; every word hypothesised for one is an insertion.
    unreferenced_words = sum(len(h.split()) for r, h in pairs if not r)
    scored = [(r, h) for r, h in pairs if r]
    if not scored:
        return WordErrors(0, 0, unreferenced_words, 0)
    counts = jiwer.process_words([r for r, _ in scored], [h for _, h in scored])
    reference_words = sum(len(r.split()) for r, _ in scored)
    return WordErrors(counts.substitutions, counts.deletions, counts.insertions + unreferenced_words, reference_words)
