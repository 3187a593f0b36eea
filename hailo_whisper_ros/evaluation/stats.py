"""The figures of an engine's runs over a list of clips: each clip's run (its measured transcription and scores),
timing statistics and the summary the ``pipeline``, ``compare`` and ``bench`` commands print and write. The engines
that make the runs are in evaluation.engines, which imports this module, not the other way round.

A clip whose normalised reference is empty is non-speech: it is correct when the transcript is empty too and a
hallucination otherwise, and it is left out of WER and CER (which have no denominator for it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from hailo_whisper_ros.evaluation.datasets import Clip
from hailo_whisper_ros.evaluation.scoring import CharacterErrors, WordErrors, character_errors, normalise, word_errors

NORMALISATION = "lower case, punctuation removed, whitespace folded"  # what core.text.normalise does, for reports


@dataclass(frozen=True)
class Measurement:
    """One transcription of one clip. Encoder/decoder times are None when the engine does not report them."""

    hypothesis: str
    encoder_ms: float | None
    decoder_ms: float | None
    total_ms: float


@dataclass(frozen=True)
class ClipRun:
    """A clip, its transcription and its scores (None for a non-speech clip)."""

    clip: Clip
    duration_s: float
    measurement: Measurement
    wer: float | None
    cer: float | None

    @property
    def non_speech(self) -> bool:
        return not normalise(self.clip.reference)

    @property
    def hallucination(self) -> bool:
        """Words transcribed for a non-speech clip."""
        return self.non_speech and bool(normalise(self.measurement.hypothesis))

    def as_json(self) -> dict:
        return {
            "id": self.clip.id,
            "duration_s": round(self.duration_s, 3),
            "reference": self.clip.reference,
            "hypothesis": self.measurement.hypothesis,
            "encoder_ms": _round(self.measurement.encoder_ms),
            "decoder_ms": _round(self.measurement.decoder_ms),
            "total_ms": _round(self.measurement.total_ms),
            "wer": self.wer,
            "cer": self.cer,
            "non_speech": self.non_speech,
            "hallucination": self.hallucination,
            "audio_path": str(self.clip.audio_path),
        }


@dataclass(frozen=True)
class TimingStats:
    count: int
    mean: float
    std: float  # population standard deviation, as numpy's default (the Pi 5 Hailo-8L study's figure)
    min: float
    max: float
    median: float

    @classmethod
    def of(cls, values: Iterable[float | None]) -> TimingStats | None:
        """Statistics of the values, or None when there are none (an engine that does not report a stage)."""
        array = np.asarray([v for v in values if v is not None], dtype=np.float64)
        if not len(array):
            return None
        return cls(len(array), float(array.mean()), float(array.std()), float(array.min()), float(array.max()),
                   float(np.median(array)))

    def lines(self) -> list[str]:
        return [
            f"  Mean: {self.mean:.1f} ± {self.std:.1f}",
            f"  Min/Max: {self.min:.1f} / {self.max:.1f}",
            f"  Median: {self.median:.1f}",
        ]

    def as_json(self) -> dict:
        return {name: round(value, 3) if isinstance(value, float) else value for name, value in asdict(self).items()}


@dataclass(frozen=True)
class RunSummary:
    """Every figure of one engine over a list of clips."""

    clips: int
    audio_s: float
    speech_clips: int
    non_speech_clips: int
    non_speech_correct: int  # empty transcript for an empty reference
    hallucinations: int  # words for an empty reference
    words: WordErrors
    characters: CharacterErrors
    mean_clip_wer: float | None
    mean_clip_cer: float | None
    encoder_ms: TimingStats | None
    decoder_ms: TimingStats | None
    total_ms: TimingStats | None
    rtfx: float | None  # audio duration over the summed transcription times (higher is faster)

    @property
    def wer(self) -> float | None:
        return self.words.wer if self.speech_clips else None

    @property
    def cer(self) -> float | None:
        return self.characters.cer if self.speech_clips else None

    def as_json(self) -> dict:
        return {
            "clips": self.clips,
            "audio_s": round(self.audio_s, 3),
            "speech_clips": self.speech_clips,
            "non_speech_clips": self.non_speech_clips,
            "non_speech_correct": self.non_speech_correct,
            "hallucinations": self.hallucinations,
            "normalisation": NORMALISATION,
            "wer": self.wer,
            "cer": self.cer,
            "word_errors": asdict(self.words),
            "character_errors": asdict(self.characters),
            "mean_clip_wer": self.mean_clip_wer,
            "mean_clip_cer": self.mean_clip_cer,
            "encoder_ms": self.encoder_ms and self.encoder_ms.as_json(),
            "decoder_ms": self.decoder_ms and self.decoder_ms.as_json(),
            "total_ms": self.total_ms and self.total_ms.as_json(),
            "rtfx": self.rtfx,
        }


def summarise(runs: Sequence[ClipRun]) -> RunSummary:
    speech = [run for run in runs if not run.non_speech]
    non_speech = [run for run in runs if run.non_speech]
    audio_s = sum(run.duration_s for run in runs)
    busy_s = sum(run.measurement.total_ms for run in runs) / 1e3
    references = [run.clip.reference for run in speech]
    hypotheses = [run.measurement.hypothesis for run in speech]
    return RunSummary(
        clips=len(runs),
        audio_s=audio_s,
        speech_clips=len(speech),
        non_speech_clips=len(non_speech),
        non_speech_correct=sum(not run.hallucination for run in non_speech),
        hallucinations=sum(run.hallucination for run in non_speech),
        words=word_errors(references, hypotheses),
        characters=character_errors(references, hypotheses),
        mean_clip_wer=float(np.mean([run.wer for run in speech])) if speech else None,
        mean_clip_cer=float(np.mean([run.cer for run in speech])) if speech else None,
        encoder_ms=TimingStats.of(run.measurement.encoder_ms for run in runs),
        decoder_ms=TimingStats.of(run.measurement.decoder_ms for run in runs),
        total_ms=TimingStats.of(run.measurement.total_ms for run in runs),
        rtfx=audio_s / busy_s if busy_s else None,
    )


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
