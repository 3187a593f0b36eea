"""Measuring recognizers on speech clips: engines, per-clip runs, scores, timing statistics and memory.

Shared by the ``pipeline``, ``compare`` and ``bench`` commands, so that every figure they print is computed one
way. An engine is anything that turns 16 kHz mono audio into text: our recognizer (any encoder/decoder set-up) or
faster-whisper as the baseline. Each clip's ``total_ms`` is the wall time of the engine's whole transcription call
(features + encoder + decoder for ours; ``model.transcribe`` plus reading its segments for faster-whisper).

Scores: word and character error rates after ``evaluation.normalise`` (lower case, punctuation removed, whitespace
folded), counted with jiwer over the whole corpus and per clip. A clip whose normalised reference is empty is
non-speech: it is correct when the transcript is empty too and a hallucination otherwise, and it is left out of
WER and CER (which have no denominator for it). Error rates are fractions (0.08 is 8 %).

Peak memory is measured in a fresh process per engine (``measure_peak_memory``): its peak resident set size while it
imports the engine, loads and warms it up and transcribes the given clips. Run in the measuring process instead,
every engine's figure would include the ones loaded before it.
"""

from __future__ import annotations

import json
import os
import pickle
import platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Protocol, Sequence

import numpy as np

from hailo_whisper_ros.core import HailoWhisperError
from hailo_whisper_ros.core.audio import SAMPLE_RATE
from hailo_whisper_ros.core.datasets import Clip
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.evaluation import WordErrors, normalise, word_errors
from hailo_whisper_ros.core.recognizer import Recognizer, RecognizerConfig, rss_mb

NORMALISATION = "lower case, punctuation removed, whitespace folded"


# ---------------------------------------------------------------------------------------------------- engines


@dataclass(frozen=True)
class Measurement:
    """One transcription of one clip. Encoder/decoder times are None when the engine does not report them."""

    hypothesis: str
    encoder_ms: float | None
    decoder_ms: float | None
    total_ms: float


class Engine(Protocol):
    label: str
    fallback_reason: str | None  # why a configured Hailo HEF is not the one in use (None: as configured)

    def transcribe(self, audio: np.ndarray) -> tuple[str, float | None, float | None]:
        """16 kHz mono float32 audio -> (text, encoder ms, decoder ms)."""


class RecognizerEngine:
    def __init__(self, label: str, config: RecognizerConfig, options: DecodingOptions):
        self.label = label
        self.options = options
        self.recognizer = Recognizer(config)
        self.fallback_reason = self.recognizer.fallback_reason
        self.decoder_steps = 0  # one-token decoder steps over every transcription so far ...
        self.decoder_steps_ms = 0.0  # ... and their time

    def transcribe(self, audio: np.ndarray) -> tuple[str, float | None, float | None]:
        result = self.recognizer.transcribe(audio, self.options)
        self.decoder_steps += result.timings.decoder_steps
        self.decoder_steps_ms += result.timings.per_token_ms * result.timings.decoder_steps
        return result.text, result.timings.encoder_ms, result.timings.decoder_ms


class FasterWhisperEngine:
    """faster-whisper (CTranslate2) configured as our decoder runs: greedy, no timestamps, no VAD, no prompt from
    the previous window, one temperature (no fallback re-decoding)."""

    fallback_reason = None

    def __init__(self, label: str, model_dir: Path, compute_type: str, threads: int, language: str):
        try:
            from faster_whisper import WhisperModel
        except ImportError as error:
            raise HailoWhisperError(f"faster-whisper is not installed: {error}") from None
        self.label = label
        self.language = language
        self.model = WhisperModel(str(model_dir), device="cpu", compute_type=compute_type, cpu_threads=threads)

    def transcribe(self, audio: np.ndarray) -> tuple[str, float | None, float | None]:
        segments, _ = self.model.transcribe(
            audio,
            language=self.language,
            beam_size=1,
            temperature=0.0,
            without_timestamps=True,
            vad_filter=False,
            condition_on_previous_text=False,
        )
        return " ".join(segment.text.strip() for segment in segments).strip(), None, None


@dataclass(frozen=True)
class RecognizerSpec:
    """How to build a RecognizerEngine; picklable, so a memory-measuring child process can build it too."""

    key: str
    label: str
    config: RecognizerConfig
    options: DecodingOptions

    def create(self) -> RecognizerEngine:
        return RecognizerEngine(self.label, self.config, self.options)


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


def ct2_model_dir(override: Path | None, info) -> tuple[Path | None, str | None]:
    """The CTranslate2 model holding the same weights as the export (``override``, the --ct2_model_dir flag, else
    the packaged one), or why the faster-whisper baselines cannot run."""
    import importlib.util

    from hailo_whisper_ros.core.ct2_weights import PACKAGED_SOURCES, resolve_source

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


# ---------------------------------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class CharacterErrors:
    substitutions: int
    deletions: int
    insertions: int
    reference_characters: int  # of the normalised references, the spaces between words included

    @property
    def cer(self) -> float:
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


def run_interleaved(engines: Sequence[Engine], clips: Sequence[Clip], audio: Sequence[np.ndarray]) -> list[list[ClipRun]]:
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


# ---------------------------------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class TimingStats:
    count: int
    mean: float
    std: float  # population standard deviation, as numpy's default (the reference study's figure)
    min: float
    max: float
    median: float

    @classmethod
    def of(cls, values: Iterable[float | None]) -> "TimingStats | None":
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


# ---------------------------------------------------------------------------------------------------- memory


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


def _peak_memory_child() -> None:
    """The child of measure_peak_memory: reads (spec, audio paths) as a pickle on stdin, prints PeakMemory JSON."""
    from hailo_whisper_ros.core.audio import load_audio

    spec, audio_paths = pickle.loads(sys.stdin.buffer.read())
    clips = [load_audio(path) for path in audio_paths]
    base = rss_mb()
    engine = spec.create()
    loaded = rss_mb()
    for audio in clips:
        engine.transcribe(audio)
    print(json.dumps(asdict(PeakMemory(base, loaded, peak_rss_mb(), engine.fallback_reason))))


# ---------------------------------------------------------------------------------------------------- context


def encoder_flops(info, frames: int) -> float:
    """Floating-point operations (multiply and add counted apart) of one Whisper encoder call on ``frames`` mel
    frames: the two convolutions, then per layer the projections (QKV, output: 4 d^2 per position), the MLP (8 d^2)
    and attention (2 T^2 d for scores and for the weighted sum)."""
    d, positions = info.n_audio_state, frames // 2
    convolutions = 2 * 3 * info.n_mels * d * frames + 2 * 3 * d * d * positions
    per_layer = 2 * positions * 12 * d * d + 2 * 2 * positions * positions * d
    return float(convolutions + info.n_audio_layer * per_layer)


def gemm_seconds(size: int, threads: int, repeats: int = 20) -> float:
    """Median time of a size x size FP32 matrix product in ONNX Runtime with ``threads`` threads: the yardstick
    of what this machine's cores reach, measured in the same run as the figures it is compared with."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((size, size)).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])], [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    a = rng.standard_normal((size, size)).astype(np.float32)
    session.run(None, {"a": a})
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        session.run(None, {"a": a})
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def machine_info(threads: int) -> dict:
    """What the figures were measured on: CPU, libraries, thread count, date, load."""
    import importlib.metadata

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), cpu)
    except OSError:
        pass
    versions = {}
    for package in ("onnxruntime", "ctranslate2", "faster-whisper", "numpy", "jiwer"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load_average_1min": os.getloadavg()[0],
    }


def progress(iterable: Iterable, total: int, description: str) -> Iterable:
    """A tqdm progress bar on stderr when it is a terminal; the plain iterable otherwise (logs, pipes, tests)."""
    if not sys.stderr.isatty():
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=description, unit="clip", leave=False)


if __name__ == "__main__":
    _peak_memory_child()
