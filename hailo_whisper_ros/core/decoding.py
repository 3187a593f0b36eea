"""Greedy Whisper decoding shared by every decoder backend: options, logit filters and the token loop.

The loop (forced prefix -> one token per step -> logit filters -> argmax -> stop at EOT or the length limit) is
written once here; a backend only has to provide the two calls of ``DecoderSteps``. The filters follow
openai/whisper's decoding.py: each one edits the logits of the next position in place.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from hailo_whisper_ros.core import HailoWhisperError
from hailo_whisper_ros.core.model_files import ModelInfo

# Whisper's n_text_ctx for every released size; a model's own figure bounds max_new_tokens at decode time.
MAX_TEXT_POSITIONS = 448


@dataclass(frozen=True)
class DecodingOptions:
    """How one utterance is decoded. Validated on construction, so a bad value never reaches the loop."""

    language: str | None = None
    """Spoken language code for multilingual models; None means English. English-only models accept only en."""

    task: str = "transcribe"
    """'transcribe' or 'translate' (to English; multilingual models only)."""

    pad_encoder_output_to: int = 1500
    """Zero-pad the encoder output to this many positions (500..1500). The decoder was trained on the 1500
    positions of a 30 s window; fed the 500 of a 10 s encoder it loops instead of emitting EOT. The reference study
    found >= 700 enough; for tiny.en on the dev set (10 s path, INT8 decoder) WER was 13.7 % at 500, 29.0 % at 700
    (loops), 7.8 % at 1000 and 8.1 % at 1500. Outputs already longer (the 30 s encoder) are left as they are."""

    repetition_penalty: float = 1.0
    """>= 1.0; 1.0 is off. Recently generated tokens get their logit divided by this when positive and multiplied
    by it when negative (Hugging Face's sign-aware rule), so a repeated token always becomes less likely."""

    repetition_window: int = 64
    """How many of the most recent generated tokens the repetition penalty looks at."""

    eos_boost_threshold: float = 0.0
    """>= 0; 0 is off. Choose EOT whenever its logit is within this distance of the best logit."""

    max_new_tokens: int = 224
    """Tokens generated per segment at most (Whisper's default, half the text context); also bounded by the
    decoder's positions minus the forced prefix (n_text_ctx for ONNX, the fixed sequence length of a HEF)."""

    suppress_blank: bool = True
    """Forbid a blank or EOT as the first generated token (the model's begin_suppress_tokens)."""

    suppress_tokens: tuple[int, ...] | None = None
    """Token ids never generated; None means the model's list (symbols that are not speech). Special and
    timestamp tokens other than EOT are always suppressed, since decoding runs without timestamps."""

    no_speech_threshold: float | None = 0.6
    """A segment is silence when p(<|nospeech|>) at the start-of-transcript position exceeds this and its
    average log-probability is below logprob_threshold (Whisper's rule). None disables the check."""

    logprob_threshold: float | None = -1.0
    """See no_speech_threshold; None means the no-speech probability alone decides."""

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raise HailoWhisperError naming the first invalid field and why."""
        if self.language is not None and not (isinstance(self.language, str) and self.language):
            raise HailoWhisperError(f"language must be a language code such as 'en' or None, not {self.language!r}")
        if self.task not in ("transcribe", "translate"):
            raise HailoWhisperError(f"task must be 'transcribe' or 'translate', not {self.task!r}")
        _check_int("pad_encoder_output_to", self.pad_encoder_output_to, 500, 1500)
        _check_number("repetition_penalty", self.repetition_penalty, minimum=1.0)
        _check_int("repetition_window", self.repetition_window, 1, MAX_TEXT_POSITIONS)
        _check_number("eos_boost_threshold", self.eos_boost_threshold, minimum=0.0)
        _check_int("max_new_tokens", self.max_new_tokens, 1, MAX_TEXT_POSITIONS)
        if not isinstance(self.suppress_blank, bool):
            raise HailoWhisperError(f"suppress_blank must be true or false, not {self.suppress_blank!r}")
        if self.suppress_tokens is not None and not (
            isinstance(self.suppress_tokens, tuple)
            and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in self.suppress_tokens)
        ):
            raise HailoWhisperError(
                f"suppress_tokens must be a tuple of token ids or None, not {self.suppress_tokens!r}"
            )
        if self.no_speech_threshold is not None:
            _check_number("no_speech_threshold", self.no_speech_threshold, minimum=0.0, maximum=1.0)
        if self.logprob_threshold is not None:
            _check_number("logprob_threshold", self.logprob_threshold)

    def is_no_speech(self, no_speech_prob: float, avg_logprob: float) -> bool:
        """Whisper's rule: likely no speech, and the decoded text not confident enough to overrule that."""
        return (
            self.no_speech_threshold is not None
            and no_speech_prob > self.no_speech_threshold
            and (self.logprob_threshold is None or avg_logprob < self.logprob_threshold)
        )

    def forced_prefix(self, info: ModelInfo) -> list[int]:
        """The prompt tokens for this model, or HailoWhisperError when the model cannot honour language/task."""
        if not info.multilingual and (self.language not in (None, "en") or self.task != "transcribe"):
            raise HailoWhisperError(
                f"model {info.name} is English-only: language {self.language!r} / task {self.task!r} is not available"
            )
        try:
            return info.forced_prefix(self.language, self.task)
        except ValueError as error:
            raise HailoWhisperError(str(error)) from error


def _check_number(name: str, value, minimum: float | None = None, maximum: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise HailoWhisperError(f"{name} must be a finite number, not {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise HailoWhisperError(f"{name} must be {bounds}, not {value!r}")


def _check_int(name: str, value, minimum: int, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise HailoWhisperError(f"{name} must be an integer in [{minimum}, {maximum}], not {value!r}")


class LogitFilter(Protocol):
    def apply(self, logits: np.ndarray, generated: Sequence[int]) -> None:
        """Edit the next-token logits [n_vocab] in place; ``generated`` holds the tokens after the prefix."""


class SuppressTokens:
    """Never generate the given ids, nor any id after EOT (special and timestamp tokens)."""

    def __init__(self, token_ids: Sequence[int], eot: int):
        self.token_ids = np.asarray(sorted(set(token_ids)), dtype=np.int64)
        self.first_special = eot + 1

    def apply(self, logits: np.ndarray, generated: Sequence[int]) -> None:
        logits[self.first_special:] = -np.inf  # a slice, cheaper than indexing ~1600 ids each step
        logits[self.token_ids] = -np.inf


class SuppressBlank:
    """At the first generated position only, forbid a blank and EOT (an empty transcript is decided by the
    no-speech rule, not by an immediate EOT)."""

    def __init__(self, token_ids: Sequence[int]):
        self.token_ids = np.asarray(token_ids, dtype=np.int64)

    def apply(self, logits: np.ndarray, generated: Sequence[int]) -> None:
        if not generated:
            logits[self.token_ids] = -np.inf


class RepetitionPenalty:
    """Make the recently generated tokens less likely, sign-aware like Hugging Face's penalty."""

    def __init__(self, penalty: float, window: int):
        self.penalty = penalty
        self.window = window

    def apply(self, logits: np.ndarray, generated: Sequence[int]) -> None:
        if not generated:
            return
        recent = np.unique(np.asarray(generated[-self.window:], dtype=np.int64))
        values = logits[recent]
        logits[recent] = np.where(values > 0, values / self.penalty, values * self.penalty)


def build_logit_filters(options: DecodingOptions, info: ModelInfo) -> list[LogitFilter]:
    suppressed = info.suppress_tokens if options.suppress_tokens is None else options.suppress_tokens
    filters: list[LogitFilter] = [SuppressTokens(suppressed, info.eot)]
    if options.suppress_blank:
        filters.append(SuppressBlank(info.begin_suppress_tokens))
    if options.repetition_penalty > 1.0:
        filters.append(RepetitionPenalty(options.repetition_penalty, options.repetition_window))
    return filters


def choose_token(logits: np.ndarray, eot: int, eos_boost_threshold: float) -> int:
    """Greedy choice; with an EOS boost, EOT wins whenever its logit is within the threshold of the best."""
    best = int(np.argmax(logits))
    if eos_boost_threshold > 0.0 and best != eot and logits[eot] >= logits[best] - eos_boost_threshold:
        return eot
    return best


class DecoderSteps(Protocol):
    """What a decoder backend provides to the shared loop."""

    max_positions: int
    """Token positions the backend can hold, forced prefix included."""

    fixed_encoder_positions: int | None
    """Encoder positions the backend requires (a HEF's input shape), or None when it takes any count."""

    def start(self, encoder_states: np.ndarray, prefix: Sequence[int], padded_positions: int) -> np.ndarray:
        """Begin an utterance: return the logits [len(prefix), n_vocab] of the prefix positions. The decoder attends
        over the encoder states [1, T, d] zero-padded to ``padded_positions`` (or to its fixed count, if it has one)."""

    def step(self, token: int) -> np.ndarray:
        """Append one token and return the logits [n_vocab] for the position after it."""


@dataclass(frozen=True)
class DecodedTokens:
    tokens: tuple[int, ...]  # generated text tokens, EOT excluded
    avg_logprob: float  # mean log-probability of the chosen tokens, the final EOT included (Whisper's figure)
    no_speech_prob: float  # p(no_speech) at the start-of-transcript position
    first_pass_ms: float  # the prefix pass (for the KV decoder this also computes the cross-attention cache)
    steps: int  # one-token steps run after the first pass
    steps_ms: float  # their total time, logit filters and token choice included


def greedy_decode(
    backend: DecoderSteps,
    encoder_states: np.ndarray,
    prefix: Sequence[int],
    info: ModelInfo,
    options: DecodingOptions,
    filters: Sequence[LogitFilter],
) -> DecodedTokens:
    """Decode one segment greedily: prefix pass, then a step per token until EOT or the length limit."""
    max_new = min(options.max_new_tokens, backend.max_positions - len(prefix))
    if max_new < 1:
        raise HailoWhisperError(
            f"the decoder holds {backend.max_positions} positions, too few for the prompt {list(prefix)}"
        )
    started = time.perf_counter()
    prefix_logits = backend.start(encoder_states, prefix, options.pad_encoder_output_to)
    no_speech_prob = math.exp(_log_softmax_at(prefix_logits[0], info.no_speech))
    logits = prefix_logits[-1]
    first_pass_done = time.perf_counter()

    generated: list[int] = []
    sum_logprob = 0.0
    chosen = 0
    steps = 0
    while True:
        for logit_filter in filters:
            logit_filter.apply(logits, generated)
        token = choose_token(logits, info.eot, options.eos_boost_threshold)
        sum_logprob += _log_softmax_at(logits, token)
        chosen += 1
        if token == info.eot:
            break
        generated.append(token)
        if len(generated) >= max_new:
            break
        logits = backend.step(token)
        steps += 1
    finished = time.perf_counter()
    return DecodedTokens(
        tokens=tuple(generated),
        avg_logprob=sum_logprob / chosen,
        no_speech_prob=no_speech_prob,
        first_pass_ms=(first_pass_done - started) * 1e3,
        steps=steps,
        steps_ms=(finished - first_pass_done) * 1e3,
    )


def _log_softmax_at(logits: np.ndarray, index: int) -> float:
    peak = logits.max()
    return float(logits[index] - peak - np.log(np.exp(logits - peak).sum()))
