"""Partial and final transcripts of live speech, for two set-ups:

- ``StreamingTranscriber``: an endless 16 kHz audio stream in, the VAD segmenter and the recognizer in one worker
  (the caption command, or a single-process robot application);
- ``UtteranceTranscriber``: utterances already cut by a segmenter elsewhere (the ROS audio_subscriber node) in,
  as its events (SpeechStarted, SpeechAudio, SpeechEnded).

Both queue their input from any thread (``feed``/``submit`` only append to a queue bounded in audio; beyond
``max_queue_s`` the oldest audio is dropped and counted) and transcribe in ``process_pending``:

- a final for every utterance when it ends: at a pause, at ``max_speech_s`` (cut at a quiet point, the speech going
  on as the next utterance), or when audio of it was dropped from the queue (then with the audio before the gap).
  Its text is empty when the recognizer finds no speech in it;
- a partial each time ``partial_interval_ms`` of new audio has joined the open utterance, unless the worker is more
  than one interval behind its input or the utterance's end is already queued: then the partial is skipped
  (counted), so that the finals keep up. Audio joins an utterance only with speech (the segmenter holds back a
  pause beyond its pad until speech resumes), so a partial always has new speech to decode. Each decode takes the
  previous one's tokens as its draft (Recognizer.transcribe), which makes a partial that only added words cost
  about one decoder pass plus its new tokens.

A final's decode does not have to wait for the end-of-utterance decision: in a pause, the segmenter holds back the
silence beyond its pad, so the utterance's audio is already complete while the VAD waits out ``min_silence_ms``.
It is decoded then, and the final reuses that decode if no audio joined the utterance since; when partials are on,
such a decode is published as a partial too. StreamingTranscriber sees the pause in the VAD and starts the decode
as late as the recent decode times allow; UtteranceTranscriber is told by the segmenter's owner (a SpeechPaused
submitted when ``final_decode_pause`` is reached), or else sees it as audio that stopped arriving.

Utterances never exceed the encoder window (StreamingTranscriber lowers ``max_speech_s`` to it), so a decode is one
encoder pass. Sample positions count from the first sample of the stream, dropped audio included, so they stay
aligned with the source's clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from hailo_whisper_ros.core.constants import HOP_LENGTH, SAMPLE_RATE
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.transcriber_queue import QueuedTranscriber
from hailo_whisper_ros.core.transcripts import StreamingOptions, TranscriptEvent
from hailo_whisper_ros.core.vad import (
    WINDOW_SAMPLES,
    Segmenter,
    SegmenterEvent,
    SileroVad,
    SpeechAudio,
    SpeechEnded,
    SpeechStarted,
    VadOptions,
)

if TYPE_CHECKING:
    from hailo_whisper_ros.core.recognizer import Recognizer

# The worker takes this much queued audio at a time: partials and the reaction to a reset fall on these steps.
# 128 ms, whole VAD windows, keeps the per-step overhead (one VAD call, one lock) small.
STEP_SAMPLES = 4 * WINDOW_SAMPLES
# A final's decode starts in the pause that may end the utterance when the pause is this many recent decode times
# (utterance_recognition.DECODE_TIME_SMOOTHING's moving average) short of min_silence_ms.
DECODE_TIME_MARGIN = 1.5
# ... but no earlier than this fraction of the pause that the segmenter waits through before it ends an utterance
# (beyond the pad): on a slow machine, earlier starts would mostly decode pauses inside sentences.
MAX_LOOKAHEAD_FRACTION = 0.5
# Without a SpeechPaused, UtteranceTranscriber takes an open utterance whose audio stopped arriving this long ago to be
# in a pause: longer than the gaps between the segmenter's releases during speech (one audio message of the source,
# typically 10 to 100 ms), shorter than min_silence_ms minus speech_pad_ms (400 ms by default).
ARRIVAL_PAUSE_S = 0.25
# Speech probabilities kept for locating the speech inside an utterance: longer than the longest utterance (the
# 30 s encoder window plus the pads before its start).
PROBABILITY_HISTORY_S = 32.0


@dataclass(frozen=True)
class SpeechPaused:
    """Submitted to UtteranceTranscriber by the segmenter's owner: the open utterance's audio ends at stream sample
    ``end`` and its pause has reached ``final_decode_pause``, so its final may be decoded now."""

    end: int


def final_decode_pause(options: VadOptions, decode_s: float | None) -> int:
    """Pause (stream samples, counted from its first silent window) from which an utterance's decode may start as
    its final: when the rest of the pause before the segmenter's decision (at min_silence_ms) is about the time a
    decode takes (``decode_s``, with a margin; None: unknown), but not before MAX_LOOKAHEAD_FRACTION of the pause
    beyond the pad: earlier starts would decode more pauses that do not end the utterance."""
    pad = int(round(options.speech_pad_ms * SAMPLE_RATE / 1000))
    min_silence = int(round(options.min_silence_ms * SAMPLE_RATE / 1000))
    lookahead = int(MAX_LOOKAHEAD_FRACTION * (min_silence - pad))
    if decode_s is not None:
        lookahead = min(lookahead, int(DECODE_TIME_MARGIN * decode_s * SAMPLE_RATE) + STEP_SAMPLES)
    return min_silence - lookahead


class SpeechProbabilityLog:
    """The segmenter's VAD, recording the speech probability of the recent windows with their stream positions, so
    that an utterance can report where speech was heard inside its padded audio."""

    def __init__(self, vad: SileroVad):
        self._vad = vad
        self.window_samples = vad.window_samples
        self._history = int(PROBABILITY_HISTORY_S * SAMPLE_RATE) // self.window_samples
        self._starts = np.zeros(0, dtype=np.int64)  # stream position of each recorded window
        self._probabilities = np.zeros(0, dtype=np.float32)
        self.origin = 0  # stream position of the segmenter's sample 0 (the transcriber restarts the segmenter)
        self.reset()

    def reset(self) -> None:
        """The segmenter starts a new stream. The history stays: the utterance that the segmenter's flush closed
        (just before it resets) still needs it."""
        self._vad.reset()
        self._windows = 0

    def process(self, audio: np.ndarray) -> np.ndarray:
        probabilities = self._vad.process(audio)
        starts = self.origin + (self._windows + np.arange(len(probabilities))) * self.window_samples
        self._windows += len(probabilities)
        self._starts = np.concatenate([self._starts, starts])[-self._history :]
        self._probabilities = np.concatenate([self._probabilities, probabilities])[-self._history :]
        return probabilities

    @property
    def latest_probability(self) -> float:
        return float(self._probabilities[-1]) if len(self._probabilities) else 0.0

    def speech_span(self, start: int, end: int, threshold: float) -> tuple[int, int]:
        """From the first to the end of the last window at or above threshold overlapping [start, end), clipped to
        it; [start, end) itself if there is none."""
        speech = np.flatnonzero(
            (self._starts < end) & (self._starts + self.window_samples > start) & (self._probabilities >= threshold)
        )
        if len(speech) == 0:
            return start, end
        return max(int(self._starts[speech[0]]), start), min(int(self._starts[speech[-1]]) + self.window_samples, end)


class StreamingTranscriber(QueuedTranscriber):
    """Turns a 16 kHz float32 mono stream into TranscriptEvents (see the module docstring); utterance ids count
    from 1. Ids of utterances that get no final (an inference error, a reset) are not reused.

    Threads: ``feed``, ``update_options``, ``reset`` and ``stats`` may be called from any thread at any time;
    ``process_pending`` and ``flush`` are the worker and run one at a time (a second caller waits).
    """

    def __init__(
        self,
        recognizer: "Recognizer",
        vad: VadOptions = VadOptions(),
        decoding: DecodingOptions = DecodingOptions(),
        streaming: StreamingOptions = StreamingOptions(),
    ):
        self._window_s = recognizer.encoder.max_frames * HOP_LENGTH / SAMPLE_RATE
        self._vad = SpeechProbabilityLog(SileroVad())
        super().__init__(recognizer, decoding, streaming, self._speech_span)
        self._vad_options = vad
        self._segmenter = Segmenter(self._segment_options(vad), self._vad)  # validates vad
        self._worker_generation = 0
        self._position = 0  # stream position up to which the worker has taken audio
        self._next_utterance_id = 1

    def feed(self, samples: np.ndarray) -> None:
        """Queue float32 mono 16 kHz samples in [-1, 1] (copied). Beyond max_queue_s the oldest audio is dropped."""
        samples = np.asarray(samples)
        if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.floating):
            raise HailoWhisperError(
                f"feed() takes 1-D float mono samples at {SAMPLE_RATE} Hz, got {samples.dtype} {samples.shape}"
            )
        chunk = samples.astype(np.float32, copy=True)  # a copy: the caller may reuse its buffer
        with self._lock:
            self._enqueue(chunk, len(chunk))
            self._arrived(self._fed, time.perf_counter())

    def update_options(
        self,
        vad: VadOptions | None = None,
        decoding: DecodingOptions | None = None,
        streaming: StreamingOptions | None = None,
    ) -> None:
        """Replace some options (None keeps the current ones); HailoWhisperError if they are invalid.

        VAD, decoding and partial_interval_ms take effect at the next utterance (the open one finishes with the
        options it started with); the VAD restarts there, once no utterance is open. max_queue_s applies at once.
        """
        with self._lock:
            vad = vad or self._vad_options
            self._segment_options(vad)  # validates vad
            self._set_options(decoding, streaming)
            self._vad_options = vad

    def process_pending(self) -> list[TranscriptEvent]:
        """Work through the audio queued before this call; returns the partials and finals it produced, in order."""
        with self._worker_lock:
            return self._process(until=self._fed)

    def flush(self) -> list[TranscriptEvent]:
        """End of stream: process the queued audio, then close the open utterance with a final. Feeding may go on
        afterwards (the VAD starts afresh)."""
        with self._worker_lock:
            events = self._process(until=self._fed)
            self._on_segmenter_events(self._segmenter.flush(), time.perf_counter(), events)
            self._restart_segmenter(self._position)
            return events

    def _process(self, until: int) -> list[TranscriptEvent]:
        events: list[TranscriptEvent] = []
        recognition = self._recognition
        while True:
            generation, start, audio = self._take(until)
            if generation != self._worker_generation:
                self._worker_generation = generation
                recognition.reset()
                self._restart_segmenter(start)
            elif start != self._position:
                # The queue dropped audio the worker had not taken: end the open utterance with the audio it has.
                self._on_segmenter_events(self._segmenter.flush(), time.perf_counter(), events)
                self._restart_segmenter(start)
            if len(audio) == 0:
                return events
            if recognition.utterance is None and self._segmenter.options != self._segment_options(self._vad_options):
                self._restart_segmenter(start)  # new VAD options, applied between utterances
            self._position = start + len(audio)
            # A NaN would poison the VAD's recurrent state for the rest of the stream.
            segmenter_events = self._segmenter.feed(np.nan_to_num(audio, copy=False, nan=0.0, posinf=0.0, neginf=0.0))
            self._on_segmenter_events(segmenter_events, time.perf_counter(), events)
            in_pause = self._queued <= STEP_SAMPLES and self._final_decode_due()
            self._append(recognition.decode_if_due(self._queued, in_pause), events)

    def _take(self, until: int) -> tuple[int, int, np.ndarray]:
        """Up to STEP_SAMPLES of queued audio before stream position ``until``: (generation, its position, audio)."""
        with self._lock:
            start = self._fed - self._queued  # the queue always holds the newest audio
            wanted = min(STEP_SAMPLES, until - start)
            pieces = []
            while wanted > 0 and self._queue:
                first = self._queue[0]
                if len(first) <= wanted:
                    pieces.append(self._queue.popleft())
                else:
                    pieces.append(first[:wanted])
                    self._queue[0] = first[wanted:]
                wanted -= len(pieces[-1])
            audio = np.concatenate(pieces) if len(pieces) > 1 else pieces[0] if pieces else np.zeros(0, np.float32)
            self._queued -= len(audio)
            self._processed += len(audio)
            return self._generation, start, audio

    def _item_samples(self, item: np.ndarray) -> int:
        return len(item)

    def _without_first(self, item: np.ndarray, samples: int) -> np.ndarray:
        return item[samples:]

    def _restart_segmenter(self, position: int) -> None:
        """Start the segmenter afresh at stream position ``position`` with the latest VAD options."""
        self._segmenter.options = self._segment_options(self._vad_options)
        self._segmenter.reset()
        self._position = self._vad.origin = position

    def _on_segmenter_events(self, segmenter_events: list[SegmenterEvent], decided_at: float, events: list) -> None:
        recognition = self._recognition
        for event in segmenter_events:
            if isinstance(event, SpeechStarted):
                start = self._vad.origin + event.start
                recognition.start(self._next_utterance_id, start, self._decoding, self._streaming)
                self._next_utterance_id += 1
            elif isinstance(event, SpeechAudio):
                recognition.utterance.append(event.audio)
            else:
                self._append(recognition.finish(decided_at), events)

    def _final_decode_due(self) -> bool:
        """True in a pause that may end the open utterance, early enough that its decode finishes when the VAD
        decides.

        The segmenter holds back the audio of a pause beyond speech_pad_ms, so in a pause the stream has moved past
        the utterance's audio (and the VAD hears silence); if the pause reaches min_silence_ms, the utterance ends
        with exactly this audio. When to start: final_decode_pause, with the recent average decode time."""
        utterance = self._recognition.utterance
        options = self._segmenter.options
        if utterance is None or self._position <= utterance.end:
            return False
        if self._vad.latest_probability >= options.silence_threshold:
            return False
        pad = int(round(options.speech_pad_ms * SAMPLE_RATE / 1000))
        pause = self._position - (utterance.end - pad)
        return pause >= final_decode_pause(options, self._recognition.recent_decode_s)

    def _speech_span(self, start: int, end: int) -> tuple[int, int]:
        return self._vad.speech_span(start, end, self._segmenter.options.threshold)

    def _segment_options(self, vad: VadOptions) -> VadOptions:
        """The VAD options the segmenter runs with: max_speech_s at most the encoder window. HailoWhisperError if
        they are invalid (the lowered max_speech_s too short for the pads, say)."""
        if not isinstance(vad, VadOptions):
            raise HailoWhisperError(f"vad options must be a VadOptions, not {type(vad).__name__}")
        return replace(vad, max_speech_s=min(vad.max_speech_s, self._window_s))


@dataclass(frozen=True)
class _SubmittedEvent:
    index: int  # submission order
    utterance_id: int
    event: SegmenterEvent | SpeechPaused
    submitted_at: float  # time.perf_counter() at submit()


class UtteranceTranscriber(QueuedTranscriber):
    """Transcribes utterances that a Segmenter cut elsewhere (the ROS audio_subscriber node), given as its events
    with the segmenter's stream positions and the sender's utterance ids, which the TranscriptEvents keep.

    The speech span of a TranscriptEvent is its whole audio here (the VAD is not at hand), except that a final's
    ends where its SpeechEnded says speech was last heard: the final's listener latency counts from that sample's
    arrival, as StreamingTranscriber's does and as someone waiting for it measures. An utterance that lost audio
    to the queue limit ends at the gap with the audio it has; its audio after the gap, and audio of an utterance
    whose start was never seen (dropped by reset()), are dropped too, and counted. Threads as for
    StreamingTranscriber (``submit`` for ``feed``).
    """

    def __init__(
        self,
        recognizer: "Recognizer",
        decoding: DecodingOptions = DecodingOptions(),
        streaming: StreamingOptions = StreamingOptions(),
    ):
        super().__init__(recognizer, decoding, streaming, self._speech_span)
        self._ending_speech_end: int | None = None  # speech_end of the SpeechEnded being handled
        self._submitted = 0
        self._worker_generation = 0
        self._last_audio_at = 0.0  # when the open utterance's latest audio was submitted
        self._ends_queued = 0  # SpeechEnded events in the queue: a partial would delay their finals

    def submit(self, utterance_id: int, event: SegmenterEvent | SpeechPaused) -> None:
        """Queue one segmenter event, or a SpeechPaused, of utterance ``utterance_id`` (cheap; the audio is not
        copied)."""
        if not isinstance(event, (SpeechStarted, SpeechAudio, SpeechEnded, SpeechPaused)):
            raise HailoWhisperError(f"submit() takes the segmenter's events, not {type(event).__name__}")
        samples = len(event.audio) if isinstance(event, SpeechAudio) else 0
        with self._lock:
            submitted_at = time.perf_counter()
            self._enqueue(_SubmittedEvent(self._submitted, utterance_id, event, submitted_at), samples)
            if samples:
                self._arrived(event.start + samples, submitted_at)
            self._submitted += 1
            self._ends_queued += isinstance(event, SpeechEnded)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._ends_queued = sum(isinstance(item.event, SpeechEnded) for item in self._queue)

    def update_options(
        self, decoding: DecodingOptions | None = None, streaming: StreamingOptions | None = None
    ) -> None:
        """As StreamingTranscriber.update_options, without VAD options (they belong to the segmenter's owner)."""
        with self._lock:
            self._set_options(decoding, streaming)

    def process_pending(self) -> list[TranscriptEvent]:
        """Work through the events submitted before this call; then, caught up, decode an open utterance whose audio
        stopped arriving (a pause that may end it). Returns the partials and finals, in order."""
        with self._worker_lock:
            until = self._submitted
            events: list[TranscriptEvent] = []
            while (submitted := self._take(until)) is not None:
                self._handle(submitted, events)
            recognition = self._recognition
            in_pause = (
                recognition.utterance is not None
                and self._queued == 0
                and time.perf_counter() - self._last_audio_at >= ARRIVAL_PAUSE_S
            )
            self._append(recognition.decode_if_due(self._queued, in_pause), events)
            return events

    def _take(self, until: int) -> _SubmittedEvent | None:
        """The next queued event submitted before ``until``; an open utterance is dropped first after a reset."""
        with self._lock:
            if self._generation != self._worker_generation:
                self._worker_generation = self._generation
                self._recognition.reset()
            if not self._queue or self._queue[0].index >= until:
                return None
            submitted = self._queue.popleft()
            self._ends_queued -= isinstance(submitted.event, SpeechEnded)
            samples = self._item_samples(submitted)
            self._queued -= samples
            self._processed += samples
            return submitted

    def _handle(self, submitted: _SubmittedEvent, events: list) -> None:
        recognition = self._recognition
        event, utterance = submitted.event, recognition.utterance
        is_open = utterance is not None and utterance.utterance_id == submitted.utterance_id
        if isinstance(event, SpeechStarted):
            if utterance is not None:  # its end never came: finish it with what it has
                self._append(recognition.finish(submitted.submitted_at), events)
            recognition.start(submitted.utterance_id, event.start, self._decoding, self._streaming)
            self._last_audio_at = submitted.submitted_at
        elif isinstance(event, SpeechAudio):
            if is_open and event.start > utterance.end:  # audio dropped from the queue: end at the gap
                self._append(recognition.finish(submitted.submitted_at), events)
            if is_open and event.start == utterance.end:
                utterance.append(np.asarray(event.audio, dtype=np.float32))
                self._last_audio_at = submitted.submitted_at
                final_queued = self._ends_queued > 0
                self._append(recognition.decode_if_due(self._queued, False, final_queued), events)
            else:
                with self._lock:
                    self._processed -= len(event.audio)
                    self._dropped += len(event.audio)
        elif isinstance(event, SpeechPaused):
            # The decode that the end will most likely reuse; not when behind (more audio may be queued after).
            if is_open and event.end == utterance.end and self._queued == 0:
                self._append(recognition.decode_if_due(self._queued, in_pause=True), events)
        elif is_open:
            self._ending_speech_end = event.speech_end
            try:
                self._append(recognition.finish(submitted.submitted_at), events)
            finally:
                self._ending_speech_end = None

    def _speech_span(self, start: int, end: int) -> tuple[int, int]:
        speech_end = self._ending_speech_end
        return (start, speech_end) if speech_end is not None and start < speech_end <= end else (start, end)

    def _item_samples(self, item: _SubmittedEvent) -> int:
        return len(item.event.audio) if isinstance(item.event, SpeechAudio) else 0

    def _without_first(self, item: _SubmittedEvent, samples: int) -> _SubmittedEvent:
        audio = SpeechAudio(item.event.start + samples, item.event.audio[samples:])
        return replace(item, event=audio)

