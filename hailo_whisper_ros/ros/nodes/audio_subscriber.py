"""`audio_subscriber`: audio topic in any PCM format -> 16 kHz mono -> VAD -> utterances on `speech`.

The subscription callbacks only queue the messages; a worker thread converts, resamples and segments them, so a
slow moment never blocks the executor. When the worker falls behind by more than ``queue.max_input_s`` of audio
the oldest messages are dropped and counted. What DDS loses (the message_lost event) and what is missing between
audio_stamped header stamps is counted too: every kind of loss is in /diagnostics, in seconds and messages.

The robot-speaking gate: while ``robot_speaking`` (std_msgs/Bool) is true, and for ``gate.tail_ms`` of audio after it
turns false (the robot's last words and their echo still in the room), the audio is converted but not segmented,
so the robot never transcribes itself; an utterance in progress when it starts is ended there and transcribed.
The gated audio is counted in /diagnostics.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from hailo_whisper_msgs.msg import Speech
from rclpy.event_handler import QoSMessageLostInfo, SubscriptionEventCallbacks
from rclpy.node import Node
from std_msgs.msg import Bool
from std_srvs.srv import SetBool

from hailo_whisper_ros.core.audio_input import AudioFormat, AudioFrontEnd, StreamClock, bytes_per_second
from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.options import Options, option
from hailo_whisper_ros.core.streaming import SpeechPaused, final_decode_pause
from hailo_whisper_ros.core.vad import Segmenter, SpeechAudio, SpeechStarted, VadOptions
from hailo_whisper_ros.ros import diagnostics, topics
from hailo_whisper_ros.ros.diagnostics import RateLimitedLog
from hailo_whisper_ros.ros.params import ParameterBinder
from hailo_whisper_ros.ros.topics import event_sample, stamp_of, to_message
from hailo_whisper_ros.ros.worker import NodeWorker


@dataclass(frozen=True)
class AudioSubscriberOptions(Options):
    PARAMETER_GROUP = "audio"

    stamped: bool = option(
        False, "Subscribe to audio_stamped (AudioDataStamped) instead of audio (AudioData).", read_only=True)
    timeout_s: float = option(
        2.0, "Time without audio after which diagnostics warn that the audio stopped, and the utterance in progress "
        "ends there (its final comes; a stream that stops mid-word would otherwise never get one).",
        unit="s", range=(0.1, 3600.0))
    max_input_s: float = option(
        30.0, "Received audio waiting for conversion at most; beyond it the oldest is dropped and counted.",
        unit="s", range=(1.0, 600.0), parameter="queue.max_input_s")
    reliability: str = option(
        "best_effort", "Audio subscription QoS: best_effort takes reliable and best-effort drivers; reliable has a "
        "reliable driver resend what the network lost, but matches no best-effort driver.",
        choices=("best_effort", "reliable"), read_only=True)
    gate_tail_ms: float = option(
        300.0, "Audio after robot_speaking turns false that is not recognized either: the robot's last words and "
        "their echo.", unit="ms", range=(0.0, 10000.0), parameter="gate.tail_ms")


# A stamp this much of the previous message's duration later than where that message's audio ended is a gap: a
# lost 20 ms message is a whole duration; a driver stamping at publish time jitters by less than half.
STAMP_GAP_TOLERANCE = 0.5


# The node's parameters: every declared option of these (ROS names from core/options.py), by binder key.
PARAMETER_GROUPS = {"audio_format": AudioFormat, "options": AudioSubscriberOptions, "vad": VadOptions}


class AudioSubscriberNode(Node):
    def __init__(self, **kwargs):
        super().__init__("audio_subscriber", **kwargs)
        # Converts and segments what the callbacks queue. Made first: rclpy destroys a node whose constructor
        # raised too, and destroy_node stops it.
        self.worker = NodeWorker("audio_subscriber", self._work, idle_wait_s=0.5, has_work=lambda: bool(self.pending))
        self.lock = self.worker.lock  # guards the queue and the counters the callbacks update
        # ("audio", bytes, seconds, first sample's time in ns) or ("format", AudioInfo) or ("vad", VadOptions) ...
        self.pending: deque = deque()
        binder = ParameterBinder(self)
        audio_format, self.options, vad_options = binder.declare(PARAMETER_GROUPS)
        binder.on_change(self._on_options)

        self.front_end = AudioFrontEnd(audio_format)
        self.segmenter = Segmenter(vad_options)
        self.log = RateLimitedLog(self.get_logger())
        self.pending_s = 0.0
        self.received = 0  # audio messages the subscription callback got
        self.last_message_s = 0.0  # the latest audio message's duration
        self.dropped_s = 0.0  # from a full input queue
        self.dropped_messages = 0
        self.lost_in_transport = 0  # messages, by DDS's message_lost event
        self.lost_in_transport_s = 0.0
        self.missing_by_stamps = 0  # messages, estimated from the gap and the previous message's duration
        self.missing_by_stamps_s = 0.0
        self.unheard_speech = 0  # speech audio messages published while nothing subscribed to `speech`
        self.unheard_speech_s = 0.0
        self.incoming_bytes_per_s = audio_format.bytes_per_second
        self.listening = True
        self.last_audio_time: float | None = None
        self.last_stamp_ns: int | None = None  # audio_stamped's latest header stamp
        self.last_stamp_end_ns: int | None = None  # ... plus its audio's duration: where the next should start
        self.stamps_backwards = 0
        self.utterance_id = 0
        self.pause_told = False  # the current pause was announced on `speech`
        self.utterances = 0
        self.speech_s = 0.0
        self.audio_infos = 0  # AudioInfo messages handled: a driver knows its format is in force once counted
        self.clock = StreamClock()
        self.stream_samples = 0  # 16 kHz samples segmented: the stream position of the next one
        self.segmenter_origin = 0  # the stream position of the segmenter's sample 0 (it restarts after a flush)
        self.robot_speaking = False
        self.gate_tail_left = 0  # samples still to gate after robot_speaking turned false
        self.gated_s = 0.0
        self.gate_closings = 0

        events = SubscriptionEventCallbacks(message_lost=self._on_message_lost)
        audio_qos = topics.audio_qos(self.options.reliability)
        if self.options.stamped:
            self.audio_subscription = self.create_subscription(
                AudioDataStamped, topics.AUDIO_STAMPED, self._queue_stamped_audio, audio_qos,
                event_callbacks=events,
            )
        else:
            self.audio_subscription = self.create_subscription(
                AudioData, topics.AUDIO, self._queue_audio, audio_qos,
                event_callbacks=events,
            )
        self.create_subscription(AudioInfo, topics.AUDIO_INFO, self._queue_format, topics.AUDIO_INFO_QOS)
        self.create_service(SetBool, topics.LISTEN, self._on_listen)
        self.create_subscription(Bool, topics.ROBOT_SPEAKING, self._queue_robot_speaking, topics.ROBOT_SPEAKING_QOS)
        self.speech_pub = self.create_publisher(Speech, topics.SPEECH, topics.SPEECH_QOS)
        self.diagnostics = diagnostics.DiagnosticsPublisher(self, self._status)
        self.worker.start()

    # Executor side: queue only.
    def _queue_audio(self, message: AudioData, stamp_ns: int | None = None) -> float:
        """Queues the message's audio with its first sample's time (``stamp_ns``, else its arrival less its
        duration); its duration."""
        data = bytes(message.data)
        arrival_ns = self.get_clock().now().nanoseconds
        with self.lock:
            self.last_audio_time = time.monotonic()
            self.received += 1
            seconds = len(data) / self.incoming_bytes_per_s
            self.last_message_s = seconds
            recorded_ns = arrival_ns - int(seconds * 1e9) if stamp_ns is None else stamp_ns
            self.pending.append(("audio", data, seconds, recorded_ns))
            self.pending_s += seconds
            dropped_before = self.dropped_messages
            while self.pending_s > self.options.max_input_s and self.pending:
                item = self.pending.popleft()  # the oldest first: the newest audio is what the robot hears now
                if item[0] == "audio":
                    self.pending_s -= item[2]
                    self.dropped_s += item[2]
                    self.dropped_messages += 1
            if self.dropped_messages > dropped_before:
                self.log.warn("queue_full", f"fell behind: the oldest audio dropped beyond queue.max_input_s "
                              f"{self.options.max_input_s:g} s; {self.dropped_s:.2f} s "
                              f"({self.dropped_messages} messages) dropped so far")
            self.worker.wake()
        return seconds

    def _on_message_lost(self, info: QoSMessageLostInfo) -> None:
        """DDS says messages of the audio topic never reached this subscription (a best-effort link lost them)."""
        with self.lock:
            self.lost_in_transport += info.total_count_change
            self.lost_in_transport_s += info.total_count_change * self.last_message_s
            self.log.warn("message_lost", f"{info.total_count_change} audio message(s) lost in transport; "
                          f"{self.lost_in_transport} so far")

    def _queue_stamped_audio(self, message: AudioDataStamped) -> None:
        # The audio is used in arrival order whatever its stamp says; a stamp going back (a driver restart, a clock
        # jump, replayed buffers) is counted and reported so that the driver can be looked at.
        # A stamp later than where the previous message's audio ended says audio is missing in between (lost on
        # the way, or by the driver), counted in seconds and in messages of the previous one's duration.
        stamp_ns = message.header.stamp.sec * 10**9 + message.header.stamp.nanosec
        with self.lock:
            went_back_s = 0.0 if self.last_stamp_ns is None else (self.last_stamp_ns - stamp_ns) / 1e9
            gap_s = 0.0 if self.last_stamp_end_ns is None else (stamp_ns - self.last_stamp_end_ns) / 1e9
            self.last_stamp_ns = stamp_ns
            if went_back_s > 0:
                self.stamps_backwards += 1
                self.log.warn(
                    "timestamp_backwards",
                    f"audio_stamped header stamp went back {went_back_s:.3f} s; the audio is used in arrival order",
                )
            elif self.last_message_s > 0 and gap_s > STAMP_GAP_TOLERANCE * self.last_message_s:
                self.missing_by_stamps_s += gap_s
                self.missing_by_stamps += max(round(gap_s / self.last_message_s), 1)
                self.log.warn("stamp_gap", f"audio_stamped: {gap_s:.3f} s of audio missing before stamp "
                              f"{stamp_ns / 1e9:.3f} s; {self.missing_by_stamps_s:.2f} s missing so far")
        seconds = self._queue_audio(message.audio, stamp_ns)
        with self.lock:
            self.last_stamp_end_ns = stamp_ns + int(round(seconds * 1e9))

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

    def _queue_robot_speaking(self, message: Bool) -> None:
        with self.lock:  # in order with the audio: what came before the change is judged by the state before it
            self.pending.append(("robot_speaking", bool(message.data)))
            self.worker.wake()

    # Worker side.
    def _work(self) -> None:
        with self.lock:
            items = list(self.pending)
            self.pending.clear()
            self.pending_s = 0.0
            silent_for = None if self.last_audio_time is None else time.monotonic() - self.last_audio_time
        for item in items:
            try:
                self._handle(item)
            except Exception as error:  # a fault must not kill the worker: log it and go on with the next item
                self.log.error("worker", f"audio processing failed: {error!r}")
        stopped = silent_for is not None and silent_for > self.options.timeout_s
        if not items and stopped and self.segmenter.utterance_open:
            self.log.info("stopped", f"no audio for {silent_for:.1f} s: the utterance in progress ends there")
            self._flush()

    def _handle(self, item) -> None:
        kind = item[0]
        if kind == "audio":
            if not self.listening:
                return
            rejected_before = self.front_end.rejected.copy()
            converted = self.front_end.convert(item[1])  # converted even when gated: the resampler's state goes on
            self._warn_new_rejections(rejected_before, "")
            gated = self._gated(len(converted))
            samples = converted[gated:]
            if len(samples):
                self.clock.mark(self.stream_samples, item[3] + gated * 10**9 // SAMPLE_RATE)
                self.stream_samples += len(samples)
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
                self._flush()  # what was said before the pause is still transcribed
            self.listening = item[1]
        elif kind == "robot_speaking":
            if item[1] and not self.robot_speaking:
                self.gate_closings += 1
                self._flush()  # what the person said before the robot spoke is still transcribed
            elif self.robot_speaking and not item[1]:
                self.gate_tail_left = int(self.options.gate_tail_ms * SAMPLE_RATE / 1000)
            self.robot_speaking = item[1]

    def _gated(self, samples: int) -> int:
        """How many of the next ``samples`` the gate holds back (from the first): all while the robot speaks, then
        those of the tail."""
        gated = samples if self.robot_speaking else min(self.gate_tail_left, samples)
        if not self.robot_speaking:
            self.gate_tail_left -= gated
        self.gated_s += gated / SAMPLE_RATE
        return gated

    def _flush(self) -> None:
        """End the utterance in progress; the segmenter starts again at its sample 0, where the stream is now."""
        self._publish(self.segmenter.flush())
        self.segmenter_origin = self.stream_samples

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
            self._send(SpeechPaused(self.segmenter.released))

    def _publish(self, events) -> None:
        for event in events:
            if isinstance(event, SpeechStarted):
                self.utterance_id += 1
                self.utterances += 1
            self._send(event)

    def _send(self, event) -> None:
        """One event on `speech`, at its position in the whole stream, stamped on the audio's clock."""
        position = event_sample(event) + self.segmenter_origin
        stamp = stamp_of(self.clock.time_ns(position))
        if isinstance(event, SpeechAudio) and self.speech_pub.get_subscription_count() == 0:
            with self.lock:
                self.unheard_speech += 1
                self.unheard_speech_s += len(event.audio) / SAMPLE_RATE
        self.speech_pub.publish(to_message(self.utterance_id, event, stamp, offset=self.segmenter_origin))

    def _status(self):
        now = time.monotonic()
        with self.lock:
            silent_for = None if self.last_audio_time is None else now - self.last_audio_time
            values = {
                diagnostics.LISTENING: self.listening,
                diagnostics.ROBOT_SPEAKING: self.robot_speaking,
                diagnostics.GATED_AUDIO_S: self.gated_s,
                diagnostics.GATE_CLOSINGS: self.gate_closings,
                diagnostics.AUDIO_INPUT: self.front_end.format.describe(),
                diagnostics.AUDIO_MESSAGES: self.front_end.messages,
                diagnostics.AUDIO_RECEIVED_S: self.front_end.input_seconds,
                diagnostics.AUDIO_FORMAT_CHANGES: self.front_end.format_changes,
                diagnostics.AUDIO_INFO_MESSAGES: self.audio_infos,
                # A best-effort reader drops what comes before it has matched the writer from its own side.
                diagnostics.AUDIO_PUBLISHERS: self.audio_subscription.get_publisher_count(),
                diagnostics.UTTERANCES_SEGMENTED: self.utterances,
                diagnostics.INPUT_QUEUE_S: self.pending_s,
                diagnostics.AUDIO_MESSAGES_RECEIVED: self.received,
                diagnostics.DROPPED_AUDIO_S: self.dropped_s,
                diagnostics.DROPPED_AUDIO_MESSAGES: self.dropped_messages,
                diagnostics.LOST_IN_TRANSPORT_S: self.lost_in_transport_s,
                diagnostics.LOST_IN_TRANSPORT_MESSAGES: self.lost_in_transport,
                diagnostics.MISSING_BY_STAMPS_S: self.missing_by_stamps_s,
                diagnostics.MISSING_BY_STAMPS_MESSAGES: self.missing_by_stamps,
                diagnostics.TIMESTAMPS_BACKWARDS: self.stamps_backwards,
                diagnostics.UNHEARD_SPEECH_S: self.unheard_speech_s,
                diagnostics.UNHEARD_SPEECH_MESSAGES: self.unheard_speech,
                diagnostics.SECONDS_SINCE_AUDIO: -1.0 if silent_for is None else silent_for,
            }
            values.update({
                diagnostics.REJECTED_PREFIX + kind: count for kind, count in sorted(self.front_end.rejected.items())
            })
            losses = [(self.dropped_s, self.dropped_messages, "dropped from a full queue"),
                      (self.lost_in_transport_s, self.lost_in_transport, "lost in transport"),
                      (self.missing_by_stamps_s, self.missing_by_stamps, "missing by stamps"),
                      (self.unheard_speech_s, self.unheard_speech, "of speech with no recognizer subscribed")]
        lost = "; ".join(f"{seconds:.1f} s ({messages} messages) {cause}" for seconds, messages, cause in losses
                         if messages)
        if silent_for is None:
            return diagnostics.WARN, "no audio received yet", values
        if silent_for > self.options.timeout_s:
            return diagnostics.WARN, f"audio stopped {silent_for:.1f} s ago", values
        if lost:
            return diagnostics.WARN, f"audio lost: {lost}", values
        state = "listening" if self.listening else "paused"
        return diagnostics.OK, f"{state}, robot speaking" if self.robot_speaking else state, values

    def destroy_node(self):
        self.worker.stop(timeout_s=5)
        return super().destroy_node()


def main(args=None) -> int:
    from hailo_whisper_ros.ros.runner import run_nodes

    return run_nodes(args, [AudioSubscriberNode])
