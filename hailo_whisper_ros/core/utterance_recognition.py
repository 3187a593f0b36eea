"""The open utterance of a stream and its recognition, used by both transcribers of ``streaming``: partials, the
final (reusing a decode made in the pause that ended the utterance), errors, and their counters."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.partials import PartialBudget, PartialTail, tail_partial
from hailo_whisper_ros.core.transcripts import (
    FINAL,
    PARTIAL,
    LoopGuardTally,
    StreamingOptions,
    StreamingStats,
    TranscriptEvent,
    stable_prefix,
)

if TYPE_CHECKING:
    from hailo_whisper_ros.core.recognizer import Recognizer, TranscriptionResult

logger = logging.getLogger(__name__)

FINAL_LATENCY_HISTORY = 1000  # finals whose latency the statistics keep
DECODE_TIME_SMOOTHING = 0.2  # of the moving average of decode times that schedules a final's decode in a pause


@dataclass
class OpenUtterance:
    """The open utterance: its audio so far and the options it started with."""

    utterance_id: int
    start: int
    decoding: DecodingOptions
    partial_interval: int  # samples; 0: no partials
    next_partial_at: int  # utterance length (samples) at which the next partial is due
    pieces: list[np.ndarray] = field(default_factory=list)
    length: int = 0
    previous_partial: str = ""
    decoded: TranscriptionResult | None = None  # the latest decode, of the first decoded_length samples
    decoded_length: int = -1
    failed: bool = False  # an inference error: no more partials, no final
    context: tuple[int, ...] = ()  # tokens of the previous finals, the prompt of its decodes (condition_on_previous)
    guard_fired: bool = False  # a loop guard fired on a decode of it: its text must not become context
    partial_window: int = 0  # samples a partial decodes at most (streaming.partial_window_s); 0: all of it
    budget_share: float = 0.0  # streaming.partial_budget; 0: no budget
    tail: PartialTail = field(default_factory=PartialTail)  # what partials decode (partial_window)
    draft: tuple[int, ...] = ()  # what a decode of all of it probably gives: the latest decode's tokens
    deferred: bool = False  # the partial due waits for the budget (counted once)

    @property
    def end(self) -> int:
        return self.start + self.length

    def append(self, audio: np.ndarray) -> None:
        self.pieces.append(audio)
        self.length += len(audio)

    def audio(self) -> np.ndarray:
        if len(self.pieces) != 1:
            self.pieces = [np.concatenate(self.pieces) if self.pieces else np.zeros(0, dtype=np.float32)]
        return self.pieces[0]


def check_options(
    recognizer: Recognizer, decoding: DecodingOptions, streaming: StreamingOptions
) -> tuple[DecodingOptions, StreamingOptions]:
    """The options, if this recognizer can use them; else HailoWhisperError with the reason (the objects validated
    their own values when they were made)."""
    for name, value, expected in (("decoding", decoding, DecodingOptions), ("streaming", streaming, StreamingOptions)):
        if not isinstance(value, expected):
            raise HailoWhisperError(f"{name} options must be a {expected.__name__}, not {type(value).__name__}")
    recognizer.check_options(decoding)  # e.g. a language an English-only model cannot honour
    return decoding, streaming


class UtteranceRecognition:
    """Transcribes the open utterance for both transcribers: partials, the final, errors, and their counters."""

    def __init__(
        self,
        recognizer: Recognizer,
        arrival_of: Callable[[int], float | None],
        speech_span: Callable[[int, int], tuple[int, int]] | None = None,
    ):
        self.recognizer = recognizer
        self.arrival_of = arrival_of  # stream position -> when its sample arrived (time.perf_counter())
        # Stream span [start, end) -> where the VAD heard speech in it; None: the VAD is elsewhere, and the span is
        # the whole audio but for a final's end, which the utterance's end event says.
        self.speech_span = speech_span
        self.utterance: OpenUtterance | None = None
        self.utterances = self.partials = self.partials_skipped = self.no_speech_rejections = 0
        self.finals_precomputed = 0
        self.decoder_steps = self.draft_tokens_accepted = 0
        self.decoder_s = 0.0
        self.background_removed_s, self.background_removals = 0.0, 0  # of the finals (decoding.background_trim_db)
        self.inference_calls = self.frames_transcribed = self.errors = 0
        self.inference_s = self.speech_s_transcribed = 0.0
        self.final_latencies_ms: deque[float] = deque(maxlen=FINAL_LATENCY_HISTORY)
        self.speech_end_latencies_ms: deque[float] = deque(maxlen=FINAL_LATENCY_HISTORY)
        self.recent_decode_s = 0.0  # moving average of the inference time
        self.loop_guards = LoopGuardTally()  # partials' and finals' decodes alike
        self.budget = PartialBudget()
        self.partials_deferred = 0
        self.partial_freshness_ms: deque[float] = deque(maxlen=FINAL_LATENCY_HISTORY)
        # decoding.condition_on_previous: the previous finals' tokens, and the stream sample where the last ended.
        self.context: tuple[int, ...] = ()
        self.context_end = 0
        self._logged_error_kinds: set[str] = set()

    def start(self, utterance_id: int, start: int, decoding: DecodingOptions, streaming: StreamingOptions) -> None:
        interval = int(round(streaming.partial_interval_ms * SAMPLE_RATE / 1000))
        silence_limit = int(round(streaming.context_reset_silence_s * SAMPLE_RATE))
        if not decoding.condition_on_previous or (silence_limit and start - self.context_end > silence_limit):
            self.context = ()
        self.utterance = OpenUtterance(
            utterance_id, start, decoding, interval, next_partial_at=interval, context=self.context,
            partial_window=int(round(streaming.partial_window_s * SAMPLE_RATE)), budget_share=streaming.partial_budget,
        )

    def reset(self) -> None:
        """The transcriber's reset: the open utterance (it gets no final) and the context go."""
        self.utterance = None
        self.context = ()

    def finish(self, decided_at: float, speech_end: int | None = None) -> TranscriptEvent | None:
        """Close the open utterance: its final (empty text: no speech), or None after an inference error.
        ``speech_end``: where speech was last heard, when the VAD is elsewhere (SpeechEnded.speech_end)."""
        utterance, self.utterance = self.utterance, None
        self.context, self.context_end = (), utterance.end  # kept below only after a clean final
        if utterance.failed or utterance.length == 0:
            return None
        if utterance.decoded_length == utterance.length:
            result = utterance.decoded  # decoded during the pause that ended it: the final costs nothing more
            self.finals_precomputed += 1
        else:
            result = self._transcribe(utterance)
            if result is None:
                return None
        if utterance.decoding.condition_on_previous and not utterance.guard_fired:
            self.context = result.context_after(utterance.context, utterance.decoding.context_max_tokens)
        finished_at = time.perf_counter()
        latency_ms = (finished_at - decided_at) * 1e3
        self.final_latencies_ms.append(latency_ms)
        # What a listener waits: from the arrival of the last speech sample (the VAD's pause included).
        span = self._span(utterance, speech_end)
        speech_end_arrival = self.arrival_of(span[1])
        if speech_end_arrival is not None:
            self.speech_end_latencies_ms.append((finished_at - speech_end_arrival) * 1e3)
        self.background_removed_s += result.background_removed_s
        self.background_removals += result.background_removed_s > 0
        if result.text:
            self.utterances += 1
        else:
            self.no_speech_rejections += 1
        return self._event(FINAL, utterance, result.text, result.text, latency_ms, result, span)

    def decode_if_due(self, backlog: int, in_pause: bool, final_queued: bool = False) -> TranscriptEvent | None:
        """Decode the open utterance if a partial is due or, ``in_pause``, as its possible final; the partial event
        when partials are on. ``backlog``: samples of input waiting behind this point; ``final_queued``: the
        utterance's end is among them, so a partial now would only delay its final."""
        utterance = self.utterance
        if utterance is None or utterance.failed or utterance.decoded_length == utterance.length:
            return None
        self.budget.earn(utterance.end, utterance.budget_share)  # the clock of the measured share, budget or not
        started = time.perf_counter()
        if in_pause:  # the whole utterance, as its final would decode it
            result = self._transcribe(utterance)
            partial = None if result is None else (result.text, result)
        elif self._partial_due(utterance, backlog, final_queued):
            partial = self._partial(utterance)
            self.budget.spend(time.perf_counter() - started, utterance.end)
        else:
            return None
        if partial is None or not utterance.partial_interval:
            return None
        text, result = partial
        utterance.next_partial_at = utterance.length + utterance.partial_interval
        stable = stable_prefix(utterance.previous_partial, text)
        utterance.previous_partial = text
        self.partials += 1
        published = time.perf_counter()
        arrival = self.arrival_of(utterance.end)
        if arrival is not None:
            self.partial_freshness_ms.append((published - arrival) * 1e3)
        latency_ms = (published - started) * 1e3
        return self._event(PARTIAL, utterance, text, stable, latency_ms, result, self._span(utterance),
                           result_offset=utterance.tail.start if utterance.partial_window else 0)

    def _partial_due(self, utterance: OpenUtterance, backlog: int, final_queued: bool) -> bool:
        """A partial is due by partial_interval_ms, not late, and within the budget; a late one is skipped, one over
        the budget waits (each counted once)."""
        if not utterance.partial_interval or utterance.length < utterance.next_partial_at:
            return False
        if backlog > utterance.partial_interval or final_queued:
            utterance.next_partial_at = utterance.length + utterance.partial_interval
            self.partials_skipped += 1  # behind the input, or its final waiting: leave the time to the finals
            return False
        if utterance.budget_share and not self.budget.affords:
            self.partials_deferred += not utterance.deferred
            utterance.deferred = True
            return False
        utterance.deferred = False
        return True

    def _partial(self, utterance: OpenUtterance) -> tuple[str, TranscriptionResult] | None:
        """The partial's text and decode: of the utterance's tail (partial_window) or of all of it."""
        if not utterance.partial_window:
            result = self._transcribe(utterance)
            return None if result is None else (result.text, result)

        def infer(audio, decoding, context, draft):
            return self._infer(utterance, audio, decoding, context, draft)

        tail = utterance.tail
        partial = tail_partial(
            utterance.audio(), tail, utterance.partial_window, utterance.decoding, utterance.context, infer
        )
        utterance.draft = tail.draft
        if partial is not None and tail.start == 0 and not partial[1].guards:
            # The tail was the whole utterance and no guard fired (so loop_recovery made no difference): the prompt
            # and the window were the final's, and a final in the pause after it reuses the decode.
            utterance.decoded, utterance.decoded_length = partial[1], utterance.length
        return partial

    def stats(self, queue_seconds: tuple[float, float, float, float, float]) -> StreamingStats:
        """The counters, with the input queue's (fed, dropped, queued, max queued, processed) seconds."""
        fed, dropped, queued, max_queued, processed = queue_seconds
        return StreamingStats(
            audio_in_s=fed,
            audio_dropped_s=dropped,
            queue_depth_s=queued,
            max_queue_depth_s=max_queued,
            audio_processed_s=processed,
            utterances=self.utterances,
            partials=self.partials,
            partials_skipped=self.partials_skipped,
            partial_inference_s=self.budget.spent_s,
            partial_share=self.budget.recent_share(),
            partials_deferred=self.partials_deferred,
            partial_freshness_ms=tuple(self.partial_freshness_ms),
            no_speech_rejections=self.no_speech_rejections,
            inference_calls=self.inference_calls,
            inference_s=self.inference_s,
            speech_s_transcribed=self.speech_s_transcribed,
            frames_transcribed=self.frames_transcribed,
            errors=self.errors,
            finals_precomputed=self.finals_precomputed,
            final_latencies_ms=tuple(self.final_latencies_ms),
            speech_end_latencies_ms=tuple(self.speech_end_latencies_ms),
            guards_fired=dict(self.loop_guards.fired),
            loop_recoveries=self.loop_guards.recovered,
            unrecovered_loops=self.loop_guards.unrecovered,
            decoder_s=self.decoder_s,
            decoder_steps=self.decoder_steps,
            draft_tokens_accepted=self.draft_tokens_accepted,
            background_removed_s=self.background_removed_s,
            background_removals=self.background_removals,
        )

    def _span(self, utterance: OpenUtterance, speech_end: int | None = None) -> tuple[int, int]:
        """Where speech was heard in the utterance's audio so far."""
        if self.speech_span is not None:
            return self.speech_span(utterance.start, utterance.end)
        if speech_end is not None and utterance.start < speech_end <= utterance.end:
            return utterance.start, speech_end
        return utterance.start, utterance.end

    def _event(
        self, kind: str, utterance: OpenUtterance, text: str, stable_text: str, latency_ms: float,
        result: TranscriptionResult, span: tuple[int, int], result_offset: int = 0,
    ) -> TranscriptEvent:
        speech_start, speech_end = span
        return TranscriptEvent(
            kind=kind,
            utterance_id=utterance.utterance_id,
            text=text,
            stable_text=stable_text,
            start_sample=utterance.start,
            end_sample=utterance.end,
            speech_start_sample=speech_start,
            speech_end_sample=speech_end,
            latency_ms=latency_ms,
            result=result,
            result_offset=result_offset,
        )

    def _transcribe(self, utterance: OpenUtterance) -> TranscriptionResult | None:
        """The utterance's audio so far, transcribed whole; None after an inference error."""
        audio = utterance.audio()
        # The latest decode's tokens are a draft that greedy decoding verifies exactly: it costs less when the
        # utterance's words so far have not changed, and the text is the same.
        result = self._infer(utterance, audio, utterance.decoding, utterance.context, utterance.draft)
        if result is not None:
            utterance.decoded, utterance.decoded_length = result, len(audio)
            utterance.draft = result.segments[0].tokens if len(result.segments) == 1 else ()
        return result

    def _infer(
        self, utterance: OpenUtterance, audio: np.ndarray, decoding: DecodingOptions, context: Sequence[int],
        draft: Sequence[int],
    ) -> TranscriptionResult | None:
        """``audio`` of the utterance transcribed, and counted; None after an inference error (counted, logged once
        per kind, the utterance marked failed)."""
        started = time.perf_counter()
        try:
            result = self.recognizer.transcribe(audio, decoding, context, draft)
        except Exception as error:  # any backend failure must cost one utterance, not the stream
            self.errors += 1
            utterance.failed = True
            kind = type(error).__name__
            if kind not in self._logged_error_kinds:
                self._logged_error_kinds.add(kind)
                logger.error(
                    "inference failed on utterance %d (%s: %s); it is skipped. Later %s errors are only counted.",
                    utterance.utterance_id, kind, error, kind,
                )
            return None
        finally:
            elapsed = time.perf_counter() - started
            self.inference_calls += 1
            self.inference_s += elapsed
            self.recent_decode_s += DECODE_TIME_SMOOTHING * (elapsed - self.recent_decode_s)
        self.speech_s_transcribed += len(audio) / SAMPLE_RATE
        self.frames_transcribed += sum(segment.frames for segment in result.segments)
        self.loop_guards.add(result)
        self.decoder_s += result.timings.decoder_ms / 1e3
        self.decoder_steps += result.timings.decoder_steps
        self.draft_tokens_accepted += result.timings.draft_accepted
        utterance.guard_fired = utterance.guard_fired or bool(result.guards)
        return result
