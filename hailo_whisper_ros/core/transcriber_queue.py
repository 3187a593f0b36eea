"""What both transcribers of ``streaming`` share: the options, the input queue bounded in audio (filled from any
thread, the oldest audio dropped and counted beyond ``max_queue_s``), the worker lock, the recognition of the open
utterance and the statistics."""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Callable

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.transcripts import StreamingOptions, StreamingStats, TranscriptEvent
from hailo_whisper_ros.core.utterance_recognition import UtteranceRecognition

ARRIVAL_HISTORY = 4096  # inputs whose arrival times are kept: minutes of 20 ms messages, more than an utterance

if TYPE_CHECKING:
    from hailo_whisper_ros.core.recognizer import Recognizer


class QueuedTranscriber:
    """What both transcribers share: the options, the input queue bounded in audio (filled from any thread), the
    worker lock, the recognition and the statistics. A subclass says what its queue items are."""

    def __init__(
        self,
        recognizer: "Recognizer",
        decoding: DecodingOptions,
        streaming: StreamingOptions,
        speech_span: Callable[[int, int], tuple[int, int]],
    ):
        self._recognizer = recognizer
        self._check_options(decoding, streaming)
        self._decoding, self._streaming = decoding, streaming  # the latest; utterances take them when they start
        self._lock = threading.Lock()  # the queue, its accounting, the options, the reset generation
        self._worker_lock = threading.Lock()
        self._queue: deque = deque()
        self._queued = 0  # samples in the queue
        self._fed = self._dropped = self._processed = self._max_queued = 0
        self._generation = 0  # reset() increments it; the worker notices at its next step
        # (stream position, time.perf_counter()) after each input's audio: when each sample arrived
        self._arrivals: deque[tuple[int, float]] = deque(maxlen=ARRIVAL_HISTORY)
        self._recognition = UtteranceRecognition(recognizer, speech_span, self._arrival_of)

    @property
    def options(self) -> StreamingOptions:
        return self._streaming

    def reset(self) -> None:
        """Pause/resume: drop the queued input (its audio counted in audio_dropped_s) and, at the worker's next
        step, the open utterance (its audio was taken by the worker, so it is not counted as dropped; it gets no
        final). An event being computed when reset() is called is still returned. Stream positions go on."""
        with self._lock:
            self._dropped += self._queued
            self._queue.clear()
            self._queued = 0
            self._generation += 1

    def stats(self) -> StreamingStats:
        with self._lock:
            queue = (self._fed, self._dropped, self._queued, self._max_queued, self._processed)
        fed, dropped, queued, max_queued, processed = (samples / SAMPLE_RATE for samples in queue)
        recognition = self._recognition
        return StreamingStats(
            audio_in_s=fed,
            audio_dropped_s=dropped,
            queue_depth_s=queued,
            max_queue_depth_s=max_queued,
            audio_processed_s=processed,
            utterances=recognition.utterances,
            partials=recognition.partials,
            partials_skipped=recognition.partials_skipped,
            no_speech_rejections=recognition.no_speech_rejections,
            inference_calls=recognition.inference_calls,
            inference_s=recognition.inference_s,
            speech_s_transcribed=recognition.speech_s_transcribed,
            frames_transcribed=recognition.frames_transcribed,
            errors=recognition.errors,
            finals_precomputed=recognition.finals_precomputed,
            final_latencies_ms=tuple(recognition.final_latencies_ms),
            speech_end_latencies_ms=tuple(recognition.speech_end_latencies_ms),
            guards_fired=dict(recognition.loop_guards.fired),
            loop_recoveries=recognition.loop_guards.recovered,
            unrecovered_loops=recognition.loop_guards.unrecovered,
            decoder_s=recognition.decoder_s,
            decoder_steps=recognition.decoder_steps,
            draft_tokens_accepted=recognition.draft_tokens_accepted,
        )

    def _set_options(self, decoding: DecodingOptions | None, streaming: StreamingOptions | None) -> None:
        """Validate and adopt new options (None keeps the current ones); call with the lock held."""
        decoding, streaming = decoding or self._decoding, streaming or self._streaming
        self._check_options(decoding, streaming)
        self._decoding, self._streaming = decoding, streaming
        self._drop_oldest_beyond(streaming.max_queue_s)

    def _check_options(self, decoding: DecodingOptions, streaming: StreamingOptions) -> None:
        for name, value, expected in (
            ("decoding", decoding, DecodingOptions), ("streaming", streaming, StreamingOptions)
        ):
            if not isinstance(value, expected):
                raise HailoWhisperError(f"{name} options must be a {expected.__name__}, not {type(value).__name__}")
            value.validate()
        self._recognizer.check_options(decoding)  # e.g. a language an English-only model cannot honour

    def _enqueue(self, item, samples: int) -> None:
        """Append an item carrying ``samples`` of audio; call with the lock held."""
        self._queue.append(item)
        self._queued += samples
        self._fed += samples
        self._drop_oldest_beyond(self._streaming.max_queue_s)
        self._max_queued = max(self._max_queued, self._queued)

    def _drop_oldest_beyond(self, max_queue_s: float) -> None:
        """Drop the oldest queued audio beyond max_queue_s, exactly (the oldest item with audio is cut); items
        without audio (utterance starts and ends) are kept. Call with the lock held."""
        excess = self._queued - int(round(max_queue_s * SAMPLE_RATE))
        kept = []
        while excess > 0:
            item = self._queue.popleft()
            samples = self._item_samples(item)
            if samples == 0:
                kept.append(item)
                continue
            dropped = min(samples, excess)
            if dropped < samples:
                self._queue.appendleft(self._without_first(item, dropped))
            excess -= dropped
            self._queued -= dropped
            self._dropped += dropped
        self._queue.extendleft(reversed(kept))

    @staticmethod
    def _append(event: TranscriptEvent | None, events: list) -> None:
        if event is not None:
            events.append(event)

    def _arrived(self, end: int, at: float) -> None:
        """The input's audio up to stream position ``end`` arrived at ``at``; call with the lock held."""
        self._arrivals.append((end, at))

    def _arrival_of(self, position: int) -> float | None:
        """When the sample before stream position ``position`` arrived (None: longer ago than the history)."""
        with self._lock:
            arrived_at = None
            for end, at in reversed(self._arrivals):
                if end < position:
                    break
                arrived_at = at
            return arrived_at

    def _item_samples(self, item) -> int:
        raise NotImplementedError

    def _without_first(self, item, samples: int):
        """The item without its first ``samples`` of audio."""
        raise NotImplementedError
