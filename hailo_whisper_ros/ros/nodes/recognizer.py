"""`recognizer`: utterances on `speech` -> partial and final results on `transcript/events`.

Holds the encoder (Hailo NPU or ONNX on the CPU, with the core's fallback) and the CPU KV-cache decoder. The
subscription callback only hands the audio to the core's queue; a worker thread transcribes. When it falls
behind, the core drops the oldest audio (``queue.max_audio_s``) and counts it.
"""

from __future__ import annotations

import dataclasses

from audio_common_msgs.msg import AudioDataStamped
from rclpy.node import Node
from std_msgs.msg import String

from hailo_whisper_ros.core.config import RecognizerConfig
from hailo_whisper_ros.core.decoding import GUARDS, DecodingOptions
from hailo_whisper_ros.core.recognizer import Recognizer
from hailo_whisper_ros.core.resources import resident_mb
from hailo_whisper_ros.core.streaming import UtteranceTranscriber
from hailo_whisper_ros.core.transcripts import StreamingOptions
from hailo_whisper_ros.export.store import resolve_model_dir
from hailo_whisper_ros.ros import diagnostics, topics
from hailo_whisper_ros.ros.diagnostics import RateLimitedLog
from hailo_whisper_ros.ros.params import ParameterBinder
from hailo_whisper_ros.ros.topics import from_message, to_event_message, transcript_record
from hailo_whisper_ros.ros.worker import NodeWorker

BEHIND_FRACTION = 0.5  # WARN when the queue holds more than this share of queue.max_audio_s


# The node's parameters: every declared option of these (ROS names from core/options.py), by binder key.
PARAMETER_GROUPS = {"model": RecognizerConfig, "decoding": DecodingOptions, "streaming": StreamingOptions}


class RecognizerNode(Node):
    def __init__(self, **kwargs):
        super().__init__("recognizer", **kwargs)
        # Transcribes what the speech callback queues; it also runs when nothing arrives, to decode an utterance
        # whose audio stopped coming (a pause). Made first: rclpy destroys a node whose constructor raised too.
        self.worker = NodeWorker("recognizer", self._work, idle_wait_s=0.1)
        self.recognizer: Recognizer | None = None
        binder = ParameterBinder(self)
        config, decoding, streaming = binder.declare(PARAMETER_GROUPS)
        self.log = RateLimitedLog(self.get_logger())

        model_dir = resolve_model_dir(config.model_dir, log=self.get_logger().info)  # exports it on first use
        config = dataclasses.replace(config, model_dir=model_dir)
        self.get_logger().info(f"loading model {config.model_dir} (encoder {config.encoder})")
        self.recognizer = Recognizer(config)
        # Decoding options are checked against the loaded model too (a language an English-only model lacks).
        decoding.forced_prefix(self.recognizer.info)
        binder.groups["decoding"].check = lambda options: options.forced_prefix(self.recognizer.info)
        binder.on_change(self._on_options)
        if self.recognizer.fallback_reason:
            self.get_logger().warning(f"running on the CPU: {self.recognizer.fallback_reason}")
        self.model_name = f"{self.recognizer.info.name} ({config.model_dir})"
        self.transcriber = UtteranceTranscriber(self.recognizer, decoding, streaming)

        self.utterance_starts: dict[int, int] = {}
        self.malformed = 0
        self.last_error_count = 0
        self.create_subscription(AudioDataStamped, topics.SPEECH, self._on_speech, topics.SPEECH_QOS)
        self.events_pub = self.create_publisher(String, topics.TRANSCRIPT_EVENTS, topics.RESULTS_QOS)
        self.diagnostics = diagnostics.DiagnosticsPublisher(self, self._status)
        self.worker.start()
        # Last: whoever waits for this line (a launch file, the tests) may stop the node as soon as it appears.
        self.get_logger().info(
            f"ready: encoder {self.recognizer.encoder_backend}, decoder {self.recognizer.decoder_backend}, "
            f"{resident_mb():.0f} MB resident"
        )

    def _on_options(self, key: str, options) -> None:
        if key == "decoding":
            self.transcriber.update_options(decoding=options)
        elif key == "streaming":
            self.transcriber.update_options(streaming=options)

    def _on_speech(self, message: AudioDataStamped) -> None:
        try:
            event = from_message(message, self.utterance_starts)
        except ValueError as error:
            self.malformed += 1
            self.log.warn("malformed", str(error))
            return
        self.transcriber.submit(event.utterance_id, event.event)
        with self.worker.lock:
            self.worker.wake()

    def _work(self) -> None:
        for event in self.transcriber.process_pending():
            self.events_pub.publish(to_event_message(transcript_record(event)))

    def _status(self):
        stats = self.transcriber.stats()
        values = {
            diagnostics.ENCODER_BACKEND: self.recognizer.encoder_backend,
            diagnostics.DECODER_BACKEND: self.recognizer.decoder_backend,
            diagnostics.FALLBACK_REASON: self.recognizer.fallback_reason or "",
            diagnostics.MODEL: self.model_name,
            diagnostics.UTTERANCES: stats.utterances,
            diagnostics.PARTIALS: stats.partials,
            diagnostics.PARTIALS_SKIPPED: stats.partials_skipped,
            diagnostics.NO_SPEECH_REJECTIONS: stats.no_speech_rejections,
            diagnostics.INFERENCE_ERRORS: stats.errors,
            diagnostics.REAL_TIME_FACTOR: stats.real_time_factor,
            # From the arrival of the end of speech to the final, as a listener waits (StreamingStats).
            diagnostics.LATENCY_P50_MS: -1.0 if stats.speech_end_latency_p50_ms is None
            else stats.speech_end_latency_p50_ms,
            diagnostics.LATENCY_P95_MS: -1.0 if stats.speech_end_latency_p95_ms is None
            else stats.speech_end_latency_p95_ms,
            diagnostics.QUEUE_DEPTH_S: stats.queue_depth_s,
            diagnostics.DROPPED_AUDIO_S: stats.audio_dropped_s,
            diagnostics.AUDIO_TRANSCRIBED_S: stats.speech_s_transcribed,
            diagnostics.RESIDENT_MEMORY_MB: resident_mb(),
            diagnostics.MALFORMED_SPEECH: self.malformed,
            diagnostics.GUARDS_FIRED: ", ".join(f"{guard}: {stats.guards_fired.get(guard, 0)}" for guard in GUARDS),
            diagnostics.LOOP_RECOVERIES: stats.loop_recoveries,
            diagnostics.UNRECOVERED_LOOPS: stats.unrecovered_loops,
        }
        new_errors = stats.errors - self.last_error_count
        self.last_error_count = stats.errors
        if new_errors:
            return diagnostics.ERROR, f"{new_errors} inference error(s) in the last period", values
        if stats.queue_depth_s > BEHIND_FRACTION * self.transcriber.options.max_queue_s:
            return diagnostics.WARN, f"falling behind: {stats.queue_depth_s:.1f} s of audio waiting", values
        if stats.audio_dropped_s > 0:
            return diagnostics.WARN, f"fell behind: {stats.audio_dropped_s:.1f} s of audio dropped", values
        if self.recognizer.fallback_reason:
            return diagnostics.WARN, f"CPU fallback: {self.recognizer.fallback_reason}", values
        return diagnostics.OK, f"{self.recognizer.encoder_backend} encoder, {stats.utterances} utterances", values

    def destroy_node(self):
        self.worker.stop(timeout_s=10)
        if self.recognizer is not None:
            self.recognizer.close()
        return super().destroy_node()


def main(args=None) -> int:
    from hailo_whisper_ros.ros.runner import run_nodes

    return run_nodes(args, [RecognizerNode])
