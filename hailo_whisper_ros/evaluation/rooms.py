"""The simulated rooms of issue 30 (evaluation.room_simulation) transcribed by our recognizer as a robot runs it and
by faster-whisper int8 on the same weights: WER with its substitutions, deletions and insertions, decode time per
clip, and the audio that decoding.background_trim_db left out.

Our recognizer runs two ways: ``stream``, as a robot does (the StreamingTranscriber: Silero VAD, partials every
second, the finals' texts joined; decode time is every decode of the clip, partials included), and ``clip``, the
whole clip in one Recognizer.transcribe call, as ``compare`` and faster-whisper do (issue 30's figures). Every
engine transcribes a clip of every set before the next clip, the engine order rotating by one each clip, so machine
noise hits all alike (as evaluation.engines.run_interleaved).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.recognizer import Recognizer
from hailo_whisper_ros.core.streaming import StreamingTranscriber
from hailo_whisper_ros.core.transcripts import FINAL
from hailo_whisper_ros.evaluation.datasets import Clip
from hailo_whisper_ros.evaluation.engines import Engine, progress
from hailo_whisper_ros.evaluation.scoring import WordErrors, word_errors

PATHS = ("stream", "clip")
CHUNK_S = 0.1  # the stream path's feeds, as `caption` feeds by default


@dataclass(frozen=True)
class RoomTranscript:
    text: str
    decode_ms: float  # every decode of the clip
    removed_s: float = 0.0  # audio left out as background (decoding.background_trim_db)
    removals: int = 0  # decodes kept for the transcript (finals, the clip's call) that left audio out


class StreamRoomEngine:
    """The clip fed to a StreamingTranscriber in CHUNK_S chunks as fast as it is processed, the finals joined."""

    def __init__(self, label: str, recognizer: Recognizer, options: DecodingOptions):
        self.label, self.recognizer, self.options = label, recognizer, options

    def transcribe(self, audio: np.ndarray) -> RoomTranscript:
        transcriber = StreamingTranscriber(self.recognizer, decoding=self.options)
        chunk = int(CHUNK_S * SAMPLE_RATE)
        events = []
        for start in range(0, len(audio), chunk):
            transcriber.feed(audio[start : start + chunk])
            events += transcriber.process_pending()
        events += transcriber.flush()
        finals = [event for event in events if event.kind == FINAL]
        removed = [event.result.background_removed_s for event in finals]
        return RoomTranscript(" ".join(event.text for event in finals if event.text),
                              transcriber.stats().inference_s * 1e3, sum(removed), sum(r > 0 for r in removed))


class ClipRoomEngine:
    """The whole clip in one Recognizer.transcribe call."""

    def __init__(self, label: str, recognizer: Recognizer, options: DecodingOptions):
        self.label, self.recognizer, self.options = label, recognizer, options

    def transcribe(self, audio: np.ndarray) -> RoomTranscript:
        result = self.recognizer.transcribe(audio, self.options)
        removed = result.background_removed_s
        return RoomTranscript(result.text, result.timings.total_ms, removed, int(removed > 0))


class BaselineRoomEngine:
    """An evaluation.engines Engine (faster-whisper), timed around its call."""

    def __init__(self, engine: Engine):
        self.label, self.engine = engine.label, engine

    def transcribe(self, audio: np.ndarray) -> RoomTranscript:
        started = time.perf_counter()
        text = self.engine.transcribe(audio)[0]
        return RoomTranscript(text, (time.perf_counter() - started) * 1e3)


def recognizer_engines(recognizer: Recognizer, paths: Sequence[str], trims_db: Sequence[float]) -> list:
    """Our engines: each path with each background_trim_db (0: off, as before issue 30)."""
    engine_types = {"stream": StreamRoomEngine, "clip": ClipRoomEngine}
    engines = []
    for path in paths:
        for trim_db in trims_db:
            label = f"ours {path}, " + (f"trim {trim_db:g} dB" if trim_db else "trim off")
            options = replace(DecodingOptions(), background_trim_db=trim_db)
            engines.append(engine_types[path](label, recognizer, options))
    return engines


@dataclass(frozen=True)
class RoomRuns:
    """One engine on one set of rooms: each clip's reference and our transcript, in the clips' order."""

    set_name: str
    engine: str
    references: tuple[str, ...]
    transcripts: tuple[RoomTranscript, ...]

    @property
    def errors(self) -> WordErrors:
        return word_errors(self.references, [t.text for t in self.transcripts])

    def as_json(self) -> dict:
        errors, decode_ms = self.errors, [t.decode_ms for t in self.transcripts]
        return {
            "set": self.set_name, "engine": self.engine, "clips": len(self.references), "wer": errors.wer,
            "substitutions": errors.substitutions, "deletions": errors.deletions, "insertions": errors.insertions,
            "reference_words": errors.reference_words, "mean_decode_ms": float(np.mean(decode_ms)),
            "median_decode_ms": float(np.median(decode_ms)),
            "removed_s": sum(t.removed_s for t in self.transcripts),
            "removals": sum(t.removals for t in self.transcripts),
            "hypotheses": [t.text for t in self.transcripts],
        }


def run_rooms(engines: Sequence, sets: dict[str, list[Clip]], audio: dict[str, list[np.ndarray]]) -> list[RoomRuns]:
    """Every engine on every clip of every set, interleaved (module docstring); the runs by set, then engine. Each
    engine is warmed up on the first clip, untimed."""
    first_set = next(iter(sets))
    for engine in engines:
        engine.transcribe(audio[first_set][0])
    transcripts: dict[tuple[str, str], list[RoomTranscript]] = {
        (name, engine.label): [] for name in sets for engine in engines
    }
    clips = len(audio[first_set])
    for index in progress(range(clips), clips, "rooms"):
        rotation = index % len(engines)
        for engine in list(engines[rotation:]) + list(engines[:rotation]):
            for name in sets:
                transcripts[(name, engine.label)].append(engine.transcribe(audio[name][index]))
    return [RoomRuns(name, label, tuple(clip.reference for clip in sets[name][:clips]), tuple(texts))
            for (name, label), texts in transcripts.items()]


def format_table(runs: Sequence[RoomRuns]) -> list[str]:
    width = max(len(run.engine) for run in runs)
    lines = [f"{'set':<19} {'engine':<{width}} {'WER':>7} {'sub':>5} {'del':>5} {'ins':>5} {'ms/clip':>8} "
             f"{'median':>7} {'removed s':>9} {'removals':>8}"]
    for run in runs:
        figures = run.as_json()
        lines.append(
            f"{run.set_name:<19} {run.engine:<{width}} {figures['wer']:>7.2%} {figures['substitutions']:>5} "
            f"{figures['deletions']:>5} {figures['insertions']:>5} {figures['mean_decode_ms']:>8.1f} "
            f"{figures['median_decode_ms']:>7.1f} {figures['removed_s']:>9.1f} {figures['removals']:>8}"
        )
    return lines
