"""Engines that turn speech clips into text, timed: our recognizer (any encoder/decoder set-up), and faster-whisper
and whisper.cpp (through pywhispercpp, on the ggml file of `export --ggml`) as the baselines, how to build each
(picklable specs, so a memory-measuring child process can build them too), and the runs of one or several engines
over clips.

Shared by the ``pipeline``, ``compare`` and ``bench`` commands, so that every figure they print is computed one
way. Each clip's ``total_ms`` is the wall time of the engine's whole transcription call (features + encoder +
decoder for ours; ``model.transcribe`` plus reading its segments for faster-whisper). Scores: evaluation.scoring;
what a run is and its statistics: evaluation.stats; memory: evaluation.memory.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from hailo_whisper_ros.core.config import RecognizerConfig
from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.recognizer import Recognizer
from hailo_whisper_ros.evaluation.datasets import Clip
from hailo_whisper_ros.evaluation.scoring import character_errors, normalise, word_errors
from hailo_whisper_ros.evaluation.stats import ClipRun, Measurement


class Engine(Protocol):
    label: str
    fallback_reason: str | None  # why a configured Hailo HEF is not the one in use (None: as configured)

    def transcribe(self, audio: np.ndarray) -> tuple[str, float | None, float | None]:
        """16 kHz mono float32 audio -> (text, encoder ms, decoder ms)."""


class RecognizerEngine:
    """A loaded Recognizer decoding with the given options; counts its one-token decoder steps (bench target 4b)."""

    def __init__(self, label: str, recognizer: Recognizer, options: DecodingOptions):
        self.label = label
        self.options = options
        self.recognizer = recognizer
        self.fallback_reason = self.recognizer.fallback_reason
        self.decoder_steps = 0  # one-token decoder steps over every transcription so far ...
        self.decoder_steps_ms = 0.0  # ... and their time

    def transcribe(self, audio: np.ndarray) -> tuple[str, float | None, float | None]:
        result = self.recognizer.transcribe(audio, self.options)
        self.decoder_steps += result.timings.decoder_steps
        self.decoder_steps_ms += result.timings.per_token_ms * result.timings.decoder_steps
        return result.text, result.timings.encoder_ms, result.timings.decoder_ms


class FasterWhisperEngine:
    """faster-whisper (CTranslate2) configured as our decoder runs: greedy, no timestamps, no VAD, one temperature
    (no fallback re-decoding), and no prompt from the previous window unless ``condition_on_previous_text`` (its
    own default, for long-form audio)."""

    fallback_reason = None

    def __init__(self, label: str, model_dir: Path, compute_type: str, threads: int, language: str,
                 condition_on_previous_text: bool = False):
        try:
            from faster_whisper import WhisperModel
        except ImportError as error:
            raise HailoWhisperError(f"faster-whisper is not installed: {error}") from None
        self.label = label
        self.language = language
        self.condition_on_previous_text = condition_on_previous_text
        self.model = WhisperModel(str(model_dir), device="cpu", compute_type=compute_type, cpu_threads=threads)

    def transcribe(self, audio: np.ndarray) -> tuple[str, float | None, float | None]:
        segments, _ = self.model.transcribe(
            audio,
            language=self.language,
            beam_size=1,
            temperature=0.0,
            without_timestamps=True,
            vad_filter=False,
            condition_on_previous_text=self.condition_on_previous_text,
        )
        return " ".join(segment.text.strip() for segment in segments).strip(), None, None


class WhisperCppEngine:
    """whisper.cpp through pywhispercpp, configured as our decoder runs: greedy, no timestamps, no context from the
    previous window, no temperature fallback. Only ever given a file path: given a bare model name, pywhispercpp
    would download that model. whisper.cpp's OpenMP threads spin-wait for work, so a niced process starves them."""

    fallback_reason = None

    def __init__(self, label: str, model_file: Path, threads: int, language: str):
        try:
            from pywhispercpp.model import Model
        except ImportError as error:
            raise HailoWhisperError(f"pywhispercpp is not installed: {error}") from None
        if not Path(model_file).is_file():
            raise HailoWhisperError(f"whisper.cpp model file not found: {model_file} (hailo-whisper export --ggml)")
        self.label = label
        self.model = Model(
            str(Path(model_file).resolve()), redirect_whispercpp_logs_to=None, n_threads=threads, language=language,
            no_context=True, no_timestamps=True, temperature_inc=0.0, print_progress=False, print_realtime=False,
        )

    def transcribe(self, audio: np.ndarray) -> tuple[str, float | None, float | None]:
        segments = self.model.transcribe(np.ascontiguousarray(audio, dtype=np.float32))
        return " ".join(segment.text.strip() for segment in segments).strip(), None, None


@dataclass(frozen=True)
class RecognizerSpec:
    """How to build a RecognizerEngine; picklable, so a memory-measuring child process can build it too."""

    key: str
    label: str
    config: RecognizerConfig
    options: DecodingOptions

    def create(self) -> RecognizerEngine:
        return RecognizerEngine(self.label, Recognizer(self.config), self.options)


@dataclass(frozen=True)
class FasterWhisperSpec:
    key: str
    label: str
    model_dir: Path  # a CTranslate2 Whisper model directory
    compute_type: str  # "int8", "float32", ...
    threads: int
    language: str

    def create(self) -> FasterWhisperEngine:
        return FasterWhisperEngine(self.label, self.model_dir, self.compute_type, self.threads, self.language)


@dataclass(frozen=True)
class WhisperCppSpec:
    key: str
    label: str
    model_file: Path  # a ggml model file (export --ggml)
    threads: int
    language: str

    def create(self) -> WhisperCppEngine:
        return WhisperCppEngine(self.label, self.model_file, self.threads, self.language)


def ggml_model_file(model_dir: Path) -> tuple[Path | None, str | None]:
    """The whisper.cpp model written beside the export by `export --ggml`, or why the whisper.cpp baseline cannot
    run."""
    import importlib.util

    from hailo_whisper_ros.core.model_dir import GGML_MODEL

    if importlib.util.find_spec("pywhispercpp") is None:
        return None, "pywhispercpp is not installed (requirements-test.txt)"
    path = Path(model_dir) / GGML_MODEL
    if not path.is_file():
        return None, f"no {GGML_MODEL} in {model_dir}: hailo-whisper export --ggml"
    return path, None


def ct2_model_dir(override: Path | None, info) -> tuple[Path | None, str | None]:
    """The CTranslate2 model holding the same weights as the export (``override``, the --ct2_model_dir flag, else
    the packaged one), or why the faster-whisper baselines cannot run."""
    import importlib.util

    from hailo_whisper_ros.export.weights import PACKAGED_SOURCES, resolve_source

    if importlib.util.find_spec("faster_whisper") is None:
        return None, "faster-whisper is not installed"
    if override is not None:
        if not (override / "model.bin").is_file():
            raise HailoWhisperError(f"--ct2_model_dir {override} holds no model.bin")
        return override, None
    if info.name not in PACKAGED_SOURCES:
        return None, f"no packaged CTranslate2 model for {info.name}: pass --ct2_model_dir"
    try:
        directory = resolve_source(info.name).ct2_directory
    except HailoWhisperError as error:
        return None, str(error)
    if directory is None:  # shipped in parts, which CTranslate2 cannot load
        return None, f"the packaged {info.name} model is split in parts: pass --ct2_model_dir"
    return directory, None


def measure(engine: Engine, audio: np.ndarray) -> Measurement:
    started = time.perf_counter()
    text, encoder_ms, decoder_ms = engine.transcribe(audio)
    return Measurement(text, encoder_ms, decoder_ms, (time.perf_counter() - started) * 1e3)


def run_clip(engine: Engine, clip: Clip, audio: np.ndarray) -> ClipRun:
    """Transcribe one clip and score it against its reference."""
    measurement = measure(engine, audio)
    scored = bool(normalise(clip.reference))
    references, hypotheses = [clip.reference], [measurement.hypothesis]
    return ClipRun(
        clip,
        len(audio) / SAMPLE_RATE,
        measurement,
        word_errors(references, hypotheses).wer if scored else None,
        character_errors(references, hypotheses).cer if scored else None,
    )


def run_interleaved(
    engines: Sequence[Engine], clips: Sequence[Clip], audio: Sequence[np.ndarray]
) -> list[list[ClipRun]]:
    """Every engine on every clip, clip by clip, the engine order rotating by one each clip, so that machine noise
    and whatever one engine leaves in the caches hit all of them alike. Each engine is first warmed up on the first
    clip, untimed. Returns the runs of each engine, in the engines' order."""
    for engine in engines:
        engine.transcribe(audio[0])
    runs: list[list[ClipRun]] = [[] for _ in engines]
    order = list(range(len(engines)))
    for index in progress(range(len(clips)), len(clips), "clips"):
        rotation = index % len(order)
        for number in order[rotation:] + order[:rotation]:
            runs[number].append(run_clip(engines[number], clips[index], audio[index]))
    return runs


def progress(iterable: Iterable, total: int, description: str) -> Iterable:
    """A tqdm progress bar on stderr when it is a terminal; the plain iterable otherwise (logs, pipes, tests)."""
    if not sys.stderr.isatty():
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=description, unit="clip", leave=False)
