"""The live input pipeline: audio messages in any PCM format -> 16 kHz mono -> the robot-speaking gate -> the stream
clock -> VAD segmentation -> speech events (start, audio, pause, end), with every count it keeps.

Two ways in, one pipeline:

- ``put_*`` from any thread (a ROS subscription callback) only queue, in arrival order: audio messages (bounded by
  ``max_input_s`` of audio, the oldest dropped and counted), format declarations, listening and robot-speaking
  changes, VAD options. The worker takes them through the pipeline with ``process_pending`` (the audio_subscriber).
- ``segment``: 16 kHz float samples straight into the segmentation, from a worker that queues its input itself
  (StreamingTranscriber).

Speech events carry the utterance id (counting from 1) and stream positions: the samples segmented since the start,
plus any jump the owner makes with ``restart``; gated and paused audio is not segmented and takes no positions. An
event's time on the audio's clock comes from the marks the PCM messages set (an audio_stamped header stamp, else the
arrival less the message's duration).

In a pause the segmenter holds back the silence beyond its pad, so the utterance's audio is already complete while
the VAD waits out ``min_silence_ms``: from ``final_decode_pause`` on, its decode may start as the final
(``final_decode_due``), and a SpeechPaused event says so once per pause to a recognizer that cannot see the VAD.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from hailo_whisper_ros.core.audio_input import AudioFormat, AudioFrontEnd, StreamClock, bytes_per_second
from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.options import Options, option
from hailo_whisper_ros.core.vad import (
    WINDOW_SAMPLES,
    Segmenter,
    SegmenterEvent,
    SileroVad,
    SpeechAudio,
    SpeechEnded,
    SpeechProbabilities,
    SpeechProbabilityLog,
    SpeechStarted,
    VadOptions,
)

# StreamingTranscriber segments this much queued audio at a time (whole VAD windows: one VAD call and one lock per
# 128 ms); a pause's decode is started a step early.
STEP_SAMPLES = 4 * WINDOW_SAMPLES
# A final's decode starts in the pause that may end the utterance when the pause is this many recent decode times
# short of min_silence_ms ...
DECODE_TIME_MARGIN = 1.5
# ... but no earlier than this fraction of the pause beyond the pad that the segmenter waits through: on a slow
# machine, earlier starts would mostly decode pauses inside sentences.
MAX_LOOKAHEAD_FRACTION = 0.5
# A stamp this much of the previous message's duration later than where that message's audio ended is a gap: a
# lost 20 ms message is a whole duration; a driver stamping at publish time jitters by less than half.
STAMP_GAP_TOLERANCE = 0.5


@dataclass(frozen=True)
class IntakeOptions(Options):
    PARAMETER_GROUP = "audio"

    timeout_s: float = option(
        2.0, "Time without audio after which the audio counts as stopped (a warning) and the utterance in progress "
        "ends.", unit="s", range=(0.1, 3600.0))
    max_input_s: float = option(
        30.0, "Received audio waiting for conversion at most; beyond it the oldest is dropped and counted.",
        unit="s", range=(1.0, 600.0), parameter="queue.max_input_s")
    gate_tail_ms: float = option(
        300.0, "Audio after robot_speaking turns false that is not recognized either: the robot's last words and "
        "their echo.", unit="ms", range=(0.0, 10000.0), parameter="gate.tail_ms")


@dataclass(frozen=True)
class SpeechPaused:
    """The open utterance's audio ends at stream sample ``end`` and its pause has reached ``final_decode_pause``:
    its final may be decoded now."""

    end: int


SpeechEventKind = SegmenterEvent | SpeechPaused


@dataclass(frozen=True)
class SpeechEvent:
    utterance_id: int
    event: SpeechEventKind  # at its stream positions
    time_ns: int  # the event's stream sample on the audio's clock; 0 before any PCM message marked the clock


def event_position(event: SpeechEventKind) -> int:
    """The stream sample an event is at: a start or audio event's first, else its end."""
    return event.start if isinstance(event, (SpeechStarted, SpeechAudio)) else event.end


def final_decode_pause(options: VadOptions, decode_s: float | None) -> int:
    """Pause (stream samples, counted from its first silent window) from which an utterance's decode may start as
    its final: when the rest of the pause before the segmenter's decision (at min_silence_ms) is about the time a
    decode takes (``decode_s``, with a margin; None: unknown), but not before MAX_LOOKAHEAD_FRACTION of the pause
    beyond the pad."""
    pad = int(round(options.speech_pad_ms * SAMPLE_RATE / 1000))
    min_silence = int(round(options.min_silence_ms * SAMPLE_RATE / 1000))
    lookahead = int(MAX_LOOKAHEAD_FRACTION * (min_silence - pad))
    if decode_s is not None:
        lookahead = min(lookahead, int(DECODE_TIME_MARGIN * decode_s * SAMPLE_RATE) + STEP_SAMPLES)
    return min_silence - lookahead


@dataclass
class IntakeCounts:
    """What the intake counted since it started: every loss by cause, in seconds and messages."""

    messages_received: int = 0  # audio messages put
    dropped_s: float = 0.0  # from a full input queue (max_input_s)
    dropped_messages: int = 0
    lost_in_transport_s: float = 0.0  # told by the transport; seconds at the latest message's duration
    lost_in_transport_messages: int = 0
    missing_by_stamps_s: float = 0.0  # between stamps: a stamp later than the previous one plus its audio
    missing_by_stamps_messages: int = 0  # estimated from the gap and the previous message's duration
    stamps_backwards: int = 0
    format_declarations: int = 0  # handled, valid or not
    utterances: int = 0  # segmented
    gated_s: float = 0.0  # not segmented: while the robot spoke, and gate_tail_ms after
    gate_closings: int = 0  # times robot_speaking turned true


@dataclass(frozen=True)
class IntakeStatus:
    """A snapshot for diagnostics."""

    counts: IntakeCounts
    queued_s: float  # received audio waiting for the worker
    seconds_since_audio: float | None  # None: no audio yet
    listening: bool
    robot_speaking: bool
    audio_format: str
    messages_converted: int
    received_s: float  # audio converted, at its own rate
    format_changes: int
    rejected: dict[str, int]  # by kind of problem (AudioFrontEnd.rejected)


@dataclass(frozen=True)
class _Input:
    """One queued input: the worker calls ``apply(*args)``; ``seconds`` of audio it carries."""

    apply: Callable[..., list[SpeechEvent] | None]
    args: tuple
    seconds: float = 0.0


def _ignore(severity: str, kind: str, text: str) -> None:
    pass


class AudioIntake:
    """See the module docstring. ``report(severity, kind, text)`` gets a line for the log on each problem (severity
    info, warn or error; kind names the problem, for rate limiting); ``wake()`` is called after each ``put_*``;
    ``max_speech_s`` caps the VAD option's (the encoder window); ``announce_pauses``: send SpeechPaused events (a
    worker that asks ``final_decode_due`` itself, with its own decode time, needs none)."""

    def __init__(
        self,
        audio_format: AudioFormat = AudioFormat(),
        vad: VadOptions = VadOptions(),
        options: IntakeOptions = IntakeOptions(),
        *,
        max_speech_s: float | None = None,
        announce_pauses: bool = True,
        report: Callable[[str, str, str], None] = _ignore,
        wake: Callable[[], None] = lambda: None,
        vad_model: SpeechProbabilities | None = None,
    ):
        self.options = options  # read at each use: replacing it applies at once
        self._report, self._wake = report, wake
        self._max_speech_s = max_speech_s
        self._announce_pauses = announce_pauses
        # The input side, guarded by the lock.
        self._lock = threading.Lock()
        self._inputs: deque[_Input] = deque()
        self._queued_s = 0.0
        self._bytes_per_s = audio_format.bytes_per_second  # of the latest format: the queue is bounded in seconds
        self._last_message_s = 0.0
        self._last_audio_at: float | None = None  # time.monotonic()
        self._last_stamp_ns: int | None = None
        self._last_stamp_end_ns: int | None = None  # the latest stamp plus its audio: where the next should start
        self.counts = IntakeCounts()
        # The worker side.
        self.front_end = AudioFrontEnd(audio_format)
        self.clock = StreamClock()
        self.vad = SpeechProbabilityLog(vad_model if vad_model is not None else SileroVad())
        # The latest VAD options, capped (segmenter_options), made once per change; the segmenter takes them
        # between utterances.
        self._next_segmenter_options = self.segmenter_options(vad)
        self._segmenter = Segmenter(self._next_segmenter_options, self.vad)
        self.position = 0  # stream position of the next sample segmented
        self._origin = 0  # stream position of the segmenter's sample 0 (it restarts at 0)
        self.utterance_id = 0
        self.listening = True
        self.robot_speaking = False
        self._gate_tail_left = 0  # samples still to gate after robot_speaking turned false
        self._announced_pause = -1  # the utterance end its pause was announced at

    # Any thread: queue only.
    def put_audio(self, data: bytes, arrival_ns: int, stamp_ns: int | None = None) -> None:
        """One message's PCM bytes, recorded from ``stamp_ns`` (a header stamp; None: its arrival at ``arrival_ns``
        less its duration). Stamps are checked: one going back, or a gap after the previous message's audio, is
        counted; the audio is used in arrival order whatever its stamp says."""
        with self._lock:
            self._last_audio_at = time.monotonic()
            self.counts.messages_received += 1
            seconds = len(data) / self._bytes_per_s
            if stamp_ns is not None:
                self._check_stamp(stamp_ns, seconds)
            self._last_message_s = seconds
            recorded_ns = arrival_ns - int(seconds * 1e9) if stamp_ns is None else stamp_ns
            self._inputs.append(_Input(self.pcm, (data, recorded_ns), seconds))
            self._queued_s += seconds
            self._drop_oldest_audio()
        self._wake()

    def put_format(self, sample_rate: int, channels: int, sample_format: str, coding_format: str) -> None:
        """The driver's format declaration (audio_common_msgs/AudioInfo), in force from the audio put after it."""
        with self._lock:
            # The queue is measured in seconds of the format the audio was sent in, known only here.
            if sample_rate > 0 and channels > 0:
                self._bytes_per_s = bytes_per_second(sample_rate, channels, sample_format)
        self._put(self.declare_format, sample_rate, channels, sample_format, coding_format)

    def put_default_format(self, audio_format: AudioFormat) -> None:
        """The format assumed until the driver declares one (the audio.* parameters)."""
        with self._lock:
            self._bytes_per_s = audio_format.bytes_per_second
        self._put(self.set_default_format, audio_format)

    def put_vad_options(self, vad: VadOptions) -> None:
        self._put(self.set_vad_options, vad)

    def put_listening(self, listening: bool) -> None:
        self._put(self.set_listening, listening)

    def put_robot_speaking(self, speaking: bool) -> None:
        """In order with the audio: what came before the change is judged by the state before it."""
        self._put(self.set_robot_speaking, speaking)

    def lost_in_transport(self, messages: int) -> None:
        """The transport says audio messages never arrived (DDS's message_lost event)."""
        with self._lock:
            self.counts.lost_in_transport_messages += messages
            self.counts.lost_in_transport_s += messages * self._last_message_s
            total = self.counts.lost_in_transport_messages
        self._report("warn", "message_lost", f"{messages} audio message(s) lost in transport; {total} so far")

    @property
    def has_pending(self) -> bool:
        return bool(self._inputs)

    def status(self) -> IntakeStatus:
        with self._lock:
            since = None if self._last_audio_at is None else time.monotonic() - self._last_audio_at
            front_end = self.front_end
            return IntakeStatus(
                replace(self.counts), self._queued_s, since, self.listening, self.robot_speaking,
                front_end.format.describe(), front_end.messages, front_end.input_seconds, front_end.format_changes,
                dict(sorted(front_end.rejected.items())),
            )

    # The worker.
    def process_pending(self) -> list[SpeechEvent]:
        """Take every queued input through the pipeline, in order; then, if the audio stopped more than
        ``timeout_s`` ago, end the utterance in progress (a stream that stops mid-word would never get its end)."""
        with self._lock:
            inputs, self._inputs = self._inputs, deque()
            self._queued_s = 0.0
            since = None if self._last_audio_at is None else time.monotonic() - self._last_audio_at
        events: list[SpeechEvent] = []
        for item in inputs:
            try:
                events += item.apply(*item.args) or []
            except Exception as error:  # a fault must not kill the worker: report it and go on with the next input
                self._report("error", "worker", f"audio processing failed: {error!r}")
        if not inputs and since is not None and since > self.options.timeout_s and self._segmenter.utterance_open:
            self._report("info", "stopped", f"no audio for {since:.1f} s: the utterance in progress ends there")
            events += self.end_utterance()
        return events

    def pcm(self, data: bytes, recorded_ns: int) -> list[SpeechEvent]:
        """One message's PCM bytes in the current format, its first sample recorded at ``recorded_ns``."""
        if not self.listening:
            return []
        rejected_before = self.front_end.rejected.copy()
        converted = self.front_end.convert(data)  # converted even when gated: the resampler's state goes on
        self._report_rejections(rejected_before, "")
        gated = self._gate(len(converted))
        samples = converted[gated:]
        if len(samples) == 0:
            return []
        self.clock.mark(self.position, recorded_ns + gated * 10**9 // SAMPLE_RATE)
        return self.segment(samples)

    def declare_format(self, sample_rate: int, channels: int, sample_format: str, coding_format: str) -> None:
        self.counts.format_declarations += 1
        rejected_before = self.front_end.rejected.copy()
        if self.front_end.declare(sample_rate, channels, sample_format, coding_format):
            self._report("info", "format", f"audio format: {self.front_end.format.describe()}")
        self._report_rejections(rejected_before, "AudioInfo rejected: ")

    def set_default_format(self, fmt: AudioFormat) -> None:
        self.front_end.declare(fmt.sample_rate, fmt.channels, fmt.sample_format, fmt.coding_format)

    def set_vad_options(self, vad: VadOptions) -> None:
        """New VAD options, from the next utterance on (the open one ends by the options it started with).
        HailoWhisperError if they are invalid. Any thread: it only checks and stores them."""
        self._next_segmenter_options = self.segmenter_options(vad)

    def set_listening(self, listening: bool) -> list[SpeechEvent]:
        """Paused, the audio is ignored; what was said before the pause is still transcribed."""
        events = self.end_utterance() if self.listening and not listening else []
        self.listening = listening
        return events

    def set_robot_speaking(self, speaking: bool) -> list[SpeechEvent]:
        """While the robot speaks and for gate_tail_ms after, nothing is segmented; what the person said before the
        robot spoke is still transcribed."""
        events = []
        if speaking and not self.robot_speaking:
            self.counts.gate_closings += 1
            events = self.end_utterance()
        elif self.robot_speaking and not speaking:
            self._gate_tail_left = int(self.options.gate_tail_ms * SAMPLE_RATE / 1000)
        self.robot_speaking = speaking
        return events

    def segment(self, samples: np.ndarray) -> list[SpeechEvent]:
        """The next 16 kHz mono float samples of the stream through the VAD segmentation."""
        if not self._segmenter.utterance_open:
            self._segmenter.options = self._next_segmenter_options
        # A NaN would poison the VAD's recurrent state for the rest of the stream.
        samples = np.nan_to_num(samples, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        events = self._identified(self._segmenter.feed(samples))
        self.position += len(samples)
        if self._announce_pauses:
            events += self._pause_announcement()
        return events

    def end_utterance(self) -> list[SpeechEvent]:
        """End the utterance in progress here (its events; none if none is open); segmentation starts afresh."""
        events = self._identified(self._segmenter.flush())
        self._origin = self.vad.origin = self.position
        return events

    def restart(self, position: int) -> None:
        """Drop the utterance in progress without an end and segment afresh from stream position ``position`` (the
        owner's queue dropped the audio before it, or the owner was reset)."""
        self._segmenter.options = self._next_segmenter_options
        self._segmenter.reset()
        self.position = self._origin = self.vad.origin = position

    def final_decode_due(self, decode_s: float | None) -> bool:
        """True in a pause that may end the open utterance, from when a decode started now (``decode_s``: the
        recent decode time; None: unknown) would finish about when the VAD decides: the segmenter holds back the
        pause beyond the pad, and the VAD hears silence, so if the pause reaches min_silence_ms the utterance ends
        with exactly the audio released so far."""
        segmenter, options = self._segmenter, self._segmenter.options
        released = self._origin + segmenter.released
        if not segmenter.utterance_open or self.position <= released:
            return False
        if self.vad.latest_probability >= options.silence_threshold:
            return False
        pad = int(round(options.speech_pad_ms * SAMPLE_RATE / 1000))
        return self.position - (released - pad) >= final_decode_pause(options, decode_s)

    def speech_span(self, start: int, end: int) -> tuple[int, int]:
        """Where the VAD heard speech in stream samples [start, end) (see SpeechProbabilityLog.speech_span)."""
        return self.vad.speech_span(start, end, self._segmenter.options.threshold)

    def segmenter_options(self, vad: VadOptions) -> VadOptions:
        """The VAD options the segmenter runs with: max_speech_s at most the cap. HailoWhisperError if they are
        invalid (the capped max_speech_s too short for the pads, say)."""
        if not isinstance(vad, VadOptions):
            raise HailoWhisperError(f"vad options must be a VadOptions, not {type(vad).__name__}")
        if self._max_speech_s is None:
            return vad
        return replace(vad, max_speech_s=min(vad.max_speech_s, self._max_speech_s))

    def _put(self, apply: Callable, *args) -> None:
        with self._lock:
            self._inputs.append(_Input(apply, args))
        self._wake()

    def _drop_oldest_audio(self) -> None:
        """Beyond max_input_s, drop the oldest audio (the newest is what the robot hears now); other inputs stay.
        Call with the lock held."""
        limit, kept, dropped = self.options.max_input_s, deque(), 0
        while self._queued_s > limit and self._inputs:
            item = self._inputs.popleft()
            if not item.seconds:
                kept.append(item)
                continue
            self._queued_s -= item.seconds
            self.counts.dropped_s += item.seconds
            self.counts.dropped_messages += 1
            dropped += 1
        self._inputs.extendleft(reversed(kept))
        if dropped:
            self._report("warn", "queue_full", f"fell behind: the oldest audio dropped beyond queue.max_input_s "
                         f"{limit:g} s; {self.counts.dropped_s:.2f} s ({self.counts.dropped_messages} messages) "
                         "dropped so far")

    def _check_stamp(self, stamp_ns: int, seconds: float) -> None:
        """Count a stamp going back (a driver restart, a clock jump, replayed buffers) or a gap after the previous
        message's audio (lost on the way, or by the driver). Call with the lock held."""
        counts = self.counts
        went_back_s = 0.0 if self._last_stamp_ns is None else (self._last_stamp_ns - stamp_ns) / 1e9
        gap_s = 0.0 if self._last_stamp_end_ns is None else (stamp_ns - self._last_stamp_end_ns) / 1e9
        self._last_stamp_ns = stamp_ns
        self._last_stamp_end_ns = stamp_ns + int(round(seconds * 1e9))
        if went_back_s > 0:
            counts.stamps_backwards += 1
            self._report("warn", "timestamp_backwards", f"audio_stamped header stamp went back {went_back_s:.3f} s; "
                         "the audio is used in arrival order")
        elif self._last_message_s > 0 and gap_s > STAMP_GAP_TOLERANCE * self._last_message_s:
            counts.missing_by_stamps_s += gap_s
            counts.missing_by_stamps_messages += max(round(gap_s / self._last_message_s), 1)
            self._report("warn", "stamp_gap", f"audio_stamped: {gap_s:.3f} s of audio missing before stamp "
                         f"{stamp_ns / 1e9:.3f} s; {counts.missing_by_stamps_s:.2f} s missing so far")

    def _report_rejections(self, rejected_before, prefix: str) -> None:
        """A line per kind of problem the front end just counted (one message can hold several kinds)."""
        for kind in self.front_end.rejected - rejected_before:
            self._report("warn", kind, prefix + self.front_end.reasons[kind])

    def _gate(self, samples: int) -> int:
        """How many of the next ``samples`` the gate holds back (from the first): all while the robot speaks, then
        those of the tail."""
        gated = samples if self.robot_speaking else min(self._gate_tail_left, samples)
        if not self.robot_speaking:
            self._gate_tail_left -= gated
        self.counts.gated_s += gated / SAMPLE_RATE
        return gated

    def _identified(self, events: list[SegmenterEvent]) -> list[SpeechEvent]:
        """The segmenter's events at their stream positions, with their utterance id and time."""
        identified = []
        for event in events:
            event = _moved(event, self._origin)
            if isinstance(event, SpeechStarted):
                self.utterance_id += 1
                self.counts.utterances += 1
            identified.append(SpeechEvent(self.utterance_id, event, self.clock.time_ns(event_position(event))))
        return identified

    def _pause_announcement(self) -> list[SpeechEvent]:
        """A SpeechPaused once per pause, when the final's decode is due (the decode time unknown)."""
        released = self._origin + self._segmenter.released
        if released == self._announced_pause or not self.final_decode_due(None):
            return []
        self._announced_pause = released
        return [SpeechEvent(self.utterance_id, SpeechPaused(released), self.clock.time_ns(released))]


def _moved(event: SegmenterEvent, offset: int) -> SegmenterEvent:
    """The segmenter's event with its positions moved by ``offset``."""
    if offset == 0:
        return event
    if isinstance(event, SpeechEnded):
        speech_end = None if event.speech_end is None else event.speech_end + offset
        return replace(event, start=event.start + offset, end=event.end + offset, speech_end=speech_end)
    return replace(event, start=event.start + offset)
