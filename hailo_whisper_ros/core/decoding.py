"""Greedy Whisper decoding shared by every decoder backend: options, logit filters and the token loop.

The loop (forced prefix -> one token per step -> logit filters -> argmax -> stop at EOT or the length limit) is
written once here; a backend only has to provide the two calls of ``DecoderSteps``. The filters follow
openai/whisper's decoding.py: each one edits the logits of the next position in place.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hailo_whisper_ros.core.backends.base import DecoderSteps
from hailo_whisper_ros.core.constants import ENCODER_POSITIONS, MAX_TEXT_POSITIONS
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.model_dir import ModelInfo
from hailo_whisper_ros.core.options import Options, option

TASKS = ("transcribe", "translate")
# decoding.language: detect the spoken language of each transcribe call (multilingual models only).
LANGUAGE_AUTO = "auto"

# Why a decode stopped. EOT is the normal end; reaching max_new_tokens is what a loop does when no guard stops it; the
# guards are the two loop detectors below, named so that results, events and diagnostics can count them.
STOP_EOT = "eot"
STOP_MAX_NEW_TOKENS = "max_new_tokens"
GUARD_TOKEN_BUDGET = "token_budget"
GUARD_REPETITION = "repetition"
GUARDS = (GUARD_TOKEN_BUDGET, GUARD_REPETITION)
# Draft tokens verified per decoder pass (greedy_decode): a pass holds [tokens, n_vocab] logits several times over
# in its per-row body (207 kB per token row each for tiny.en's 51864 tokens), so unbounded passes over a 100-token
# draft cost 100 MB of peak memory; and a draft wrong early wastes at most one pass of this many.
DRAFT_PASS_TOKENS = 16


@dataclass(frozen=True)
class DecodingOptions(Options):
    """How one utterance is decoded. Validated on construction, so a bad value never reaches the loop."""

    PARAMETER_GROUP = "decoding"

    language: str | None = option(
        None, "Spoken language: a code such as de, or 'auto' to detect it once per utterance from the first part "
        "(multilingual models); empty: English. English-only models accept only en.", none_as="")
    task: str = option("transcribe", "'transcribe', or 'translate' to English (multilingual models only).",
                       choices=TASKS)
    pad_encoder_output_to: int = option(
        1500, "Zero-pad the encoder output to this many positions: the decoder was trained on the 1500 positions of "
        "a 30 s window and loops on fewer instead of emitting EOT. Outputs already longer are left as they are.",
        range=(500, ENCODER_POSITIONS))
    repetition_penalty: float = option(
        1.0, "Recently generated tokens get their logit divided by this when positive and multiplied by it when "
        "negative (Hugging Face's sign-aware rule), so a repeated token always becomes less likely; 1.0 is off.",
        range=(1.0, 3.0))
    repetition_window: int = option(
        64, "How many of the most recent generated tokens the repetition penalty looks at.",
        range=(1, MAX_TEXT_POSITIONS))
    eos_boost_threshold: float = option(
        0.0, "Choose EOT whenever its logit is within this distance of the best logit; 0 is off.", range=(0.0, 50.0))
    max_new_tokens: int = option(
        224, "Tokens generated per segment at most (Whisper's default, half the text context); also bounded by the "
        "decoder's positions minus the forced prefix (n_text_ctx for ONNX, the fixed sequence length of a HEF).",
        range=(1, MAX_TEXT_POSITIONS))
    window_lead_trim_db: float = option(
        20.0, "Start each encoder window 100 ms before the first 20 ms frame within this many dB of the loudest "
        "frame: leading non-speech makes the decoder loop.", unit="dB",
        range=(1.0, 60.0), off=0.0)
    background_trim_db: float = option(
        10.0, "End the encoder window of an utterance's last part 300 ms after the last 400 ms of audio within this "
        "many dB of its loudest 400 ms: quieter voices after the talker stops (people behind, farther away) are "
        "left out instead of transcribed as more words; a steady noise (a fan) is kept. The audio left out is "
        "counted.", unit="dB",
        range=(1.0, 60.0), off=0.0)
    max_tokens_per_s: float = option(
        8.0, "Loop guard: a segment may generate at most min_token_budget + this many tokens per second of its "
        "audio. Real speech needs at most about 4 tokens/s.",
        unit="1/s", range=(1.0, 100.0), off=0.0)
    min_token_budget: int = option(
        8, "See max_tokens_per_s: the tokens every segment may generate whatever its length (one-word clips).",
        range=(1, MAX_TEXT_POSITIONS))
    repetition_stop_copies: int = option(
        4, "Loop guard: stop when the generated tokens end in this many consecutive copies of the same n-gram "
        "(n <= repetition_stop_max_ngram), and keep only the first copy.",
        range=(2, MAX_TEXT_POSITIONS), off=0)
    repetition_stop_max_ngram: int = option(
        32, "See repetition_stop_copies: the longest repeated n-gram it looks for, in tokens (a looped sentence).",
        range=(1, MAX_TEXT_POSITIONS))
    loop_recovery: bool = option(
        True, "When a loop guard fires, decode the segment once more with the encoder's longest window (30 s for "
        "the dynamic encoder; fixed windows have no other) and keep that text if it ends at EOT.")
    suppress_blank: bool = option(
        True, "Forbid a blank or EOT as the first generated token (the model's begin_suppress_tokens).")
    suppress_tokens: tuple[int, ...] | None = option(
        None, "Token ids never generated; none: the model's list (symbols that are not speech). Special and "
        "timestamp tokens other than EOT are always suppressed, since decoding runs without timestamps.",
        none_as=(-1,))
    no_speech_threshold: float | None = option(
        0.6, "A segment is silence when p(<|nospeech|>) at the start-of-transcript position exceeds this and its "
        "average log-probability is below logprob_threshold (Whisper's rule); none disables the check.",
        range=(0.0, 1.0))
    logprob_threshold: float | None = option(
        -1.0, "See no_speech_threshold; none: the no-speech probability alone decides.", range=(-20.0, 0.0))
    initial_prompt: str = option(
        "", "Text the decoder reads before every segment, as Whisper's initial_prompt (<|startofprev|> text, then "
        "the start of transcript): the robot's names, places and command words, spelled as they should come out. "
        "It is kept ahead of the context of condition_on_previous; at most half the decoder's positions less one "
        "(223 tokens for 448), so that room is left to decode. Empty: off.")
    condition_on_previous: bool = option(
        False, "Prompt each utterance of a stream with the text of the previous finals (after initial_prompt), as "
        "Whisper conditions a 30 s window on the previous one; offline, each part of a long clip on the earlier "
        "parts. The context is dropped after a final whose decode fired a loop guard or was judged no speech (a "
        "loop is never carried forward), after streaming.context_reset_silence_s of silence, and at a reset.")
    context_max_tokens: int = option(
        64, "See condition_on_previous: the most recent tokens of the previous finals kept as context (the prompt "
        "as a whole is also bounded to half the decoder's positions less one, as Whisper bounds it).",
        range=(1, MAX_TEXT_POSITIONS))
    word_timestamps: bool = option(
        False, "Give every word its start and end time and a probability (Transcript.words): one more pass of the "
        "alignment heads over each decoded segment, then DTW over their cross-attention, as openai/whisper's "
        "word_timestamps. Off: no words and no extra pass.")

    def check(self) -> None:
        if self.language is not None and not self.language:
            raise HailoWhisperError("DecodingOptions option language must be a language code such as 'en' or None")
        if self.suppress_tokens is not None and any(t < 0 for t in self.suppress_tokens):
            raise HailoWhisperError(f"DecodingOptions option suppress_tokens must hold token ids >= 0, "
                                    f"not {self.suppress_tokens!r}")

    def is_no_speech(self, no_speech_prob: float, avg_logprob: float) -> bool:
        """Whisper's rule: likely no speech, and the decoded text not confident enough to overrule that."""
        return (
            self.no_speech_threshold is not None
            and no_speech_prob > self.no_speech_threshold
            and (self.logprob_threshold is None or avg_logprob < self.logprob_threshold)
        )

    @property
    def detects_language(self) -> bool:
        return self.language == LANGUAGE_AUTO

    def check_model(self, info: ModelInfo) -> None:
        """HailoWhisperError when the model cannot honour language/task, auto included."""
        if self.detects_language and not info.multilingual:
            raise HailoWhisperError(
                f"model {info.name} is English-only: decoding.language auto (language detection) needs a "
                "multilingual model such as base; set en or empty")
        self.forced_prefix(info, "en")  # ``detected`` counts only for auto, where any language checks the task

    def forced_prefix(self, info: ModelInfo, detected: str | None = None) -> list[int]:
        """The prompt tokens for this model; with language auto, ``detected`` is the language to decode in.
        HailoWhisperError when the model cannot honour language/task."""
        if self.detects_language and detected is None:
            raise HailoWhisperError("decoding.language auto: detect the language first (detect_language)")
        language = detected if self.detects_language else self.language
        if not info.multilingual and (language not in (None, "en") or self.task != "transcribe"):
            raise HailoWhisperError(
                f"model {info.name} is English-only: language {language!r} / task {self.task!r} is not available"
            )
        try:
            return info.forced_prefix(language, self.task)
        except ValueError as error:
            raise HailoWhisperError(str(error)) from error


def prompted_prefix(
    forced: Sequence[int], sot_prev: int, initial: Sequence[int], context: Sequence[int], max_prompt: int
) -> list[int]:
    """The decoder's prompt, as openai/whisper lays it out: ``<|startofprev|>``, the initial prompt's tokens, the
    context's most recent tokens, then the forced prefix (start of transcript, [language, task,] no timestamps).
    The prompt part holds at most ``max_prompt`` tokens; the initial prompt is kept whole (check_initial_prompt
    bounds it) and the context cut from its oldest end. Without prompt tokens: the forced prefix alone."""
    room = max_prompt - len(initial)
    kept_context = list(context)[-room:] if room > 0 and context else []
    if not initial and not kept_context:
        return list(forced)
    return [sot_prev, *initial, *kept_context, *forced]


def max_prompt_tokens(decoder_positions: int) -> int:
    """Prompt tokens a decoder of this many positions takes: half less one, openai/whisper's bound (223 of 448)."""
    return decoder_positions // 2 - 1


def check_initial_prompt(tokens: Sequence[int], decoder_positions: int) -> None:
    """HailoWhisperError when the initial prompt leaves the decoder too little room to decode."""
    limit = max_prompt_tokens(decoder_positions)
    if len(tokens) > limit:
        raise HailoWhisperError(
            f"decoding.initial_prompt is {len(tokens)} tokens: a decoder of {decoder_positions} positions takes at "
            f"most {limit} prompt tokens (half its positions less one, as Whisper), so that it has room to decode; "
            f"shorten it"
        )


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


class StopRule(Protocol):
    def check(self, generated: list[int]) -> str | None:
        """After a token is appended to ``generated``: why decoding stops there (STOP_MAX_NEW_TOKENS or one of
        GUARDS), with ``generated`` cut to what is kept, or None to go on."""


class RepetitionDetector:
    """Whether the generated tokens end in ``copies`` consecutive copies of one n-gram, n <= ``max_ngram``.

    For each period p it keeps how many tokens in a row equalled the token p before them; the tail is k copies of a
    p-gram exactly when that run reaches (k - 1) * p. So each token costs max_ngram comparisons, no search."""

    def __init__(self, copies: int, max_ngram: int):
        self.copies = copies
        self.max_ngram = max_ngram
        self.runs = [0] * (max_ngram + 1)  # runs[p]: trailing tokens equal to the token p positions earlier

    def push(self, generated: Sequence[int]) -> int:
        """Take the last token of ``generated``; the period of the repetition it completes, or 0."""
        last = len(generated) - 1
        token = generated[last]
        runs = self.runs
        for period in range(1, min(self.max_ngram, last) + 1):
            if generated[last - period] == token:
                runs[period] += 1
                if runs[period] >= (self.copies - 1) * period:
                    return period
            else:
                runs[period] = 0
        return 0


class RepetitionStop:
    """Loop guard: stop at a repeated n-gram (RepetitionDetector) and keep only its first copy."""

    def __init__(self, copies: int, max_ngram: int):
        self.detector = RepetitionDetector(copies, max_ngram)

    def check(self, generated: list[int]) -> str | None:
        period = self.detector.push(generated)
        if not period:
            return None
        del generated[len(generated) - (self.detector.copies - 1) * period:]
        return GUARD_REPETITION


class TokenLimit:
    """Stop at ``budget`` generated tokens: the token budget guard when that is below ``max_new``, the decoder's
    length limit otherwise."""

    def __init__(self, budget: int, max_new: int):
        self.budget = budget
        self.max_new = max_new

    def check(self, generated: list[int]) -> str | None:
        if len(generated) < self.budget:
            return None
        return STOP_MAX_NEW_TOKENS if self.budget == self.max_new else GUARD_TOKEN_BUDGET


def token_budget(options: DecodingOptions, audio_s: float) -> int:
    """Tokens a segment of ``audio_s`` seconds may generate (the max_tokens_per_s guard), at most max_new_tokens."""
    if options.max_tokens_per_s == 0.0:
        return options.max_new_tokens
    return min(options.max_new_tokens, options.min_token_budget + math.ceil(options.max_tokens_per_s * audio_s))


def build_stop_rules(options: DecodingOptions, budget: int, max_new: int) -> list[StopRule]:
    """The rules of one decode, in the order they are asked (they keep state: one list per decode)."""
    rules: list[StopRule] = []
    if options.repetition_stop_copies:
        rules.append(RepetitionStop(options.repetition_stop_copies, options.repetition_stop_max_ngram))
    rules.append(TokenLimit(budget, max_new))
    return rules


def first_stop(rules: Sequence[StopRule], generated: list[int]) -> str | None:
    """The first rule's reason to stop; the rules after it are not asked."""
    for rule in rules:
        if (reason := rule.check(generated)) is not None:
            return reason
    return None


class DraftVerifier:
    """Verifies a draft exactly: tokens a segment is expected to start with (the previous partial's).

    Once greedy decoding has chosen the draft token at which no pass has run yet, one pass over the draft's next
    DRAFT_PASS_TOKENS (backend.extend) gives the logits after each of them at once; each draft token is kept while
    it is the token greedy decoding chooses from those logits (filters, stop rules and all), and at the first
    disagreement the cache is cut back there and decoding goes on a step per token. So the tokens are greedy
    decoding's own, and each kept draft token costs a share of one pass instead of a step."""

    def __init__(self, backend: DecoderSteps, draft: Sequence[int], prefix_length: int):
        self.backend = backend
        self.draft = list(draft)
        self.prefix_length = prefix_length
        self.accepted = 0  # draft tokens kept
        self.verified = 0  # draft tokens run through draft passes: the cache holds them until a disagreement
        self.active = bool(self.draft)  # every token chosen so far was the draft's
        self._pass_logits: np.ndarray | None = None

    def logits_after(self, token: int) -> np.ndarray | None:
        """The logits after ``token`` when it is the draft's next one (from a draft pass); None when the decoder
        must step, the cache then cut back to the tokens kept."""
        if not self.active:
            return None
        if token != self.draft[self.accepted]:
            self.active = False
            if self.verified > self.accepted:  # the cache forgets the rest of the pass
                self.backend.rewind(self.prefix_length + self.accepted)
            return None
        if self.accepted == self.verified:
            self._pass_logits = self.backend.extend(self.draft[self.verified : self.verified + DRAFT_PASS_TOKENS])
            self.verified += len(self._pass_logits)
        self.accepted += 1
        self.active = self.accepted < len(self.draft)
        return self._pass_logits[(self.accepted - 1) % DRAFT_PASS_TOKENS]


@dataclass(frozen=True)
class DecodedTokens:
    tokens: tuple[int, ...]  # generated text tokens, EOT excluded (after a repetition stop: its first copy only)
    stop: str  # why decoding ended: STOP_EOT, STOP_MAX_NEW_TOKENS, or the guard that ended it (one of GUARDS)
    avg_logprob: float  # mean log-probability of the chosen tokens, the final EOT included (Whisper's figure)
    no_speech_prob: float  # p(no_speech) at the start-of-transcript position (after the prompt, if any)
    end_prob: float  # p(EOT) where decoding stopped (0 when a rule stopped it): how sure the model is the text ended
    last_token_prob: float  # p of the last generated token (a sentence end's full stop, say); 0 when none
    first_pass_ms: float  # the prefix pass (for the KV decoder this also computes the cross-attention cache)
    steps: int  # one-token steps run after the first pass
    steps_ms: float  # their total time, logit filters and token choice included
    draft_accepted: int = 0  # leading tokens taken from the draft, verified by draft passes (no step of their own)
    token_probs: tuple[float, ...] = ()  # p of each of ``tokens`` when it was chosen (after the logit filters)


def greedy_decode(
    backend: DecoderSteps,
    encoder_states: np.ndarray,
    prefix: Sequence[int],
    info: ModelInfo,
    options: DecodingOptions,
    filters: Sequence[LogitFilter],
    audio_s: float | None = None,
    draft: Sequence[int] = (),
) -> DecodedTokens:
    """Decode one segment of ``audio_s`` seconds of audio greedily: prefix pass, then a step per token until EOT or
    a stop rule (the length limit; the loop guards: the token budget, None: no budget, and a repeated n-gram). The
    rules only look at the tokens, so they cost no decoder pass. ``prefix`` may start with a prompt
    (prompted_prefix): the no-speech probability is read at its start-of-transcript position, and the filters see
    only generated tokens. ``draft``: the tokens it probably starts with, verified exactly (DraftVerifier): the
    result is the same with or without it. The prefix pass is the same with or without a draft."""
    max_new = min(options.max_new_tokens, backend.max_positions - len(prefix))
    if max_new < 1:
        raise HailoWhisperError(
            f"the decoder holds {backend.max_positions} positions, too few for the prompt {list(prefix)}"
        )
    budget = max_new if audio_s is None else min(token_budget(options, audio_s), max_new)
    stop_rules = build_stop_rules(options, budget, max_new)
    drafted = DraftVerifier(backend, draft[: budget - 1], len(prefix))  # a token past the budget is never kept
    started = time.perf_counter()
    logits, no_speech_prob = _prefix_pass(backend, encoder_states, prefix, info, options)
    first_pass_done = time.perf_counter()
    generated, stop, logprobs, (end_prob, last_token_prob), steps = _main_loop(
        backend, logits, info, options, filters, stop_rules, drafted)
    return DecodedTokens(
        tokens=tuple(generated), stop=stop, avg_logprob=sum(logprobs) / len(logprobs), no_speech_prob=no_speech_prob,
        end_prob=end_prob, last_token_prob=last_token_prob,
        token_probs=tuple(math.exp(logprob) for logprob in logprobs[: len(generated)]),
        first_pass_ms=(first_pass_done - started) * 1e3, steps=steps,
        steps_ms=(time.perf_counter() - first_pass_done) * 1e3, draft_accepted=drafted.accepted,
    )


def _main_loop(
    backend: DecoderSteps, logits: np.ndarray, info: ModelInfo, options: DecodingOptions,
    filters: Sequence[LogitFilter], stop_rules: Sequence[StopRule], drafted: DraftVerifier,
) -> tuple[list[int], str, list[float], tuple[float, float], int]:
    """From the logits after the prefix, a token at a time: the generated tokens, why they stopped, the
    log-probability of each token chosen (EOT included; a stop rule may have cut ``generated`` shorter), (p(EOT)
    where they stopped, p(the last token)) and the decoder steps run."""
    generated: list[int] = []
    logprobs: list[float] = []
    steps, token_logprob = 0, -math.inf
    scratch = np.empty_like(logits)  # the log-softmax's working row, reused by every step
    while True:
        for logit_filter in filters:
            logit_filter.apply(logits, generated)
        token = choose_token(logits, info.eot, options.eos_boost_threshold)
        last_token_logprob, token_logprob = token_logprob, _log_softmax_at(logits, token, scratch)
        logprobs.append(token_logprob)
        if token == info.eot:
            end_probs = (math.exp(token_logprob), math.exp(last_token_logprob))
            return generated, STOP_EOT, logprobs, end_probs, steps
        generated.append(token)
        if (stop := first_stop(stop_rules, generated)) is not None:
            return generated, stop, logprobs, (0.0, math.exp(token_logprob)), steps
        logits = drafted.logits_after(token)
        if logits is None:
            logits = backend.step(token)
            steps += 1


def _prefix_pass(
    backend: DecoderSteps, encoder_states: np.ndarray, prefix: Sequence[int], info: ModelInfo,
    options: DecodingOptions,
) -> tuple[np.ndarray, float]:
    """Start the decoder on the prefix: the logits of the first position to generate, and p(no_speech)."""
    # The first start of transcript: prompt tokens are text tokens and <|startofprev|>, never the SOT. Only its
    # logits and the last position's are needed, and the INT8 decoder projects only those.
    sot_logits, last_logits = backend.start(encoder_states, prefix, options.pad_encoder_output_to,
                                            rows=[list(prefix).index(info.sot), len(prefix) - 1])
    no_speech_prob = math.exp(_log_softmax_at(sot_logits, info.no_speech))
    return last_logits, no_speech_prob


def _log_softmax_at(logits: np.ndarray, index: int, scratch: np.ndarray | None = None) -> float:
    """log softmax(logits)[index]. ``scratch``, a row like ``logits`` to work in: the same float32 arithmetic
    without two fresh 200 kB arrays per token (measured in the recognizer on 30 dev clips, EPYC, loaded: 137 ->
    100 us per call; results bit for bit the same)."""
    peak = logits.max()
    shifted = np.subtract(logits, peak, out=scratch)
    return float(logits[index] - peak - np.log(np.exp(shifted, out=shifted).sum()))
