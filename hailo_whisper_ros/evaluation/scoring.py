"""Scoring transcripts against references: word and character error rates (jiwer) after core.text.normalise.

Error rates are corpus-level fractions (0.08 is 8 %) after normalising both sides (lower case, punctuation removed,
whitespace folded).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.text import normalise


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


@dataclass(frozen=True)
class CharacterErrors:
    substitutions: int
    deletions: int
    insertions: int
    reference_characters: int  # of the normalised references, the spaces between words included

    @property
    def cer(self) -> float:
        """Character error rate as a fraction."""
        return (self.substitutions + self.deletions + self.insertions) / max(self.reference_characters, 1)


def character_errors(references: Sequence[str], hypotheses: Sequence[str]) -> CharacterErrors:
    """Corpus-level character errors after normalising both sides; references must not normalise to empty."""
    import jiwer

    pairs = [(normalise(r), normalise(h)) for r, h in zip(references, hypotheses, strict=True)]
    if not pairs:
        return CharacterErrors(0, 0, 0, 0)
    counts = jiwer.process_characters([r for r, _ in pairs], [h for _, h in pairs])
    return CharacterErrors(
        counts.substitutions, counts.deletions, counts.insertions, counts.hits + counts.substitutions + counts.deletions
    )
