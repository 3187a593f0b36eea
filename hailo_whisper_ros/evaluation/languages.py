"""Language detection on the multilingual clips (test/data/languages): per spoken language, how often
decoding.language auto detects it, with what probability, what it costs, and the WER of the text decoded in the
detected language.

The clips' index is ``languages.tsv`` (``id<TAB>language<TAB>text`` with a header row, the audio ``id.flac``
beside it); not ``transcripts.tsv``, whose layout (datasets.py) has no language column.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hailo_whisper_ros.core.errors import HailoWhisperError

LANGUAGES_INDEX = "languages.tsv"
# In a clone: the TTS clips made by test/data/languages/make_clips.py (not shipped in the package).
LANGUAGE_CLIPS = Path(__file__).resolve().parents[2] / "test" / "data" / "languages"


@dataclass(frozen=True)
class LanguageClip:
    id: str
    audio_path: Path
    language: str  # the language spoken, an ISO 639-1 code
    text: str


@dataclass
class LanguageFigures:
    """One spoken language's figures over its clips."""

    language: str
    detected: Counter = field(default_factory=Counter)  # detected language -> clips
    probabilities: list[float] = field(default_factory=list)  # the detector's probability of its choice
    detection_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)  # the whole transcribe call, detection included
    given_ms: list[float] = field(default_factory=list)  # the same call with the detected language given instead
    references: list[str] = field(default_factory=list)
    hypotheses: list[str] = field(default_factory=list)

    @property
    def clips(self) -> int:
        return len(self.probabilities)

    @property
    def accuracy(self) -> float:
        return self.detected[self.language] / self.clips if self.clips else math.nan

    @property
    def misses(self) -> str:
        """The wrong detections, e.g. 'en 2, nl 1'."""
        return ", ".join(f"{code} {n}" for code, n in self.detected.most_common() if code != self.language)

    @property
    def wer(self) -> float:
        from hailo_whisper_ros.evaluation.scoring import word_errors

        return word_errors(self.references, self.hypotheses).wer


def language_figures(result) -> dict:
    """For --json: the language a result was decoded in and the detector's probability of it (null: given)."""
    return {"language": result.language,
            "language_prob": None if math.isnan(result.language_prob) else round(result.language_prob, 4)}


def load_language_clips(folder: Path) -> list[LanguageClip]:
    index = Path(folder) / LANGUAGES_INDEX
    if not index.is_file():
        raise HailoWhisperError(f"no {LANGUAGES_INDEX} in {folder} (the clips of test/data/languages in a clone)")
    with open(index, newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or rows[0] != ["id", "language", "text"]:
        raise HailoWhisperError(f"{index}: the first row must be the header id, language, text")
    clips = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != 3:
            raise HailoWhisperError(f"{index} line {number}: expected 3 tab-separated fields, got {len(row)}")
        clip_id, language, text = row
        clips.append(LanguageClip(clip_id, Path(folder) / f"{clip_id}.flac", language, text))
    return clips


def measure_detection(recognizer, clips: list[LanguageClip], options) -> dict[str, LanguageFigures]:
    """Transcribe every clip with ``options`` (language auto) and again with the detected language given (the peer
    whose time the detection adds to), and gather the figures by spoken language."""
    from hailo_whisper_ros.core.audio import load_audio

    if not options.detects_language:
        raise HailoWhisperError("measuring language detection needs decoding.language auto")
    figures: dict[str, LanguageFigures] = {}
    for clip in clips:
        audio = load_audio(clip.audio_path)
        result = recognizer.transcribe(audio, options)
        given = recognizer.transcribe(audio, dataclasses.replace(options, language=result.language))
        row = figures.setdefault(clip.language, LanguageFigures(clip.language))
        row.detected[result.language] += 1
        row.probabilities.append(result.language_prob)
        row.detection_ms.append(result.timings.language_detection_ms)
        row.total_ms.append(result.timings.total_ms)
        row.given_ms.append(given.timings.total_ms)
        row.references.append(clip.text)
        row.hypotheses.append(result.text)
    return figures


def figures_table(figures: dict[str, LanguageFigures]) -> list[dict]:
    """One row per spoken language and one for all of them: what the command prints and writes."""
    rows = []
    every = LanguageFigures("all")
    for language, row in figures.items():
        rows.append(_row(row, row.accuracy))
        every.probabilities += row.probabilities
        every.detection_ms += row.detection_ms
        every.total_ms += row.total_ms
        every.given_ms += row.given_ms
        every.references += row.references
        every.hypotheses += row.hypotheses
        every.detected["all"] += row.detected[language]
    rows.append(_row(every, every.detected["all"] / every.clips if every.clips else math.nan))
    return rows


def _row(row: LanguageFigures, accuracy: float) -> dict:
    return {
        "language": row.language,
        "clips": row.clips,
        "accuracy": accuracy,
        "mean_probability": float(np.mean(row.probabilities)),
        "misses": row.misses if row.language != "all" else "",
        "wer": row.wer,
        "detection_ms_mean": float(np.mean(row.detection_ms)),
        "total_ms_median": float(np.median(row.total_ms)),
        "given_ms_median": float(np.median(row.given_ms)),
        # per clip, auto less given: the detection pass plus the longest window for the first part
        "cost_ms_median": float(np.median(np.subtract(row.total_ms, row.given_ms))),
    }
