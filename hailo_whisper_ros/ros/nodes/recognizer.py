"""`recognizer`: utterances on `speech` -> partial and final results on `transcript/events`.

Holds the encoder (Hailo NPU or ONNX on the CPU, with the core's fallback) and the CPU KV-cache decoder. The
subscription callback only hands the audio to the core's queue; a worker thread transcribes. When it falls
behind, the core drops the oldest audio (``queue.max_audio_s``) and counts it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from audio_common_msgs.msg import AudioDataStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from hailo_whisper_ros.core import HailoWhisperError
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.model_store import resolve_model_dir
from hailo_whisper_ros.core.recognizer import Recognizer, RecognizerConfig
from hailo_whisper_ros.core.streaming import StreamingOptions, TranscriptEvent, UtteranceTranscriber
from hailo_whisper_ros.ros import diagnostics
from hailo_whisper_ros.ros.audio_subscriber import SPEECH_QOS
from hailo_whisper_ros.ros.parameters import ParameterBinder, ParameterSpec
from hailo_whisper_ros.ros.rate_limited_log import RateLimitedLog
from hailo_whisper_ros.ros.speech_topic import from_message

RESULTS_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
SAMPLE_RATE = 16000
BEHIND_FRACTION = 0.5  # WARN when the queue holds more than this share of queue.max_audio_s


@dataclass(frozen=True)
class ModelParameters:
    """The model.* parameters: read at start-up only, since changing any of them means loading the model again."""

    dir: str = ""
    """Exported model directory (see `hailo-whisper export`); empty: the default tiny.en model."""

    encoder: str = "dynamic"
    """Encoder: 'hef' (Hailo NPU, falling back to the 10 s ONNX encoder on the CPU), 'dynamic' (ONNX on the CPU,
    the utterance's length and at least 6 s), '10s' or '30s'."""

    encoder_file: str = ""
    """An encoder file overriding the model directory's: the compiled .hef for 'hef', else an encoder ONNX."""

    decoder_dir: str = ""
    """Folder with decoder_model.onnx and decoder_with_past_model.onnx; empty: the model's INT8 decoders."""

    threads: int = 2
    """ONNX Runtime intra-op threads per session."""

    fail_on_fallback: bool = False
    """Exit with an error instead of falling back to the CPU when the configured HEF cannot run."""

    hailo_multi_process_service: bool = False
    """Reach the NPU through hailort_service, so other processes (vision models) can share it."""

    hailo_group_id: str = ""
    """VDevice group shared with the other processes' models (e.g. SHARED); empty: HailoRT's default."""

    def recognizer_config(self) -> RecognizerConfig:
        from hailo_whisper_ros.core.hailo import HailoDeviceOptions

        return RecognizerConfig(
            model_dir=resolve_model_dir(self.dir),
            encoder=self.encoder,
            encoder_file=Path(self.encoder_file) if self.encoder_file else None,
            decoder_dir=Path(self.decoder_dir) if self.decoder_dir else None,
            threads=self.threads,
            fail_on_fallback=self.fail_on_fallback,
            hailo_device=HailoDeviceOptions(
                multi_process_service=self.hailo_multi_process_service, group_id=self.hailo_group_id or None
            ),
        )


MODEL_SPECS = [
    ParameterSpec(f"model.{name}", name, read_only=True, range=value_range)
    for name, value_range in [
        ("dir", None),
        ("encoder", None),
        ("encoder_file", None),
        ("decoder_dir", None),
        ("threads", (1, 16)),
        ("fail_on_fallback", None),
        ("hailo_multi_process_service", None),
        ("hailo_group_id", None),
    ]
]
DECODING_SPECS = [
    ParameterSpec("decoding.language", "language", none_as=""),
    ParameterSpec("decoding.task", "task"),
    ParameterSpec("decoding.pad_encoder_output_to", "pad_encoder_output_to", range=(500, 1500)),
    ParameterSpec("decoding.repetition_penalty", "repetition_penalty", range=(1.0, 3.0)),
    ParameterSpec("decoding.repetition_window", "repetition_window", range=(1, 448)),
    ParameterSpec("decoding.eos_boost_threshold", "eos_boost_threshold", range=(0.0, 50.0)),
    ParameterSpec("decoding.max_new_tokens", "max_new_tokens", range=(1, 448)),
    ParameterSpec("decoding.suppress_blank", "suppress_blank"),
    ParameterSpec("decoding.no_speech_threshold", "no_speech_threshold", range=(0.0, 1.0)),
    ParameterSpec("decoding.logprob_threshold", "logprob_threshold", range=(-20.0, 0.0)),
]
STREAMING_SPECS = [
    ParameterSpec("streaming.partial_interval_ms", "partial_interval_ms", range=(0, 10000)),
    ParameterSpec("queue.max_audio_s", "max_queue_s", range=(1.0, 600.0)),
]


def event_json(event: TranscriptEvent) -> str:
    result = event.result
    return json.dumps(
        {
            "kind": event.kind,
            "utterance_id": event.utterance_id,
            "text": event.text,
            "stable_text": event.stable_text,
            "start_s": event.start_sample / SAMPLE_RATE,
            "end_s": event.end_sample / SAMPLE_RATE,
            "latency_ms": round(event.latency_ms, 3),
            "encoder_backend": result.encoder_backend,
            "avg_logprob": round(result.avg_logprob, 4),
            "no_speech_prob": round(result.no_speech_prob, 4),
            "encoder_ms": round(result.timings.encoder_ms, 3),
            "decoder_ms": round(result.timings.decoder_ms, 3),
        }
    )


class RecognizerNode(Node):
    def __init__(self, **kwargs):
        super().__init__("recognizer", **kwargs)
        binder = ParameterBinder(self)
        model = binder.add("model", ModelParameters(), MODEL_SPECS)
        decoding = binder.add("decoding", DecodingOptions(), DECODING_SPECS)
        streaming = binder.add("streaming", StreamingOptions(), STREAMING_SPECS)
        self.log = RateLimitedLog(self.get_logger())

        config = model.recognizer_config()
        self.get_logger().info(f"loading model {config.model_dir} (encoder {config.encoder})")
        self.recognizer = Recognizer(config)
        # Decoding options are checked against the loaded model too (a language an English-only model lacks).
        decoding.forced_prefix(self.recognizer.info)
        binder.groups["decoding"].check = lambda options: options.forced_prefix(self.recognizer.info)
        binder.on_change(self._on_options)
        if self.recognizer.fallback_reason:
            self.get_logger().warning(f"running on the CPU: {self.recognizer.fallback_reason}")
        self.get_logger().info(
            f"ready: encoder {self.recognizer.encoder_backend}, decoder {self.recognizer.decoder_backend}, "
            f"{self.recognizer.memory.after_warmup_mb:.0f} MB resident"
        )
        self.model_name = f"{self.recognizer.info.name} ({config.model_dir})"
        self.transcriber = UtteranceTranscriber(self.recognizer, decoding, streaming)

        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.utterance_starts: dict[int, int] = {}
        self.malformed = 0
        self.last_error_count = 0
        self.running = True
        self.create_subscription(AudioDataStamped, "speech", self._on_speech, SPEECH_QOS)
        self.events_pub = self.create_publisher(String, "transcript/events", RESULTS_QOS)
        self.diagnostics = diagnostics.DiagnosticsPublisher(self, self._status)
        self.worker = threading.Thread(target=self._work, name="recognizer", daemon=True)
        self.worker.start()

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
        with self.lock:
            self.wake.notify()

    def _work(self) -> None:
        while self.running:
            with self.lock:
                self.wake.wait(timeout=0.1)
            for event in self.transcriber.process_pending():
                self.events_pub.publish(String(data=event_json(event)))

    def _status(self):
        stats = self.transcriber.stats()
        values = {
            "encoder backend": self.recognizer.encoder_backend,
            "decoder backend": self.recognizer.decoder_backend,
            "fallback reason": self.recognizer.fallback_reason or "",
            "model": self.model_name,
            "utterances": stats.utterances,
            "partials": stats.partials,
            "partials skipped": stats.partials_skipped,
            "no-speech rejections": stats.no_speech_rejections,
            "inference errors": stats.errors,
            "real-time factor": stats.real_time_factor,
            "latency p50 (ms)": stats.final_latency_p50_ms if stats.final_latency_p50_ms is not None else -1.0,
            "latency p95 (ms)": stats.final_latency_p95_ms if stats.final_latency_p95_ms is not None else -1.0,
            "queue depth (s)": stats.queue_depth_s,
            "dropped audio (s)": stats.audio_dropped_s,
            "audio transcribed (s)": stats.speech_s_transcribed,
            "memory (MB)": self.recognizer.memory.after_warmup_mb,
            "malformed speech messages": self.malformed,
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
        self.running = False
        with self.lock:
            self.wake.notify()
        self.worker.join(timeout=10)
        self.recognizer.close()
        return super().destroy_node()


def main(args=None) -> int:
    from hailo_whisper_ros.ros.runner import run_nodes

    return run_nodes(args, [RecognizerNode])
