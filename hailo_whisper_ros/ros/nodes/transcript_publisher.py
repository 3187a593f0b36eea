"""`transcript_publisher`: the recognizer's results -> `transcript` and `transcript/partial`, with latency figures.

The recognizer publishes every result with its details as JSON on `transcript/events` (std_msgs/String):
``{"kind": "partial"|"final", "utterance_id", "text", "stable_text", "start_s", "end_s", "latency_ms", ...}``.
This node turns them into the plain-text topics a robot's dialogue code subscribes to, one `transcript` message
per final utterance (reliable), and reports end-of-speech-to-final-transcript latency on /diagnostics.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from hailo_whisper_ros.core import HailoWhisperError
from hailo_whisper_ros.ros import diagnostics
from hailo_whisper_ros.ros.parameters import ParameterBinder, ParameterSpec

RESULTS_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATENCY_WINDOW = 200  # finals whose latency the percentiles cover


@dataclass(frozen=True)
class TranscriptOptions:
    publish_empty: bool = False
    """Publish a final whose text is empty (an utterance judged to hold no speech) as an empty message."""

    partial_stable_only: bool = False
    """Publish only the stable part of partial results (the words two consecutive partials agree on)."""

    def __post_init__(self):
        for name in ("publish_empty", "partial_stable_only"):
            if not isinstance(getattr(self, name), bool):
                raise HailoWhisperError(f"{name} must be true or false")


TRANSCRIPT_SPECS = [
    ParameterSpec("transcript.publish_empty", "publish_empty"),
    ParameterSpec("transcript.partial_stable_only", "partial_stable_only"),
]


class TranscriptPublisherNode(Node):
    def __init__(self, **kwargs):
        super().__init__("transcript_publisher", **kwargs)
        binder = ParameterBinder(self)
        self.options = binder.add("transcript", TranscriptOptions(), TRANSCRIPT_SPECS)
        binder.on_change(lambda key, options: setattr(self, "options", options))
        self.lock = threading.Lock()
        self.finals = 0
        self.partials = 0
        self.empty_finals = 0
        self.malformed = 0
        self.latencies_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.last_result_time: float | None = None
        self.transcript_pub = self.create_publisher(String, "transcript", RESULTS_QOS)
        self.partial_pub = self.create_publisher(String, "transcript/partial", 10)
        self.create_subscription(String, "transcript/events", self._on_event, RESULTS_QOS)
        self.diagnostics = diagnostics.DiagnosticsPublisher(self, self._status)

    def _on_event(self, message: String) -> None:
        try:
            event = json.loads(message.data)
            kind, text = event["kind"], str(event["text"])
        except (ValueError, KeyError, TypeError):
            with self.lock:
                self.malformed += 1
            return
        with self.lock:
            self.last_result_time = time.monotonic()
            if kind == "final":
                self.finals += 1
                self.latencies_ms.append(float(event.get("latency_ms", 0.0)))
                if not text:
                    self.empty_finals += 1
            elif kind == "partial":
                self.partials += 1
        if kind == "final" and (text or self.options.publish_empty):
            self.transcript_pub.publish(String(data=text))
        elif kind == "partial":
            shown = str(event.get("stable_text", "")) if self.options.partial_stable_only else text
            self.partial_pub.publish(String(data=shown))

    def _status(self):
        with self.lock:
            latencies = np.array(self.latencies_ms) if self.latencies_ms else None
            values = {
                "utterances": self.finals,
                "partials": self.partials,
                "empty finals": self.empty_finals,
                "malformed events": self.malformed,
                "latency p50 (ms)": -1.0 if latencies is None else float(np.percentile(latencies, 50)),
                "latency p95 (ms)": -1.0 if latencies is None else float(np.percentile(latencies, 95)),
            }
        return diagnostics.OK, f"{values['utterances']} utterances transcribed", values


def main(args=None) -> int:
    from hailo_whisper_ros.ros.runner import run_nodes

    return run_nodes(args, [TranscriptPublisherNode])
