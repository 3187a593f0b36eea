"""`audio_subscriber`: audio topic in any PCM format -> 16 kHz mono -> VAD -> utterances on `speech`.

The subscription callbacks only queue the messages; a worker thread converts, resamples and segments them, so a
slow moment never blocks the executor. When the worker falls behind by more than ``queue.max_input_s`` of audio
the oldest messages are dropped and counted.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import rclpy
from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_srvs.srv import SetBool

from hailo_whisper_ros.core import HailoWhisperError
from hailo_whisper_ros.core.audio_input import AudioFormat, AudioFrontEnd, bytes_per_second
from hailo_whisper_ros.core.streaming import SpeechPaused, final_decode_pause
from hailo_whisper_ros.core.vad import Segmenter, SpeechStarted, VadOptions
from hailo_whisper_ros.ros import diagnostics
from hailo_whisper_ros.ros.parameters import ParameterBinder, ParameterSpec
from hailo_whisper_ros.ros.rate_limited_log import RateLimitedLog
from hailo_whisper_ros.ros.speech_topic import to_message

# Best effort accepts reliable and best-effort publishers alike; a deep history rides out a busy executor.
AUDIO_QOS = QoSProfile(depth=200, reliability=ReliabilityPolicy.BEST_EFFORT)
# Drivers latch AudioInfo (transient local) so late subscribers still learn the format.
AUDIO_INFO_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
SPEECH_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)


@dataclass(frozen=True)
class AudioSubscriberOptions:
    stamped: bool = False
    """Subscribe to `audio_stamped` (AudioDataStamped) instead of `audio` (AudioData)."""

    timeout_s: float = 2.0
    """Seconds without audio after which diagnostics warn that the audio stopped."""

    max_input_s: float = 30.0
    """Seconds of received audio waiting for conversion at most; beyond it the oldest is dropped and counted."""

    def __post_init__(self):
        if not 0.1 <= self.timeout_s <= 3600:
            raise HailoWhisperError(f"audio timeout {self.timeout_s} s must be within 0.1..3600 s")
        if not 1.0 <= self.max_input_s <= 600:
            raise HailoWhisperError(f"input queue {self.max_input_s} s must be within 1..600 s")


AUDIO_FORMAT_SPECS = [
    ParameterSpec("audio.sample_rate", "sample_rate", range=(4000, 384000)),
    ParameterSpec("audio.channels", "channels", range=(1, 32)),
    ParameterSpec("audio.sample_format", "sample_format"),
]
AUDIO_OPTIONS_SPECS = [
    ParameterSpec("audio.stamped", "stamped", read_only=True),
    ParameterSpec("audio.timeout_s", "timeout_s", range=(0.1, 3600.0)),
    ParameterSpec("queue.max_input_s", "max_input_s", range=(1.0, 600.0)),
]
VAD_SPECS = [
    ParameterSpec("vad.threshold", "threshold", range=(0.01, 0.99)),
    ParameterSpec("vad.neg_threshold", "neg_threshold", range=(0.0, 0.99), none_as=0.0),
    ParameterSpec("vad.min_silence_ms", "min_silence_ms", range=(0.0, 10000.0)),
    ParameterSpec("vad.speech_pad_ms", "speech_pad_ms", range=(0.0, 2000.0)),
    ParameterSpec("vad.min_speech_ms", "min_speech_ms", range=(0.0, 10000.0)),
    ParameterSpec("vad.pre_roll_ms", "pre_roll_ms", range=(0.0, 2000.0)),
    ParameterSpec("vad.max_speech_s", "max_speech_s", range=(1.0, 30.0)),
]


class AudioSubscriberNode(Node):
    def __init__(self, **kwargs):
        super().__init__("audio_subscriber", **kwargs)
        binder = ParameterBinder(self)
        audio_format = binder.add("audio_format", AudioFormat(), AUDIO_FORMAT_SPECS)
        self.options = binder.add("options", AudioSubscriberOptions(), AUDIO_OPTIONS_SPECS)
        # Utterances of at most 10 s fit every encoder window (the HEFs' too) and keep partials and finals quick;
        # longer speech is cut at a quiet point and goes on.
        vad_options = binder.add("vad", VadOptions(max_speech_s=10.0), VAD_SPECS)
        binder.on_change(self._on_options)

        self.front_end = AudioFrontEnd(audio_format)
        self.segmenter = Segmenter(vad_options)
        self.log = RateLimitedLog(self.get_logger())
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.pending: deque = deque()  # ("audio", bytes, seconds) or ("format", AudioInfo) or ("vad", VadOptions)
        self.pending_s = 0.0
        self.dropped_s = 0.0
        self.incoming_bytes_per_s = audio_format.bytes_per_second
        self.listening = True
        self.last_audio_time: float | None = None
        self.last_stamp_ns: int | None = None  # audio_stamped's latest header stamp
        self.stamps_backwards = 0
        self.utterance_id = 0
        self.pause_told = False  # the current pause was announced on `speech`
        self.utterances = 0
        self.speech_s = 0.0
        self.running = True

        if self.options.stamped:
            self.create_subscription(AudioDataStamped, "audio_stamped", self._queue_stamped_audio, AUDIO_QOS)
        else:
            self.create_subscription(AudioData, "audio", self._queue_audio, AUDIO_QOS)
        self.create_subscription(AudioInfo, "audio_info", self._queue_format, AUDIO_INFO_QOS)
        self.create_service(SetBool, "listen", self._on_listen)
        self.speech_pub = self.create_publisher(AudioDataStamped, "speech", SPEECH_QOS)
        self.diagnostics = diagnostics.DiagnosticsPublisher(self, self._status)
        self.worker = threading.Thread(target=self._work, name="audio_subscriber", daemon=True)
        self.worker.start()

    # Executor side: queue only.
    def _queue_audio(self, message: AudioData) -> None:
        data = bytes(message.data)
        with self.lock:
            self.last_audio_time = time.monotonic()
            seconds = len(data) / self.incoming_bytes_per_s
            self.pending.append(("audio", data, seconds))
            self.pending_s += seconds
            while self.pending_s > self.options.max_input_s and self.pending:
                item = self.pending.popleft()
                if item[0] == "audio":
                    self.pending_s -= item[2]
                    self.dropped_s += item[2]
            self.wake.notify()

    def _queue_stamped_audio(self, message: AudioDataStamped) -> None:
        # The audio is used in arrival order whatever its stamp says; a stamp going back (a driver restart, a clock
        # jump, replayed buffers) is counted and reported so that the driver can be looked at.
        stamp_ns = message.header.stamp.sec * 10**9 + message.header.stamp.nanosec
        with self.lock:
            went_back_s = 0.0 if self.last_stamp_ns is None else (self.last_stamp_ns - stamp_ns) / 1e9
            self.last_stamp_ns = stamp_ns
            if went_back_s > 0:
                self.stamps_backwards += 1
                self.log.warn(
                    "timestamp_backwards",
                    f"audio_stamped header stamp went back {went_back_s:.3f} s; the audio is used in arrival order",
                )
        self._queue_audio(message.audio)

    def _queue_format(self, info: AudioInfo) -> None:
        with self.lock:
            # The queue is measured in seconds of the format the audio was sent in, known only here.
            if info.sample_rate > 0 and info.channels > 0:
                self.incoming_bytes_per_s = bytes_per_second(info.sample_rate, info.channels, info.sample_format)
            self.pending.append(("format", info))
            self.wake.notify()

    def _on_options(self, key: str, options) -> None:
        with self.lock:
            if key == "options":
                self.options = options
            elif key == "audio_format":
                self.incoming_bytes_per_s = options.bytes_per_second
            else:  # audio format defaults and VAD options apply in stream order
                self.pending.append((key, options))
                self.wake.notify()

    def _on_listen(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        with self.lock:
            self.pending.append(("listen", bool(request.data)))
            self.wake.notify()
        response.success = True
        response.message = "listening" if request.data else "paused: audio is ignored until listening resumes"
        return response

    # Worker side.
    def _work(self) -> None:
        while self.running:
            with self.lock:
                while self.running and not self.pending:
                    self.wake.wait(timeout=0.5)
                items = list(self.pending)
                self.pending.clear()
                self.pending_s = 0.0
            for item in items:
                try:
                    self._handle(item)
                except Exception as error:  # a fault must not kill the worker: log it and go on with the next item
                    self.log.error("worker", f"audio processing failed: {error!r}")

    def _handle(self, item) -> None:
        kind = item[0]
        if kind == "audio":
            if not self.listening:
                return
            rejected_before = self.front_end.rejected.copy()
            samples = self.front_end.convert(item[1])
            self._warn_new_rejections(rejected_before, "")
            if len(samples):
                self._publish(self.segmenter.feed(samples))
                self._tell_pause()
        elif kind == "format":
            info = item[1]
            rejected_before = self.front_end.rejected.copy()
            if self.front_end.declare(info.sample_rate, info.channels, info.sample_format, info.coding_format):
                self.log.info("format", f"audio format: {self.front_end.format.describe()}")
            self._warn_new_rejections(rejected_before, "AudioInfo rejected: ")
        elif kind == "audio_format":
            fmt = item[1]
            self.front_end.declare(fmt.sample_rate, fmt.channels, fmt.sample_format, fmt.coding_format)
        elif kind == "vad":
            self.segmenter.options = item[1]  # the segmenter reads its options per window
        elif kind == "listen":
            if self.listening and not item[1]:
                self._publish(self.segmenter.flush())  # what was said before the pause is still transcribed
            self.listening = item[1]

    def _warn_new_rejections(self, rejected_before, prefix: str) -> None:
        """A warning per kind of problem the front end just counted, rate-limited per kind (one message can hold
        several kinds, NaN and a partial frame say)."""
        for kind in self.front_end.rejected - rejected_before:
            self.log.warn(kind, prefix + self.front_end.reasons[kind])

    def _tell_pause(self) -> None:
        """Once per pause, when it is long enough that the recognizer should decode the utterance as its final,
        say so on `speech` (the recognizer knows nothing of the VAD: without this it waits for the audio to stop
        arriving, too late to have the final ready when the end comes)."""
        pause = self.segmenter.pause_samples
        if pause == 0:
            self.pause_told = False
        elif not self.pause_told and pause >= final_decode_pause(self.segmenter.options, None):
            self.pause_told = True
            self.speech_pub.publish(to_message(self.utterance_id, SpeechPaused(self.segmenter.released)))

    def _publish(self, events) -> None:
        for event in events:
            if isinstance(event, SpeechStarted):
                self.utterance_id += 1
                self.utterances += 1
            self.speech_pub.publish(to_message(self.utterance_id, event))

    def _status(self):
        now = time.monotonic()
        with self.lock:
            silent_for = None if self.last_audio_time is None else now - self.last_audio_time
            values = {
                "listening": self.listening,
                "audio input": self.front_end.format.describe(),
                "audio messages": self.front_end.messages,
                "audio received (s)": self.front_end.input_seconds,
                "audio format changes": self.front_end.format_changes,
                "utterances segmented": self.utterances,
                "input queue (s)": self.pending_s,
                "dropped audio (s)": self.dropped_s,
                "timestamps going backwards": self.stamps_backwards,
                "seconds since last audio": -1.0 if silent_for is None else silent_for,
            }
            values.update({f"rejected {kind}": count for kind, count in sorted(self.front_end.rejected.items())})
        if silent_for is None:
            return diagnostics.WARN, "no audio received yet", values
        if silent_for > self.options.timeout_s:
            return diagnostics.WARN, f"audio stopped {silent_for:.1f} s ago", values
        if self.dropped_s > 0:
            return diagnostics.WARN, f"fell behind: {self.dropped_s:.1f} s of audio dropped", values
        return diagnostics.OK, "listening" if self.listening else "paused", values

    def destroy_node(self):
        with self.lock:
            self.running = False
            self.wake.notify()
        self.worker.join(timeout=5)
        return super().destroy_node()


def main(args=None) -> int:
    from hailo_whisper_ros.ros.runner import run_nodes

    return run_nodes(args, [AudioSubscriberNode])
