"""`export --verify`: compare an exported model directory with CTranslate2 / faster-whisper on the same weights.

Checks encoder outputs on real speech (max abs difference) and greedy transcripts of the speech_dev clips. The
greedy loop here (ExportCheckGreedyDecoder) is deliberately minimal and exists only for this check; the real
runtime decoder is hailo_whisper_ros/core/decoder.py. Log-mel features come from faster-whisper's FeatureExtractor
so that both sides see identical inputs.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hailo_whisper_ros.core import HailoWhisperError
from hailo_whisper_ros.core import model_files as mf
from hailo_whisper_ros.core.datasets import SPEECH_DEV
from hailo_whisper_ros.core.evaluation import Utterance, load_dataset
from hailo_whisper_ros.core.model_files import ModelInfo

MAX_CLIP_SECONDS = 30.0  # one encoder window; longer clips would need seeking, which this check does not model
SUBSET_STRIDE = 4  # default: every 4th clip in ALL.tsv order, which interleaves all the sets


def dev_clips(root: Path = SPEECH_DEV, every: int = 1) -> list[Utterance]:
    """The clips of ALL.tsv that fit one 30 s window; ``every`` > 1 takes a spread subset."""
    if not (root / "ALL.tsv").is_file():
        raise HailoWhisperError(f"speech dev set not found: {root}/ALL.tsv (--speech-dev DIR)")
    return [clip for clip in load_dataset(root) if clip.duration_s <= MAX_CLIP_SECONDS][::every]


def normalise(text: str) -> str:
    """Lower case, punctuation removed, single spaces: the form transcripts are compared in."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


class ExportCheckGreedyDecoder:
    """Greedy decoding with the exported encoder and KV-cache decoders; for --verify only."""

    def __init__(self, model_dir: Path, decoder_dir: Path | None = None):
        model_dir = Path(model_dir)
        decoder_dir = Path(decoder_dir or model_dir)
        self.info = ModelInfo.load(model_dir / mf.MODEL_INFO)
        self.encoder = _session(model_dir / mf.ENCODER_30S)
        self.decoder = _session(decoder_dir / mf.DECODER)
        self.decoder_with_past = _session(decoder_dir / mf.DECODER_WITH_PAST)
        self.suppress = np.array(self.info.suppress_tokens, dtype=np.int64)
        self.begin_suppress = np.array(self.info.begin_suppress_tokens, dtype=np.int64)

    def encode(self, features: np.ndarray) -> np.ndarray:
        """Log-mel [n_mels, 3000] -> encoder states [1, 1500, d]."""
        return self.encoder.run(None, {mf.INPUT_FEATURES: features[None].astype(np.float32)})[0]

    def decode(self, encoder_states: np.ndarray, prompt: list[int]) -> list[int]:
        """Tokens after ``prompt`` up to (not including) end of text, suppressing as faster-whisper does."""
        no_bias = {mf.ENCODER_ATTENTION_BIAS: np.zeros(encoder_states.shape[1], np.float32)}
        outputs = self.decoder.run(
            None, {mf.INPUT_IDS: np.array([prompt], np.int64), mf.ENCODER_HIDDEN_STATES: encoder_states, **no_bias}
        )
        named = dict(zip((o.name for o in self.decoder.get_outputs()), outputs))
        cache = {name.replace("present.", "past_key_values.", 1): value for name, value in named.items()
                 if name != mf.LOGITS}
        logits = named[mf.LOGITS]
        tokens: list[int] = []
        for step in range(self.info.n_text_ctx - len(prompt)):
            scores = logits[0, -1].copy()
            scores[self.suppress] = -np.inf
            if step == 0:
                scores[self.begin_suppress] = -np.inf
            token = int(np.argmax(scores))
            if token == self.info.eot:
                break
            tokens.append(token)
            outputs = self.decoder_with_past.run(
                None, {mf.INPUT_IDS: np.array([[token]], np.int64), **cache, **no_bias}
            )
            for output, value in zip(self.decoder_with_past.get_outputs(), outputs):
                if output.name == mf.LOGITS:
                    logits = value
                else:
                    cache[output.name.replace("present.", "past_key_values.", 1)] = value
        return tokens


def encoder_differences(model_dir: Path, ct2_model, features: np.ndarray) -> dict[str, float]:
    """Max abs difference of each exported encoder from CTranslate2's float32 encoder on the same features."""
    import ctranslate2
    from faster_whisper.audio import pad_or_trim

    def reference(frames: int) -> np.ndarray:
        window = np.ascontiguousarray(pad_or_trim(features, frames)[None], dtype=np.float32)
        return window, np.array(ct2_model.encode(ctranslate2.StorageView.from_array(window), to_cpu=True))

    differences = {}
    for name, frames in ((mf.ENCODER_30S, 3000), (mf.ENCODER_10S, 1000), (mf.ENCODER_DYNAMIC, 1000)):
        window, expected = reference(frames)
        got = _session(Path(model_dir) / name).run(None, {mf.INPUT_FEATURES: window})[0]
        differences[name] = float(np.abs(got - expected).max())
    hailo = Path(model_dir) / mf.ENCODER_10S_HAILO
    if hailo.is_file():
        window, expected = reference(1000)
        got = _session(hailo).run(None, {mf.INPUT_FEATURES: window[:, :, None, :]})[0]
        differences[mf.ENCODER_10S_HAILO] = float(np.abs(got - expected).max())
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


def verify(model_dir: Path, ct2_dir: Path, clips: list[Utterance], int8: bool = True, log=print) -> dict:
    """Run all checks; prints as it goes and returns the figures."""
    from faster_whisper import WhisperModel
    from faster_whisper.audio import decode_audio, pad_or_trim
    from faster_whisper.feature_extractor import FeatureExtractor
    from tokenizers import Tokenizer

    model_dir = Path(model_dir)
    info = ModelInfo.load(model_dir / mf.MODEL_INFO)
    feature_extractor = FeatureExtractor(feature_size=info.n_mels)

    def features_of(clip: Utterance) -> tuple[np.ndarray, np.ndarray]:
        audio = decode_audio(str(clip.audio_path))
        return audio, feature_extractor(audio)[:, :-1]  # faster-whisper drops the last frame the same way

    reference_model = WhisperModel(str(ct2_dir), device="cpu", compute_type="float32")
    _, speech = features_of(clips[0])
    differences = encoder_differences(model_dir, reference_model.model, speech)
    for name, difference in differences.items():
        log(f"  encoder {name}: max abs diff vs CTranslate2 {difference:.2e} ({clips[0].audio_path.name})")

    tokenizer = Tokenizer.from_file(str(model_dir / mf.TOKENIZER))
    decoders = {"fp32": ExportCheckGreedyDecoder(model_dir)}
    if int8:
        decoders["int8"] = ExportCheckGreedyDecoder(model_dir, model_dir / mf.INT8_SUBDIR)
    comparisons = {kind: TranscriptComparison(0, 0, 0, []) for kind in decoders}
    prompt = info.forced_prefix("en")
    seconds = {"faster-whisper": 0.0, **{kind: 0.0 for kind in decoders}}
    for clip in clips:
        audio, features = features_of(clip)
        start = time.perf_counter()
        segments, _ = reference_model.transcribe(
            audio, language="en", beam_size=1, temperature=0.0, without_timestamps=True, vad_filter=False,
            condition_on_previous_text=False, no_speech_threshold=None,
        )
        segments = list(segments)
        seconds["faster-whisper"] += time.perf_counter() - start
        expected_tokens = [token for segment in segments for token in segment.tokens]
        expected_text = "".join(segment.text for segment in segments)
        start = time.perf_counter()
        encoder_states = decoders["fp32"].encode(pad_or_trim(features, 2 * info.n_audio_ctx))
        encode_seconds = time.perf_counter() - start
        for kind, decoder in decoders.items():
            start = time.perf_counter()
            tokens = decoder.decode(encoder_states, prompt)
            seconds[kind] += time.perf_counter() - start + encode_seconds
            text = tokenizer.decode(tokens, skip_special_tokens=True)
            comparison = comparisons[kind]
            comparison.clips += 1
            comparison.identical_tokens += tokens == expected_tokens
            if normalise(text) == normalise(expected_text):
                comparison.identical_text += 1
            else:
                comparison.mismatches.append((str(clip.audio_path.relative_to(clip.audio_path.parents[1])), expected_text, text))
    for kind, comparison in comparisons.items():
        log(
            f"  transcripts {kind} vs faster-whisper float32: {comparison.identical_text}/{comparison.clips} "
            f"identical ({100 * comparison.agreement:.1f}%), identical tokens {comparison.identical_tokens}/"
            f"{comparison.clips}; {seconds[kind]:.1f} s (faster-whisper {seconds['faster-whisper']:.1f} s)"
        )
        for clip, expected, got in comparison.mismatches:
            log(f"    {clip}\n      faster-whisper: {expected.strip()}\n      ours:           {got.strip()}")
    return {"encoder_max_abs_diff": differences, "transcripts": comparisons}
