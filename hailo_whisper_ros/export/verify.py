"""`export --verify`: compare an exported model directory with CTranslate2 / faster-whisper on the same weights.

Checks the encoders' outputs on real speech (max abs difference from CTranslate2's float32 encoder) and the greedy
transcripts of the clips the caller gives: faster-whisper float32 against the runtime's own decoding
(core.backends.onnx.OnnxKvDecoder stepped by core.decoding.greedy_decode) with the FP32 and the INT8 decoders on the
30 s encoder's states, and with the INT8 decoder on the partially INT8 dynamic encoder's (over the same 30 s window),
the default set-up. The quantized encoder's difference is reported, not bounded: its transcripts are the check.
The alignment heads' pass (word timings) is checked against CTranslate2's Whisper.align, what faster-whisper's
word_timestamps runs: on the same 30 s window and faster-whisper's tokens, where the DTW path starts each token.
Log-mel features come from faster-whisper's FeatureExtractor so that both sides see identical inputs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hailo_whisper_ros.core import model_dir as mf
from hailo_whisper_ros.core.backends.onnx import OnnxEncoder, OnnxKvDecoder
from hailo_whisper_ros.core.config import RecognizerConfig
from hailo_whisper_ros.core.constants import (
    CHUNK_LENGTH,
    ENCODER_POSITIONS,
    MAX_TEXT_POSITIONS,
    N_FRAMES,
    N_SAMPLES,
    SAMPLE_RATE,
)
from hailo_whisper_ros.core.decoding import DecodingOptions, build_logit_filters, greedy_decode
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.model_dir import ModelInfo
from hailo_whisper_ros.core.text import normalise
from hailo_whisper_ros.core.tokenizer import WhisperTokenizer
from hailo_whisper_ros.core.word_timing import POSITION_S, WordAligner, token_start_positions

MAX_CLIP_SECONDS = CHUNK_LENGTH  # one encoder window; longer clips would need seeking, which this check does not model
# What faster-whisper is asked for below: greedy, without timestamps, no no-speech rule, up to the text context;
# the 30 s encoder's states already have the 1500 positions, so nothing is padded.
MIRRORED_OPTIONS = DecodingOptions(
    language="en", pad_encoder_output_to=ENCODER_POSITIONS, max_new_tokens=MAX_TEXT_POSITIONS,
    no_speech_threshold=None,
)
# Token starts of the alignment pass within one encoder position (20 ms) of CTranslate2's, at least this share.
ALIGNMENT_AGREEMENT = 0.95


def encoder_differences(
    model_dir: Path, ct2_model, features: np.ndarray, threads: int = RecognizerConfig.threads
) -> dict[str, float]:
    """Max abs difference of each exported encoder from CTranslate2's float32 encoder on the same features."""
    import ctranslate2
    from faster_whisper.audio import pad_or_trim

    encoders = [(mf.ENCODER_30S, N_FRAMES), (mf.ENCODER_10S, N_FRAMES // 3), (mf.ENCODER_DYNAMIC, N_FRAMES // 3)]
    for name in (mf.ENCODER_DYNAMIC_INT8, mf.ENCODER_10S_HAILO):
        if (Path(model_dir) / name).is_file():
            encoders.append((name, N_FRAMES // 3))
    differences = {}
    for name, frames in encoders:
        window = np.ascontiguousarray(pad_or_trim(features, frames), dtype=np.float32)
        expected = np.array(ct2_model.encode(ctranslate2.StorageView.from_array(window[None]), to_cpu=True))
        got = OnnxEncoder(Path(model_dir) / name, threads).encode(window)
        differences[name] = float(np.abs(got - expected).max())
    return differences


@dataclass
class TranscriptComparison:
    clips: int
    identical_text: int  # normalised transcripts equal
    identical_tokens: int
    mismatches: list[tuple[str, str, str]]  # (clip, faster-whisper, ours)

    @property
    def agreement(self) -> float:
        return self.identical_text / self.clips if self.clips else 0.0

    def add(self, clip: str, expected_tokens: list[int], expected_text: str, tokens: list[int], text: str) -> None:
        """Counts one clip's transcript against faster-whisper's."""
        self.clips += 1
        self.identical_tokens += tokens == expected_tokens
        if normalise(text) == normalise(expected_text):
            self.identical_text += 1
        else:
            self.mismatches.append((clip, expected_text, text))


def verify(
    model_dir: Path, ct2_dir: Path, audio_paths: Sequence[Path], int8: bool = True,
    threads: int = RecognizerConfig.threads, log=print,
) -> dict:
    """Run all checks on ``audio_paths`` (each at most one 30 s window); prints as it goes and returns the figures."""
    try:
        from faster_whisper import WhisperModel
        from faster_whisper.feature_extractor import FeatureExtractor
    except ImportError as error:  # a robot's install: the export itself needs neither
        raise HailoWhisperError(f"--verify compares with faster-whisper and CTranslate2, which come with the test "
                                f"requirements (pip install -r requirements-test.txt): {error}") from None

    if not audio_paths:
        raise HailoWhisperError("verify needs at least one clip")
    model_dir = Path(model_dir)
    info = ModelInfo.load(model_dir / mf.MODEL_INFO)
    feature_extractor = FeatureExtractor(feature_size=info.n_mels)
    reference_model = WhisperModel(str(ct2_dir), device="cpu", compute_type="float32")
    _, speech = _clip_features(audio_paths[0], feature_extractor)
    differences = encoder_differences(model_dir, reference_model.model, speech, threads)
    for name, difference in differences.items():
        log(f"  encoder {name}: max abs diff vs CTranslate2 {difference:.2e} ({Path(audio_paths[0]).name})")
    comparisons, seconds, reference_tokens = compare_transcripts(
        model_dir, info, reference_model, feature_extractor, audio_paths, int8, threads)
    for kind, comparison in comparisons.items():
        log(
            f"  transcripts {kind} vs faster-whisper float32: {comparison.identical_text}/{comparison.clips} "
            f"identical ({100 * comparison.agreement:.1f}%), identical tokens {comparison.identical_tokens}/"
            f"{comparison.clips}; {seconds[kind]:.1f} s (faster-whisper {seconds['faster-whisper']:.1f} s)"
        )
        for clip, expected, got in comparison.mismatches:
            log(f"    {clip}\n      faster-whisper: {expected.strip()}\n      ours:           {got.strip()}")
    alignment = compare_alignments(model_dir, info, reference_model, feature_extractor, audio_paths, reference_tokens,
                                   threads)
    log(f"  {mf.DECODER_ALIGNMENT} vs CTranslate2 align: {alignment.within_one_position}/{alignment.tokens} token "
        f"starts within one position (20 ms), {alignment.identical} identical, largest difference "
        f"{alignment.max_difference_ms:.0f} ms")
    if alignment.within_one_position < ALIGNMENT_AGREEMENT * alignment.tokens:
        raise HailoWhisperError(f"{mf.DECODER_ALIGNMENT} disagrees with CTranslate2's alignment: only "
                                f"{alignment.within_one_position} of {alignment.tokens} token starts within 20 ms")
    return {"encoder_max_abs_diff": differences, "transcripts": comparisons, "alignment": alignment}


@dataclass
class AlignmentComparison:
    tokens: int = 0  # token starts compared (each clip's text tokens and its EOT)
    identical: int = 0
    within_one_position: int = 0
    max_difference_ms: float = 0.0

    def add(self, ours: np.ndarray, theirs: np.ndarray) -> None:
        difference = np.abs(ours.astype(int) - theirs.astype(int))
        self.tokens += len(difference)
        self.identical += int((difference == 0).sum())
        self.within_one_position += int((difference <= 1).sum())
        self.max_difference_ms = max(self.max_difference_ms, float(difference.max(initial=0)) * POSITION_S * 1e3)


def compare_alignments(
    model_dir: Path, info: ModelInfo, reference_model, feature_extractor, audio_paths: Sequence[Path],
    reference_tokens: Sequence[list[int]], threads: int,
) -> AlignmentComparison:
    """The alignment pass (decoder_alignment_heads.onnx on the 30 s encoder's states) against CTranslate2's
    Whisper.align on the same window and faster-whisper's tokens of each clip (``reference_tokens``, as
    compare_transcripts found them): where each token starts."""
    import ctranslate2
    from faster_whisper.audio import pad_or_trim

    tokenizer = WhisperTokenizer(model_dir / mf.TOKENIZER, info.eot)
    aligner = WordAligner(model_dir / mf.DECODER_ALIGNMENT, info, tokenizer, threads)
    encoder = OnnxEncoder(model_dir / mf.ENCODER_30S, threads)
    forced = MIRRORED_OPTIONS.forced_prefix(info)
    comparison = AlignmentComparison()
    for path, clip_tokens in zip(map(Path, audio_paths), reference_tokens):
        _, features = _clip_features(path, feature_extractor)
        tokens = [token for token in clip_tokens if token < info.eot]
        if not tokens:
            continue
        window = np.ascontiguousarray(pad_or_trim(features, N_FRAMES), dtype=np.float32)
        frames = min(features.shape[-1], N_FRAMES)
        ours = token_start_positions(aligner.matrix(encoder.encode(window), forced, tokens, frames, ENCODER_POSITIONS))
        (result,) = reference_model.model.align(
            ctranslate2.StorageView.from_array(window[None]), forced[:-1], [tokens], frames, median_filter_width=7)
        text_indices, time_indices = (np.asarray(column) for column in zip(*result.alignments))
        jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)
        comparison.add(ours, time_indices[jumps])
    return comparison


def compare_transcripts(
    model_dir: Path, info: ModelInfo, reference_model, feature_extractor, audio_paths: Sequence[Path], int8: bool,
    threads: int,
) -> tuple[dict[str, TranscriptComparison], dict[str, float], list[list[int]]]:
    """Each set-up's greedy transcripts against faster-whisper's (``reference_model``), the seconds each took over
    all the clips (faster-whisper's under "faster-whisper"), and faster-whisper's tokens of each clip."""
    from faster_whisper.audio import pad_or_trim

    tokenizer = WhisperTokenizer(model_dir / mf.TOKENIZER, info.eot)
    encoders, setups = _setups(model_dir, info, threads, int8)
    prefix = MIRRORED_OPTIONS.forced_prefix(info)
    filters = build_logit_filters(MIRRORED_OPTIONS, info)
    comparisons = {kind: TranscriptComparison(0, 0, 0, []) for kind in setups}
    seconds = {"faster-whisper": 0.0, **{kind: 0.0 for kind in setups}}
    reference_tokens: list[list[int]] = []
    for path in map(Path, audio_paths):
        audio, features = _clip_features(path, feature_extractor)
        expected_tokens, expected_text, seconds_taken = _reference_transcript(reference_model, audio)
        reference_tokens.append(expected_tokens)
        seconds["faster-whisper"] += seconds_taken
        window = np.asarray(pad_or_trim(features, N_FRAMES), dtype=np.float32)
        states, encode_seconds = {}, {}
        for name, encoder in encoders.items():
            start = time.perf_counter()
            states[name] = encoder.encode(window)
            encode_seconds[name] = time.perf_counter() - start
        for kind, (encoder_name, decoder) in setups.items():
            start = time.perf_counter()
            tokens = list(greedy_decode(decoder, states[encoder_name], prefix, info, MIRRORED_OPTIONS, filters).tokens)
            seconds[kind] += time.perf_counter() - start + encode_seconds[encoder_name]
            comparisons[kind].add(f"{path.parent.name}/{path.name}", expected_tokens, expected_text, tokens,
                                  tokenizer.decode(tokens))
    return comparisons, seconds, reference_tokens


def _setups(
    model_dir: Path, info: ModelInfo, threads: int, int8: bool
) -> tuple[dict[str, OnnxEncoder], dict[str, tuple[str, OnnxKvDecoder]]]:
    """The encoders by name, and the set-ups compared: kind -> (encoder name, decoder). The INT8 decoder is
    loaded once for the two set-ups that use it."""
    encoders = {"fp32": OnnxEncoder(model_dir / mf.ENCODER_30S, threads)}
    setups = {"fp32": ("fp32", OnnxKvDecoder(model_dir, info, threads))}
    if int8:
        int8_decoder = OnnxKvDecoder(model_dir / mf.INT8_SUBDIR, info, threads)
        setups["int8"] = ("fp32", int8_decoder)
        if (model_dir / mf.ENCODER_DYNAMIC_INT8).is_file():
            encoders["int8"] = OnnxEncoder(model_dir / mf.ENCODER_DYNAMIC_INT8, threads)
            setups["int8-encoder+int8"] = ("int8", int8_decoder)
    return encoders, setups


def _clip_features(path: Path, feature_extractor) -> tuple[np.ndarray, np.ndarray]:
    """A clip's audio and faster-whisper's log-mel features of it."""
    from faster_whisper.audio import decode_audio

    audio = decode_audio(str(path))
    if len(audio) > N_SAMPLES:
        raise HailoWhisperError(f"{path} lasts {len(audio) / SAMPLE_RATE:.1f} s; verify takes clips of at most "
                                f"{MAX_CLIP_SECONDS:g} s (one encoder window)")
    return audio, feature_extractor(audio)[:, :-1]  # faster-whisper drops the last frame the same way


def _reference_transcript(reference_model, audio: np.ndarray) -> tuple[list[int], str, float]:
    """faster-whisper's tokens and text for ``audio``, decoded as MIRRORED_OPTIONS asks, and the seconds it took."""
    start = time.perf_counter()
    segments, _ = reference_model.transcribe(
        audio, language="en", beam_size=1, temperature=0.0, without_timestamps=True, vad_filter=False,
        condition_on_previous_text=False, no_speech_threshold=None,
    )
    segments = list(segments)
    seconds = time.perf_counter() - start
    return [token for segment in segments for token in segment.tokens], "".join(s.text for s in segments), seconds
