"""Partial and final transcripts of live speech, for two set-ups, each a plain composition of the same parts:

- ``StreamingTranscriber``: an endless 16 kHz audio stream in (the caption command, or a single-process robot
  application): an InputQueue of audio -> the AudioIntake's segmentation -> an UtteranceRecognition, in one worker;
- ``UtteranceTranscriber``: the speech events of an AudioIntake elsewhere in (the ROS audio_subscriber node, over
  the `speech` topic): an InputQueue of events -> an UtteranceRecognition.

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

A final's decode does not have to wait for the end-of-utterance decision: in a pause the utterance's audio is
already complete (core/intake.py). It is decoded then, and the final reuses that decode if no audio joined the
utterance since; when partials are on, such a decode is published as a partial too. StreamingTranscriber asks the
intake at every step, with its recent decode time; UtteranceTranscriber is told by a SpeechPaused event, or else
sees the pause as audio that stopped arriving.

Utterances never exceed the encoder window (StreamingTranscriber caps ``max_speech_s`` to it), so a decode is one
encoder pass. Sample positions count from the first sample of the stream, dropped audio included, so they stay
aligned with the source's clock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from hailo_whisper_ros.core.constants import HOP_LENGTH, SAMPLE_RATE
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.input_queue import InputQueue
from hailo_whisper_ros.core.intake import STEP_SAMPLES, AudioIntake, SpeechEvent, SpeechPaused
from hailo_whisper_ros.core.recognizer import Recognizer
from hailo_whisper_ros.core.transcripts import StreamingOptions, StreamingStats, TranscriptEvent
from hailo_whisper_ros.core.utterance_recognition import UtteranceRecognition, check_options
from hailo_whisper_ros.core.vad import SegmenterEvent, SpeechAudio, SpeechEnded, SpeechStarted, VadOptions

if TYPE_CHECKING:
    from hailo_whisper_ros.core.config import RecognizerConfig

# Without a SpeechPaused, UtteranceTranscriber takes an open utterance whose audio stopped arriving this long ago to be
# in a pause: longer than the gaps between the segmenter's releases during speech (one audio message of the source,
# typically 10 to 100 ms), shorter than min_silence_ms minus speech_pad_ms (400 ms by default).
ARRIVAL_PAUSE_S = 0.25


class StreamingTranscriber:
    """Turns a 16 kHz float32 mono stream into TranscriptEvents (see the module docstring); utterance ids count
    from 1. Ids of utterances that get no final (an inference error, a reset) are not reused.

    Threads: ``feed``, ``update_options``, ``reset`` and ``stats`` may be called from any thread at any time;
    ``process_pending`` and ``flush`` are the worker and run one at a time (a second caller waits).
    """

    def __init__(
        self,
        recognizer: Recognizer,
        vad: VadOptions = VadOptions(),
        decoding: DecodingOptions = DecodingOptions(),
        streaming: StreamingOptions = StreamingOptions(),
    ):
        self._recognizer = recognizer
        self._decoding, self._streaming = check_options(recognizer, decoding, streaming)
        self._options_lock = threading.Lock()
        window_s = recognizer.encoder.max_frames * HOP_LENGTH / SAMPLE_RATE
        # The worker asks final_decode_due itself at every step, with its own decode time: no SpeechPaused events.
        self._intake = AudioIntake(vad=vad, max_speech_s=window_s, announce_pauses=False)
        self._queue: InputQueue[np.ndarray] = InputQueue(streaming.max_queue_s, len, lambda audio, n: audio[n:])
        self._recognition = UtteranceRecognition(recognizer, self._queue.arrival_of, self._intake.speech_span)
        self._worker_lock = threading.Lock()
        self._worker_generation = 0

    @property
    def options(self) -> StreamingOptions:
        return self._streaming

    def feed(self, samples: np.ndarray) -> None:
        """Queue float32 mono 16 kHz samples in [-1, 1] (copied). Beyond max_queue_s the oldest audio is dropped."""
        samples = np.asarray(samples)
        if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.floating):
            raise HailoWhisperError(
                f"feed() takes 1-D float mono samples at {SAMPLE_RATE} Hz, got {samples.dtype} {samples.shape}"
            )
        # A copy: the caller may reuse its buffer.
        self._queue.put(samples.astype(np.float32, copy=True), time.perf_counter())

    def update_options(
        self,
        vad: VadOptions | None = None,
        decoding: DecodingOptions | None = None,
        streaming: StreamingOptions | None = None,
    ) -> None:
        """Replace some options (None keeps the current ones); HailoWhisperError if they are invalid.

        VAD, decoding and partial_interval_ms take effect at the next utterance (the open one finishes with the
        options it started with). max_queue_s applies at once.
        """
        with self._options_lock:
            if vad is not None:
                self._intake.set_vad_options(vad)
            self._decoding, self._streaming = check_options(
                self._recognizer, decoding or self._decoding, streaming or self._streaming
            )
            self._queue.set_max_queue_s(self._streaming.max_queue_s)

    def reset(self) -> None:
        """Pause/resume: drop the queued audio (counted in audio_dropped_s) and, at the worker's next step, the open
        utterance (its audio was taken by the worker, so it is not counted as dropped; it gets no final). An event
        being computed when reset() is called is still returned. Stream positions go on."""
        self._queue.reset()

    def stats(self) -> StreamingStats:
        return self._recognition.stats(self._queue.seconds())

    def process_pending(self) -> list[TranscriptEvent]:
        """Work through the audio queued before this call; returns the partials and finals it produced, in order."""
        with self._worker_lock:
            return self._process(until=self._queue.puts)

    def flush(self) -> list[TranscriptEvent]:
        """End of stream: process the queued audio, then close the open utterance with a final. Feeding may go on
        afterwards (the VAD starts afresh)."""
        with self._worker_lock:
            events = self._process(until=self._queue.puts)
            self._transcribe(self._intake.end_utterance(), events)
            return events

    def _process(self, until: int) -> list[TranscriptEvent]:
        events: list[TranscriptEvent] = []
        while True:
            generation, start, pieces = self._queue.take_audio(until, STEP_SAMPLES)
            if generation != self._worker_generation:
                self._worker_generation = generation
                self._recognition.reset()
                self._intake.restart(start)
            elif start != self._intake.position:
                # The queue dropped audio the worker had not taken: end the open utterance with the audio it has.
                self._transcribe(self._intake.end_utterance(), events)
                self._intake.restart(start)
            if not pieces:
                return events
            self._transcribe(self._intake.segment(np.concatenate(pieces) if len(pieces) > 1 else pieces[0]), events)
            backlog = self._queue.queued
            in_pause = backlog <= STEP_SAMPLES and self._intake.final_decode_due(self._recognition.recent_decode_s)
            _append(self._recognition.decode_if_due(backlog, in_pause), events)

    def _transcribe(self, speech_events: list[SpeechEvent], events: list[TranscriptEvent]) -> None:
        decided_at = time.perf_counter()
        for speech in speech_events:
            event = speech.event
            if isinstance(event, SpeechStarted):
                with self._options_lock:
                    decoding, streaming = self._decoding, self._streaming
                self._recognition.start(speech.utterance_id, event.start, decoding, streaming)
            elif isinstance(event, SpeechAudio):
                self._recognition.utterance.append(event.audio)
            elif isinstance(event, SpeechEnded):
                _append(self._recognition.finish(decided_at), events)


@dataclass(frozen=True)
class _Submitted:
    utterance_id: int
    event: SegmenterEvent | SpeechPaused
    submitted_at: float  # time.perf_counter() at submit()


def _submitted_samples(submitted: _Submitted) -> int:
    return len(submitted.event.audio) if isinstance(submitted.event, SpeechAudio) else 0


def _without_first_samples(submitted: _Submitted, samples: int) -> _Submitted:
    event = submitted.event
    return replace(submitted, event=SpeechAudio(event.start + samples, event.audio[samples:]))


class UtteranceTranscriber:
    """Transcribes the speech events of an AudioIntake elsewhere (the ROS audio_subscriber node), with its stream
    positions and utterance ids, which the TranscriptEvents keep.

    The speech span of a TranscriptEvent is its whole audio here (the VAD is not at hand), except that a final's
    ends where its SpeechEnded says speech was last heard: the final's listener latency counts from that sample's
    arrival, as StreamingTranscriber's does and as someone waiting for it measures. An utterance that lost audio
    to the queue limit ends at the gap with the audio it has; its audio after the gap, and audio of an utterance
    whose start was never seen (dropped by reset()), are dropped too, and counted. Threads as for
    StreamingTranscriber (``submit`` for ``feed``).
    """

    def __init__(
        self,
        recognizer: Recognizer,
        decoding: DecodingOptions = DecodingOptions(),
        streaming: StreamingOptions = StreamingOptions(),
    ):
        self._recognizer = recognizer
        self._decoding, self._streaming = check_options(recognizer, decoding, streaming)
        self._queue: InputQueue[_Submitted] = InputQueue(
            streaming.max_queue_s, _submitted_samples, _without_first_samples,
            is_end=lambda submitted: isinstance(submitted.event, SpeechEnded),
        )
        self._recognition = UtteranceRecognition(recognizer, self._queue.arrival_of)
        self._worker_lock = threading.Lock()
        self._worker_generation = 0
        self._last_audio_at = 0.0  # when the open utterance's latest audio was submitted

    @property
    def options(self) -> StreamingOptions:
        return self._streaming

    @property
    def recognizer(self) -> Recognizer:
        return self._recognizer

    def submit(self, utterance_id: int, event: SegmenterEvent | SpeechPaused) -> None:
        """Queue one speech event of utterance ``utterance_id`` (cheap; the audio is not copied)."""
        if not isinstance(event, (SpeechStarted, SpeechAudio, SpeechEnded, SpeechPaused)):
            raise HailoWhisperError(f"submit() takes the segmenter's events, not {type(event).__name__}")
        submitted = _Submitted(utterance_id, event, time.perf_counter())
        audio_end = event.start + len(event.audio) if isinstance(event, SpeechAudio) else None
        self._queue.put(submitted, submitted.submitted_at, audio_end)

    def check_options(self, decoding: DecodingOptions | None = None, streaming: StreamingOptions | None = None) -> None:
        """HailoWhisperError if these options (None: the current ones) cannot be used with this recognizer."""
        check_options(self._recognizer, decoding or self._decoding, streaming or self._streaming)

    def update_options(
        self, decoding: DecodingOptions | None = None, streaming: StreamingOptions | None = None, checked: bool = False
    ) -> None:
        """As StreamingTranscriber.update_options, without VAD options (they belong to the intake). ``checked``:
        check_options accepted them already (a node's parameter validation), so they are not checked again."""
        decoding, streaming = decoding or self._decoding, streaming or self._streaming
        if not checked:
            check_options(self._recognizer, decoding, streaming)
        self._decoding, self._streaming = decoding, streaming
        self._queue.set_max_queue_s(streaming.max_queue_s)

    def reset(self) -> None:
        """As StreamingTranscriber.reset."""
        self._queue.reset()

    def stats(self) -> StreamingStats:
        return self._recognition.stats(self._queue.seconds())

    def process_pending(self) -> list[TranscriptEvent]:
        """Work through the events submitted before this call; then, caught up, decode an open utterance whose audio
        stopped arriving (a pause that may end it). Returns the partials and finals, in order."""
        with self._worker_lock:
            until = self._queue.puts
            events: list[TranscriptEvent] = []
            while True:
                generation, submitted = self._queue.take_one(until)
                if generation != self._worker_generation:  # reset(): the open utterance goes without a final
                    self._worker_generation = generation
                    self._recognition.reset()
                if submitted is None:
                    break
                self._handle(submitted, events)
            backlog = self._queue.queued
            in_pause = (
                self._recognition.utterance is not None
                and backlog == 0
                and time.perf_counter() - self._last_audio_at >= ARRIVAL_PAUSE_S
            )
            _append(self._recognition.decode_if_due(backlog, in_pause), events)
            return events

    def _handle(self, submitted: _Submitted, events: list[TranscriptEvent]) -> None:
        recognition = self._recognition
        event, utterance = submitted.event, recognition.utterance
        is_open = utterance is not None and utterance.utterance_id == submitted.utterance_id
        if isinstance(event, SpeechStarted):
            if utterance is not None:  # its end never came: finish it with what it has
                _append(recognition.finish(submitted.submitted_at), events)
            recognition.start(submitted.utterance_id, event.start, self._decoding, self._streaming)
            self._last_audio_at = submitted.submitted_at
        elif isinstance(event, SpeechAudio):
            if is_open and event.start > utterance.end:  # audio dropped from the queue: end at the gap
                _append(recognition.finish(submitted.submitted_at), events)
            if is_open and event.start == utterance.end:
                utterance.append(np.asarray(event.audio, dtype=np.float32))
                self._last_audio_at = submitted.submitted_at
                backlog, final_queued = self._queue.queued, self._queue.ends_queued > 0
                _append(recognition.decode_if_due(backlog, False, final_queued), events)
            else:
                self._queue.discard(len(event.audio))
        elif isinstance(event, SpeechPaused):
            # The decode that the end will most likely reuse; not when behind (more audio may be queued after).
            if is_open and event.end == utterance.end and self._queue.queued == 0:
                _append(recognition.decode_if_due(0, in_pause=True), events)
        elif is_open:
            _append(recognition.finish(submitted.submitted_at, event.speech_end), events)


def load_utterance_transcriber(
    config: RecognizerConfig, decoding: DecodingOptions, streaming: StreamingOptions
) -> UtteranceTranscriber:
    """A Recognizer loaded from ``config``, with its UtteranceTranscriber; HailoWhisperError, the recognizer freed
    again, when the options do not fit the model."""
    recognizer = Recognizer(config)
    try:
        return UtteranceTranscriber(recognizer, decoding, streaming)
    except HailoWhisperError:
        recognizer.close()
        raise


def _append(event: TranscriptEvent | None, events: list[TranscriptEvent]) -> None:
    if event is not None:
        events.append(event)
