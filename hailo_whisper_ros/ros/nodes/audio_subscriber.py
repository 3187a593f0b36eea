"""`audio_subscriber`: audio topic in any PCM format -> 16 kHz mono -> VAD -> utterances on `speech`.

The subscription callbacks only queue the messages; a worker thread converts, resamples and segments them, so a
slow moment never blocks the executor. When the worker falls behind by more than ``queue.max_input_s`` of audio
the oldest messages are dropped and counted.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from rclpy.node import Node
from std_srvs.srv import SetBool

from hailo_whisper_ros.core.audio_input import AudioFormat, AudioFrontEnd, bytes_per_second
from hailo_whisper_ros.core.options import Options, option
from hailo_whisper_ros.core.streaming import SpeechPaused, final_decode_pause
from hailo_whisper_ros.core.vad import Segmenter, SpeechStarted, VadOptions
from hailo_whisper_ros.ros import diagnostics, topics
from hailo_whisper_ros.ros.diagnostics import RateLimitedLog
from hailo_whisper_ros.ros.params import ParameterBinder
from hailo_whisper_ros.ros.topics import to_message
from hailo_whisper_ros.ros.worker import NodeWorker


@dataclass(frozen=True)
class AudioSubscriberOptions(Options):
    PARAMETER_GROUP = "audio"

    stamped: bool = option(
        False, "Subscribe to audio_stamped (AudioDataStamped) instead of audio (AudioData).", read_only=True)
    timeout_s: float = option(2.0, "Time without audio after which diagnostics warn that the audio stopped.",
                              unit="s", range=(0.1, 3600.0))
    max_input_s: float = option(
        30.0, "Received audio waiting for conversion at most; beyond it the oldest is dropped and counted.",
        unit="s", range=(1.0, 600.0), parameter="queue.max_input_s")


# The node's parameters: every declared option of these (ROS names from core/options.py), by binder key.
PARAMETER_GROUPS = {"audio_format": AudioFormat, "options": AudioSubscriberOptions, "vad": VadOptions}


class AudioSubscriberNode(Node):
    def __init__(self, **kwargs):
        super().__init__("audio_subscriber", **kwargs)
        # Converts and segments what the callbacks queue. Made first: rclpy destroys a node whose constructor
        # raised too, and destroy_node stops it.
        self.worker = NodeWorker("audio_subscriber", self._work, idle_wait_s=0.5, has_work=lambda: bool(self.pending))
        self.lock = self.worker.lock  # guards the queue and the counters the callbacks update
        self.pending: deque = deque()  # ("audio", bytes, seconds) or ("format", AudioInfo) or ("vad", VadOptions)
        binder = ParameterBinder(self)
        audio_format, self.options, vad_options = binder.declare(PARAMETER_GROUPS)
        binder.on_change(self._on_options)

        self.front_end = AudioFrontEnd(audio_format)
        self.segmenter = Segmenter(vad_options)
        self.log = RateLimitedLog(self.get_logger())
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
        self.audio_infos = 0  # AudioInfo messages handled: a driver knows its format is in force once counted

        if self.options.stamped:
            self.audio_subscription = self.create_subscription(
                AudioDataStamped, topics.AUDIO_STAMPED, self._queue_stamped_audio, topics.AUDIO_QOS
            )
        else:
            self.audio_subscription = self.create_subscription(
                AudioData, topics.AUDIO, self._queue_audio, topics.AUDIO_QOS)
        self.create_subscription(AudioInfo, topics.AUDIO_INFO, self._queue_format, topics.AUDIO_INFO_QOS)
        self.create_service(SetBool, topics.LISTEN, self._on_listen)
        self.speech_pub = self.create_publisher(AudioDataStamped, topics.SPEECH, topics.SPEECH_QOS)
        self.diagnostics = diagnostics.DiagnosticsPublisher(self, self._status)
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
            self.worker.wake()

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
            self.worker.wake()

    def _on_options(self, key: str, options) -> None:
        with self.lock:
            if key == "options":
                self.options = options
            elif key == "audio_format":
                self.incoming_bytes_per_s = options.bytes_per_second
            else:  # audio format defaults and VAD options apply in stream order
                self.pending.append((key, options))
                self.worker.wake()

    def _on_listen(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        with self.lock:
            self.pending.append(("listen", bool(request.data)))
            self.worker.wake()
        response.success = True
        response.message = "listening" if request.data else "paused: audio is ignored until listening resumes"
        return response

    # Worker side.
    def _work(self) -> None:
        with self.lock:
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
            self.audio_infos += 1
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
                diagnostics.LISTENING: self.listening,
                diagnostics.AUDIO_INPUT: self.front_end.format.describe(),
                diagnostics.AUDIO_MESSAGES: self.front_end.messages,
                diagnostics.AUDIO_RECEIVED_S: self.front_end.input_seconds,
                diagnostics.AUDIO_FORMAT_CHANGES: self.front_end.format_changes,
                diagnostics.AUDIO_INFO_MESSAGES: self.audio_infos,
                # A best-effort reader drops what comes before it has matched the writer from its own side.
                diagnostics.AUDIO_PUBLISHERS: self.audio_subscription.get_publisher_count(),
                diagnostics.UTTERANCES_SEGMENTED: self.utterances,
                diagnostics.INPUT_QUEUE_S: self.pending_s,
                diagnostics.DROPPED_AUDIO_S: self.dropped_s,
                diagnostics.TIMESTAMPS_BACKWARDS: self.stamps_backwards,
                diagnostics.SECONDS_SINCE_AUDIO: -1.0 if silent_for is None else silent_for,
            }
            values.update({
                diagnostics.REJECTED_PREFIX + kind: count for kind, count in sorted(self.front_end.rejected.items())
            })
        if silent_for is None:
            return diagnostics.WARN, "no audio received yet", values
        if silent_for > self.options.timeout_s:
            return diagnostics.WARN, f"audio stopped {silent_for:.1f} s ago", values
        if self.dropped_s > 0:
            return diagnostics.WARN, f"fell behind: {self.dropped_s:.1f} s of audio dropped", values
        return diagnostics.OK, "listening" if self.listening else "paused", values

    def destroy_node(self):
        self.worker.stop(timeout_s=5)
        return super().destroy_node()


def main(args=None) -> int:
    from hailo_whisper_ros.ros.runner import run_nodes

    return run_nodes(args, [AudioSubscriberNode])
