"""`audio_subscriber`: audio topic in any PCM format -> the core's AudioIntake -> speech events on `speech`.

A shell over core/intake.py: the subscription callbacks only hand messages to the intake's queue; the worker takes
them through the pipeline (convert, robot-speaking gate, clock, VAD segmentation) and publishes the speech events.
Every loss is counted, in seconds and messages, and shown in /diagnostics: the intake's (a full input queue, gaps
between audio_stamped header stamps), DDS's (the message_lost event), and speech segmented while no recognizer
subscribed to `speech`.
"""

from __future__ import annotations

from dataclasses import dataclass

from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from hailo_whisper_msgs.msg import Speech
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from std_msgs.msg import Bool
from std_srvs.srv import SetBool

from hailo_whisper_ros.core.audio_input import AudioFormat
from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.intake import AudioIntake, IntakeOptions, SpeechEvent
from hailo_whisper_ros.core.options import Options, option
from hailo_whisper_ros.core.vad import SpeechAudio, VadOptions
from hailo_whisper_ros.ros import diagnostics, topics
from hailo_whisper_ros.ros.diagnostics import RateLimitedLog
from hailo_whisper_ros.ros.params import ParameterBinder
from hailo_whisper_ros.ros.worker import NodeWorker


@dataclass(frozen=True)
class AudioSubscriptionOptions(Options):
    PARAMETER_GROUP = "audio"

    stamped: bool = option(
        False, "Subscribe to audio_stamped (AudioDataStamped) instead of audio (AudioData).", read_only=True)
    reliability: str = option(
        "best_effort", "Audio subscription QoS: best_effort takes reliable and best-effort drivers; reliable has a "
        "reliable driver resend what the network lost, but matches no best-effort driver.",
        choices=("best_effort", "reliable"), read_only=True)


@dataclass(frozen=True)
class SpeechPublicationOptions(Options):
    PARAMETER_GROUP = "speech"

    # 300 float32 samples and the message's headers make a 1.3 kB UDP datagram: one IP packet, lost and resent
    # alone, where a whole release (up to a second and more: 13+ IP fragments) is lost with any of its fragments.
    max_message_samples: int = option(
        300, "Most 16 kHz samples in one `speech` audio message; longer audio goes out as several messages "
        "(0: one message per segmenter release). Small messages fit one datagram of a lossy link (README, "
        "\"A robot and a base station\").", unit="samples", range=(0, 160000))


# The node's parameters: every declared option of these (ROS names from core/options.py), by binder key.
PARAMETER_GROUPS = {"audio_format": AudioFormat, "subscription": AudioSubscriptionOptions, "intake": IntakeOptions,
                    "vad": VadOptions, "speech": SpeechPublicationOptions}


class AudioSubscriberNode(Node):
    def __init__(self, **kwargs):
        super().__init__("audio_subscriber", **kwargs)
        # Made first: rclpy destroys a node whose constructor raised too, and destroy_node stops it.
        self.worker = NodeWorker("audio_subscriber", self._work, idle_wait_s=0.5,
                                 has_work=lambda: self.intake.has_pending)
        binder = ParameterBinder(self)
        audio_format, subscription, intake_options, vad, self.publication = binder.declare(PARAMETER_GROUPS)
        binder.on_change(self._on_options)
        self.log = RateLimitedLog(self.get_logger())
        self.intake = AudioIntake(audio_format, vad, intake_options, report=self._report, wake=self.worker.wake)
        self.unheard_speech = 0  # speech audio messages published while nothing subscribed to `speech`
        self.unheard_speech_s = 0.0

        events = SubscriptionEventCallbacks(
            message_lost=lambda info: self.intake.lost_in_transport(info.total_count_change))
        audio_qos = topics.audio_qos(subscription.reliability)
        if subscription.stamped:
            self.audio_subscription = self.create_subscription(
                AudioDataStamped, topics.AUDIO_STAMPED, self._on_stamped_audio, audio_qos, event_callbacks=events)
        else:
            self.audio_subscription = self.create_subscription(
                AudioData, topics.AUDIO, self._on_audio, audio_qos, event_callbacks=events)
        self.create_subscription(AudioInfo, topics.AUDIO_INFO, self._on_format, topics.AUDIO_INFO_QOS)
        self.create_service(SetBool, topics.LISTEN, self._on_listen)
        self.create_subscription(Bool, topics.ROBOT_SPEAKING, lambda message: self.intake.put_robot_speaking(
            bool(message.data)), topics.ROBOT_SPEAKING_QOS)
        self.speech_pub = self.create_publisher(Speech, topics.SPEECH, topics.SPEECH_QOS)
        self.diagnostics = diagnostics.DiagnosticsPublisher(self, self._status)
        self.worker.start()

    # Executor side: hand over only.
    def _on_audio(self, message: AudioData) -> None:
        self.intake.put_audio(bytes(message.data), self.get_clock().now().nanoseconds)

    def _on_stamped_audio(self, message: AudioDataStamped) -> None:
        stamp_ns = topics.nanoseconds_of(message.header.stamp)
        self.intake.put_audio(bytes(message.audio.data), self.get_clock().now().nanoseconds, stamp_ns)

    def _on_format(self, info: AudioInfo) -> None:
        self.intake.put_format(info.sample_rate, info.channels, info.sample_format, info.coding_format)

    def _on_listen(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        self.intake.put_listening(bool(request.data))
        response.success = True
        response.message = "listening" if request.data else "paused: audio is ignored until listening resumes"
        return response

    def _on_options(self, key: str, options) -> None:
        if key == "intake":
            self.intake.options = options
        elif key == "audio_format":
            self.intake.put_default_format(options)
        elif key == "vad":
            self.intake.put_vad_options(options)
        elif key == "speech":
            self.publication = options

    def _report(self, severity: str, kind: str, text: str) -> None:
        {"info": self.log.info, "warn": self.log.warn, "error": self.log.error}[severity](kind, text)

    # Worker side.
    def _work(self) -> None:
        for speech in self.intake.process_pending():
            self._publish(speech)

    def _publish(self, speech: SpeechEvent) -> None:
        if isinstance(speech.event, SpeechAudio) and self.speech_pub.get_subscription_count() == 0:
            self.unheard_speech += 1
            self.unheard_speech_s += len(speech.event.audio) / SAMPLE_RATE
        for piece in topics.split_audio(speech, self.publication.max_message_samples):
            self.speech_pub.publish(topics.to_message(piece))

    def _status(self):
        status = self.intake.status()
        values = diagnostics.intake_values(status)
        # A best-effort reader drops what comes before it has matched the writer from its own side.
        values[diagnostics.AUDIO_PUBLISHERS] = self.audio_subscription.get_publisher_count()
        values[diagnostics.UNHEARD_SPEECH_S] = self.unheard_speech_s
        values[diagnostics.UNHEARD_SPEECH_MESSAGES] = self.unheard_speech
        counts = status.counts
        losses = [(counts.dropped_s, counts.dropped_messages, "dropped from a full queue"),
                  (counts.lost_in_transport_s, counts.lost_in_transport_messages, "lost in transport"),
                  (counts.missing_by_stamps_s, counts.missing_by_stamps_messages, "missing by stamps"),
                  (self.unheard_speech_s, self.unheard_speech, "of speech with no recognizer subscribed")]
        lost = "; ".join(f"{seconds:.1f} s ({messages} messages) {cause}" for seconds, messages, cause in losses
                         if messages)
        if status.seconds_since_audio is None:
            return diagnostics.WARN, "no audio received yet", values
        if status.seconds_since_audio > self.intake.options.timeout_s:
            return diagnostics.WARN, f"audio stopped {status.seconds_since_audio:.1f} s ago", values
        if lost:
            return diagnostics.WARN, f"audio lost: {lost}", values
        state = "listening" if status.listening else "paused"
        return diagnostics.OK, f"{state}, robot speaking" if status.robot_speaking else state, values

    def destroy_node(self):
        self.worker.stop(timeout_s=5)
        return super().destroy_node()


def main(args=None) -> int:
    from hailo_whisper_ros.ros.runner import run_nodes

    return run_nodes(args, [AudioSubscriberNode])
