"""Audio in, text out: features -> encoder (Hailo NPU or CPU) -> greedy KV-cache decoder, with statistics.

Audio longer than the encoder window is split at quiet points and every part is transcribed, so nothing is ever
truncated silently.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hailo_whisper_ros.core import HailoWhisperError
from hailo_whisper_ros.core.audio import SAMPLE_RATE
from hailo_whisper_ros.core.decoder import OnnxKvDecoder
from hailo_whisper_ros.core.decoding import DecodingOptions, DecoderSteps, build_logit_filters, greedy_decode
from hailo_whisper_ros.core.encoders import ENCODER_KINDS, create_encoder
from hailo_whisper_ros.core.features import HOP_LENGTH, LogMelExtractor, frames_for
from hailo_whisper_ros.core.hailo import HailoDeviceOptions
from hailo_whisper_ros.core.model_files import INT8_SUBDIR, MODEL_INFO, TOKENIZER, ModelInfo, find_beside
from hailo_whisper_ros.core.tokenizer import WhisperTokenizer

logger = logging.getLogger(__name__)

# Whisper's decoder saw windows whose speech ends before the window does. Measured on the 61 dev clips (tiny.en, INT8
# decoder, encoder output zero-padded to 1500 positions): speech running to the end of a 10 s window makes the
# decoder repeat its last phrase (10 s path WER 8.92 % -> 8.14 % with a 1 s margin), and short windows loop outright.
# Dynamic encoder, speech + 1 s margin, window at least N frames: N = 0 65.7 %, 400 32.8 %, 500 8.14 %, 600 8.14 %
# (the 10 s path's figure, with a median encoder time of 80 instead of 102 ms); 600 keeps a frame margin of 100.
WINDOW_MARGIN_S = 1.0  # every part leaves at least this much of its encoder window to trailing silence
MIN_DYNAMIC_WINDOW_FRAMES = 600  # 6 s: the dynamic encoder's shortest window
SPLIT_SEARCH_S = 2.0  # a long clip is cut at the quietest point of the last this-many seconds of each part
ENERGY_FRAME_S = 0.02  # short-time energy: 20 ms frames ...
ENERGY_HOP_S = 0.01  # ... every 10 ms
WARMUP_OPTIONS = DecodingOptions(max_new_tokens=4)


@dataclass(frozen=True)
class RecognizerConfig:
    model_dir: Path
    """An exported model directory (see model_files)."""
    encoder: str = "dynamic"
    """'dynamic' (the audio's length, at least 6 s), '10s', '30s' (ONNX on the CPU) or 'hef' (Hailo NPU, falling back
    to the 10 s ONNX encoder)."""
    encoder_file: Path | None = None
    """Overrides the encoder file of the kind: an encoder ONNX, or for 'hef' the compiled .hef (required)."""
    decoder_dir: Path | None = None
    """Folder with decoder_model.onnx and decoder_with_past_model.onnx; None means model_dir/default_int8."""
    decoder_hef_file: Path | None = None
    """Run Hailo's fixed-sequence decoder HEF instead of the ONNX decoders (falls back to them like the encoder)."""
    decoder_hef_token_embedding: Path | None = None
    """Token embedding matrix [n_vocab, d] (.npy) for the decoder HEF; required with decoder_hef_file."""
    decoder_hef_positional_embedding: Path | None = None
    """Positional add-input [sequence, d] (.npy) that older decoder HEFs expect from the host."""
    threads: int = 2
    """ONNX Runtime intra-op threads per session."""
    fail_on_fallback: bool = False
    """Raise instead of falling back to the CPU when a configured HEF cannot run."""
    hailo_device: HailoDeviceOptions = field(default_factory=HailoDeviceOptions)
    warmup: bool = True
    """Run one short transcription at load, so the first real request is not slowed by lazy initialisation."""

    def __post_init__(self):
        if self.encoder not in ENCODER_KINDS:
            raise HailoWhisperError(f"encoder must be one of {', '.join(ENCODER_KINDS)}, not {self.encoder!r}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise HailoWhisperError(f"threads must be a whole number >= 1, not {self.threads!r}")
        if self.decoder_hef_file is not None and self.decoder_hef_token_embedding is None:
            raise HailoWhisperError("decoder_hef_file needs decoder_hef_token_embedding (the token embedding .npy)")

    @property
    def resolved_decoder_dir(self) -> Path:
        return Path(self.decoder_dir) if self.decoder_dir is not None else Path(self.model_dir) / INT8_SUBDIR


@dataclass(frozen=True)
class MemoryFigures:
    """Process resident set size (MB) around loading, as in the reference study's memory tables."""

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


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    text: str  # empty when judged no-speech
    tokens: tuple[int, ...]
    avg_logprob: float
    no_speech_prob: float
    no_speech: bool


@dataclass(frozen=True)
class Timings:
    features_ms: float
    encoder_ms: float
    decoder_ms: float
    decoder_first_pass_ms: float  # of decoder_ms: the prefix passes, which also compute the cross-attention cache
    per_token_ms: float  # mean decoder step after the first pass, logit filters included
    decoder_steps: int  # those steps: one per generated token but the last
    total_ms: float


@dataclass(frozen=True)
class TranscriptionResult:
    text: str
    segments: tuple[Segment, ...]
    timings: Timings
    encoder_backend: str  # "hailo" or "onnx"
    decoder_backend: str
    fallback_reason: str | None  # why a configured HEF is not in use

    @property
    def tokens(self) -> tuple[int, ...]:
        return tuple(t for segment in self.segments if not segment.no_speech for t in segment.tokens)

    @property
    def avg_logprob(self) -> float:
        """Mean over segments, weighted by their token counts (+1 for EOT, as Whisper counts)."""
        weights = [len(s.tokens) + 1 for s in self.segments]
        return float(np.average([s.avg_logprob for s in self.segments], weights=weights)) if weights else 0.0

    @property
    def no_speech_prob(self) -> float:
        """The lowest segment figure: a clip is speech-free only if every segment is."""
        return min((s.no_speech_prob for s in self.segments), default=1.0)

    @property
    def segment_count(self) -> int:
        return len(self.segments)


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def release_freed_memory() -> None:
    """Hand memory that is free but still mapped (models of an earlier recognizer) back to the OS, so that an RSS
    difference measures what is loaded next; otherwise a reload into the freed heap reads as ~0 MB."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the figure may then undercount a reload
        pass


def split_at_quiet_points(audio: np.ndarray, max_samples: int, search_samples: int) -> list[tuple[int, int]]:
    """Cut audio into spans of at most max_samples; each cut lies at the lowest short-time energy within the
    last search_samples of its window, so that no word is split."""
    frame = int(ENERGY_FRAME_S * SAMPLE_RATE)
    hop = int(ENERGY_HOP_S * SAMPLE_RATE)
    spans = []
    start = 0
    while len(audio) - start > max_samples:
        region_start = start + max_samples - search_samples
        region = audio[region_start : start + max_samples].astype(np.float64)
        energy_sums = np.concatenate([[0.0], np.cumsum(region * region)])
        frame_starts = np.arange(0, len(region) - frame + 1, hop)
        energies = energy_sums[frame_starts + frame] - energy_sums[frame_starts]
        quietest = np.flatnonzero(energies == energies.min())
        # Of equally quiet frames (a stretch of digital silence) take the middle one.
        cut = region_start + int(frame_starts[quietest[len(quietest) // 2]]) + frame // 2
        spans.append((start, cut))
        start = cut
    spans.append((start, len(audio)))
    return spans


class Recognizer:
    def __init__(self, config: RecognizerConfig):
        self.config = config
        model_dir = Path(config.model_dir)
        if not model_dir.is_dir():
            raise HailoWhisperError(f"model directory not found: {model_dir}")
        decoder_dir = config.resolved_decoder_dir
        try:
            info_path, tokenizer_path = find_beside(decoder_dir, MODEL_INFO), find_beside(decoder_dir, TOKENIZER)
        except FileNotFoundError as error:
            raise HailoWhisperError(str(error)) from None
        try:
            self.info = ModelInfo.load(info_path)
        except (ValueError, TypeError, KeyError) as error:
            raise HailoWhisperError(f"cannot read {info_path}: {error}") from error

        release_freed_memory()
        before_load = rss_mb()
        self.tokenizer = WhisperTokenizer(tokenizer_path, self.info.eot)
        self.features = LogMelExtractor(self.info.n_mels)
        choice = create_encoder(config, self.info)
        self.encoder, self.encoder_backend = choice.encoder, choice.backend
        self.decoder, self.decoder_backend, decoder_fallback = self._create_decoder(decoder_dir)
        reasons = [
            f"{part}: {reason}"
            for part, reason in (("encoder", choice.fallback_reason), ("decoder", decoder_fallback))
            if reason
        ]
        self.fallback_reason = "; ".join(reasons) if reasons else None
        release_freed_memory()  # what loading parsed and copied is garbage now
        after_load = rss_mb()
        if config.warmup:
            self.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32), WARMUP_OPTIONS)
            release_freed_memory()
        self.memory = MemoryFigures(before_load, after_load, rss_mb())

    def _create_decoder(self, decoder_dir: Path) -> tuple[DecoderSteps, str, str | None]:
        """The decoder HEF if configured and usable, else the ONNX KV-cache decoders (with the fallback reason)."""
        config = self.config
        if config.decoder_hef_file is None:
            return OnnxKvDecoder(decoder_dir, self.info, config.threads), "onnx", None
        from hailo_whisper_ros.core import hailo

        hef_path = Path(config.decoder_hef_file)
        if not hef_path.is_file():
            raise HailoWhisperError(f"decoder HEF not found: {hef_path}")
        positional = config.decoder_hef_positional_embedding
        try:
            decoder = hailo.HailoSequenceDecoder(
                hef_path,
                Path(config.decoder_hef_token_embedding),
                Path(positional) if positional is not None else None,
                self.info,
                config.hailo_device,
            )
            return decoder, "hailo", None
        except hailo.HailoUnavailable as unavailable:
            reason = str(unavailable)
        if config.fail_on_fallback:
            raise HailoWhisperError(f"cannot run decoder {hef_path} on the Hailo NPU: {reason}")
        logger.warning("Hailo decoder %s unavailable (%s); using the CPU decoders in %s", hef_path, reason, decoder_dir)
        return OnnxKvDecoder(decoder_dir, self.info, config.threads), "onnx", reason

    def transcribe(self, audio: np.ndarray, options: DecodingOptions = DecodingOptions()) -> TranscriptionResult:
        """Transcribe float32 mono 16 kHz audio of any length."""
        started = time.perf_counter()
        audio = np.asarray(audio)
        if audio.ndim != 1 or not np.issubdtype(audio.dtype, np.floating):
            raise HailoWhisperError(
                f"audio must be 1-D float samples at {SAMPLE_RATE} Hz, got {audio.dtype} {audio.shape}"
            )
        if not np.all(np.isfinite(audio)):
            raise HailoWhisperError("audio contains NaN or infinite samples")
        audio = audio.astype(np.float32, copy=False)
        prefix = options.forced_prefix(self.info)
        filters = build_logit_filters(options, self.info)
        max_samples = self.encoder.max_frames * HOP_LENGTH - int(WINDOW_MARGIN_S * SAMPLE_RATE)
        spans = split_at_quiet_points(audio, max_samples, int(SPLIT_SEARCH_S * SAMPLE_RATE)) if len(audio) else []

        segments = []
        features_ms = encoder_ms = decoder_ms = first_pass_ms = steps_ms = 0.0
        steps = 0
        for begin, end in spans:
            t0 = time.perf_counter()
            mel = self.features.log_mel(audio[begin:end], n_frames=self._frames_for(end - begin))
            t1 = time.perf_counter()
            states = self.encoder.encode(mel)
            t2 = time.perf_counter()
            decoded = greedy_decode(self.decoder, states, prefix, self.info, options, filters)
            t3 = time.perf_counter()
            features_ms += (t1 - t0) * 1e3
            encoder_ms += (t2 - t1) * 1e3
            decoder_ms += (t3 - t2) * 1e3
            first_pass_ms += decoded.first_pass_ms
            steps_ms += decoded.steps_ms
            steps += decoded.steps
            no_speech = options.is_no_speech(decoded.no_speech_prob, decoded.avg_logprob)
            segments.append(
                Segment(
                    start_s=begin / SAMPLE_RATE,
                    end_s=end / SAMPLE_RATE,
                    text="" if no_speech else self.tokenizer.decode(decoded.tokens).strip(),
                    tokens=decoded.tokens,
                    avg_logprob=decoded.avg_logprob,
                    no_speech_prob=decoded.no_speech_prob,
                    no_speech=no_speech,
                )
            )
        timings = Timings(
            features_ms=features_ms,
            encoder_ms=encoder_ms,
            decoder_ms=decoder_ms,
            decoder_first_pass_ms=first_pass_ms,
            per_token_ms=steps_ms / steps if steps else 0.0,
            decoder_steps=steps,
            total_ms=(time.perf_counter() - started) * 1e3,
        )
        return TranscriptionResult(
            text=" ".join(s.text for s in segments if s.text),
            segments=tuple(segments),
            timings=timings,
            encoder_backend=self.encoder_backend,
            decoder_backend=self.decoder_backend,
            fallback_reason=self.fallback_reason,
        )

    def _frames_for(self, samples: int) -> int:
        """Mel frames to compute: the encoder's window, or for a dynamic encoder the audio's frames plus the trailing
        margin, rounded up to even and at least MIN_DYNAMIC_WINDOW_FRAMES."""
        if self.encoder.window_frames is not None:
            return self.encoder.window_frames
        frames = frames_for(samples) + int(WINDOW_MARGIN_S * SAMPLE_RATE) // HOP_LENGTH
        return min(max(frames + frames % 2, MIN_DYNAMIC_WINDOW_FRAMES), self.encoder.max_frames)

    def close(self) -> None:
        """Release NPU resources (HEFs, then the shared VDevice); CPU sessions go with the object."""
        from hailo_whisper_ros.core import hailo

        if self.encoder_backend == "hailo":
            self.encoder.close()
        if self.decoder_backend == "hailo":
            self.decoder.close()
        hailo.release_shared_vdevices()
