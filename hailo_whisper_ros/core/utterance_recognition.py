"""The open utterance of a stream and its recognition, used by both transcribers of ``streaming``: partials, the
final (reusing a decode made in the pause that ended the utterance), errors, and their counters."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.errors import HailoWhisperError
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
            utterance_id, start, decoding, interval, next_partial_at=interval, context=self.context
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
        return self._event(FINAL, utterance, result.text, latency_ms, result, span)

    def decode_if_due(self, backlog: int, in_pause: bool, final_queued: bool = False) -> TranscriptEvent | None:
        """Decode the open utterance if a partial is due or, ``in_pause``, as its possible final; the partial event
        when partials are on. ``backlog``: samples of input waiting behind this point; ``final_queued``: the
        utterance's end is among them, so a partial now would only delay its final."""
        utterance = self.utterance
        if utterance is None or utterance.failed or utterance.decoded_length == utterance.length:
            return None
        if not in_pause:
            if not utterance.partial_interval or utterance.length < utterance.next_partial_at:
                return None
            utterance.next_partial_at = utterance.length + utterance.partial_interval
            if backlog > utterance.partial_interval or final_queued:
                self.partials_skipped += 1  # behind the input, or its final waiting: leave the time to the finals
                return None
        started = time.perf_counter()
        result = self._transcribe(utterance)
        if result is None or not utterance.partial_interval:
            return None
        utterance.next_partial_at = utterance.length + utterance.partial_interval
        stable = stable_prefix(utterance.previous_partial, result.text)
        utterance.previous_partial = result.text
        self.partials += 1
        latency_ms = (time.perf_counter() - started) * 1e3
        return self._event(PARTIAL, utterance, stable, latency_ms, result, self._span(utterance))

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
        self, kind: str, utterance: OpenUtterance, stable_text: str, latency_ms: float,
        result: TranscriptionResult, span: tuple[int, int],
    ) -> TranscriptEvent:
        speech_start, speech_end = span
        return TranscriptEvent(
            kind=kind,
            utterance_id=utterance.utterance_id,
            text=result.text,
            stable_text=stable_text,
            start_sample=utterance.start,
            end_sample=utterance.end,
            speech_start_sample=speech_start,
            speech_end_sample=speech_end,
            latency_ms=latency_ms,
            result=result,
        )

    def _transcribe(self, utterance: OpenUtterance) -> TranscriptionResult | None:
        """The utterance's audio so far, transcribed; None after an inference error (counted, logged once per kind,
        the utterance marked failed)."""
        audio = utterance.audio()
        previous = utterance.decoded
        # The previous decode's tokens are a draft that greedy decoding verifies exactly: it costs less when the
        # utterance's words so far have not changed, and the text is the same.
        draft = previous.segments[0].tokens if previous is not None and len(previous.segments) == 1 else ()
        started = time.perf_counter()
        try:
            result = self.recognizer.transcribe(audio, utterance.decoding, utterance.context, draft)
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
        utterance.decoded, utterance.decoded_length = result, len(audio)
        return result
