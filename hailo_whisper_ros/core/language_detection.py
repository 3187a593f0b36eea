"""Whisper's spoken-language detection: one decoder pass, the softmax over the language tokens only."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from hailo_whisper_ros.core.backends.base import DecoderSteps
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.model_dir import ModelInfo


@dataclass(frozen=True)
class DetectedLanguage:
    language: str  # the most probable language code of the model's language tokens
    probability: float  # its share of the softmax over the language tokens only
    ms: float  # the decoder pass it took


def detect_language(
    backend: DecoderSteps, encoder_states: np.ndarray, info: ModelInfo, options: DecodingOptions
) -> DetectedLanguage:
    """openai/whisper's detect_language: one decoder pass over [<|startoftranscript|>] against the encoder states,
    the logits of that position restricted to the language tokens, softmax -> the best language and its
    probability."""
    if not info.languages:
        raise HailoWhisperError(f"model {info.name} has no language tokens: it cannot detect the language")
    started = time.perf_counter()
    logits = backend.start(encoder_states, [info.sot], options.pad_encoder_output_to)[0]
    codes = list(info.languages)
    scores = logits[np.asarray([info.languages[code] for code in codes], dtype=np.int64)].astype(np.float64)
    probabilities = np.exp(scores - scores.max())
    probabilities /= probabilities.sum()
    best = int(np.argmax(probabilities))
    return DetectedLanguage(codes[best], float(probabilities[best]), (time.perf_counter() - started) * 1e3)
