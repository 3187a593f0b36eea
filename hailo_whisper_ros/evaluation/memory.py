"""Memory of a loaded model, as the process's resident set size (core.resources) counts it.

``load_recognizer``: a Recognizer loaded with its RSS read before loading, after loading and after the warm-up, the
freed heap handed back to the OS before each reading so that garbage of the load (or of an earlier model) is not
counted. The ``pipeline`` command prints these figures; ``caption`` and ``bench`` report the model's part.

``measure_peak_memory``: the peak RSS of a fresh process per engine (this module run as ``python -m
hailo_whisper_ros.evaluation.memory``) while it imports the engine, loads and warms it up and transcribes the given
clips. Run in the measuring process instead, every engine's figure would include the ones loaded before it.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from hailo_whisper_ros.core.config import RecognizerConfig
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.recognizer import Recognizer
from hailo_whisper_ros.core.resources import peak_resident_mb, release_freed_memory, resident_mb
from hailo_whisper_ros.evaluation.engines import FasterWhisperSpec, RecognizerSpec


@dataclass(frozen=True)
class MemoryFigures:
    """Process resident set size (MB) around loading, as in the Pi 5 Hailo-8L study's memory tables."""

    before_load_mb: float
    after_load_mb: float
    after_warmup_mb: float

    @property
    def load_mb(self) -> float:
        """Memory usage of the loaded sessions (encoder, decoders, tokenizer)."""
        return self.after_load_mb - self.before_load_mb

    @property
    def warmup_mb(self) -> float:
        """Warm-up overhead: arenas and caches allocated by the first inference."""
        return self.after_warmup_mb - self.after_load_mb

    @property
    def model_mb(self) -> float:
        """What the warmed-up model holds: its load and its warm-up."""
        return self.after_warmup_mb - self.before_load_mb


def load_recognizer(config: RecognizerConfig) -> tuple[Recognizer, MemoryFigures]:
    """The Recognizer of ``config``, loaded and warmed up, and its memory figures."""
    release_freed_memory()
    before_load = resident_mb()
    recognizer = Recognizer(replace(config, warmup=False))  # warmed up below, after the load is measured
    release_freed_memory()
    after_load = resident_mb()
    recognizer.warm_up()
    release_freed_memory()
    return recognizer, MemoryFigures(before_load, after_load, resident_mb())


@dataclass(frozen=True)
class PeakMemory:
    base_rss_mb: float  # the fresh process before the engine is created (interpreter, numpy, this module)
    loaded_rss_mb: float  # after creating the engine (our recognizer warms up at load)
    peak_rss_mb: float  # highest resident set size of the process, transcriptions included
    fallback_reason: str | None


def measure_peak_memory(spec: RecognizerSpec | FasterWhisperSpec, audio_paths: Sequence[Path]) -> PeakMemory:
    """Peak RSS of a fresh process that creates only this engine and transcribes the given files once each."""
    child = subprocess.run(
        [sys.executable, "-m", __name__],
        input=pickle.dumps((spec, [str(p) for p in audio_paths])),
        capture_output=True,
    )
    if child.returncode != 0:
        last_line = (child.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise HailoWhisperError(f"memory measurement of {spec.label} failed: {last_line}")
    return PeakMemory(**json.loads(child.stdout.decode().strip().splitlines()[-1]))


def peak_memory_child() -> None:
    """The child of measure_peak_memory: reads (spec, audio paths) as a pickle on stdin, prints PeakMemory JSON.
    The pickle comes from its parent, the measuring command, and from nowhere else."""
    from hailo_whisper_ros.core.audio import load_audio

    spec, audio_paths = pickle.loads(sys.stdin.buffer.read())
    clips = [load_audio(path) for path in audio_paths]
    base = resident_mb()
    engine = spec.create()
    loaded = resident_mb()
    for audio in clips:
        engine.transcribe(audio)
    print(json.dumps(asdict(PeakMemory(base, loaded, peak_resident_mb(), engine.fallback_reason))))


if __name__ == "__main__":
    peak_memory_child()
