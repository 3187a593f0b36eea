"""`transcript_publisher`: the recognizer's results -> `transcript` and `transcript/partial`, with latency figures.

The recognizer publishes every result with its details on `transcript/events` (hailo_whisper_msgs/Transcript).
This node turns them into the plain-text topics a robot's dialogue code subscribes to, one `transcript` message
per final utterance (reliable), and reports end-of-speech-to-final-transcript latency on /diagnostics.

The wake-phrase gate (``gate.wake_phrases``, core/wake_phrase.py): a final that begins with one of the phrases is
also published on `command`, the phrase stripped; partials never are. Commands and finals without a phrase are
counted on /diagnostics.

The `listen` action (hailo_whisper_msgs/action/Listen, ros/listen.py): a goal waits for the next final that answers
it (with its wake phrase, if it gives one), with the partials as feedback, within its timeout.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from hailo_whisper_msgs.msg import Transcript
from rclpy.node import Node
from std_msgs.msg import String

from hailo_whisper_ros.core.options import Options, option
from hailo_whisper_ros.core.wake_phrase import WakePhraseMatcher, WakePhraseOptions
from hailo_whisper_ros.ros import diagnostics, topics
from hailo_whisper_ros.ros.listen import ListenServer
from hailo_whisper_ros.ros.params import ParameterBinder

LATENCY_WINDOW = 200  # finals whose latency the percentiles cover


@dataclass(frozen=True)
class TranscriptOptions(Options):
    PARAMETER_GROUP = "transcript"

    publish_empty: bool = option(
        False, "Publish a final whose text is empty (an utterance judged to hold no speech) as an empty message.")
    partial_stable_only: bool = option(
        False, "Publish only the stable part of partial results (the words two consecutive partials agree on).")


# The node's parameters: every declared option of these (ROS names from core/options.py), by binder key.
PARAMETER_GROUPS = {"transcript": TranscriptOptions, "gate": WakePhraseOptions}


class TranscriptPublisherNode(Node):
    # Until __init__ makes it: a stop signal during __init__ has the context destroy the node half made.
    listen: ListenServer | None = None

    def __init__(self, **kwargs):
        super().__init__("transcript_publisher", **kwargs)
        binder = ParameterBinder(self)
        self.options, wake_options = binder.declare(PARAMETER_GROUPS)
        self.wake_phrases = WakePhraseMatcher(wake_options)
        binder.on_change(self._on_options)
        self.lock = threading.Lock()
        self.finals = 0
        self.partials = 0
        self.empty_finals = 0
        self.commands = 0
        self.without_wake_phrase = 0  # finals with text while the gate is on that begin with none of its phrases
        self.latencies_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.last_result_time: float | None = None
        self.transcript_pub = self.create_publisher(String, topics.TRANSCRIPT, topics.RESULTS_QOS)
        self.partial_pub = self.create_publisher(String, topics.TRANSCRIPT_PARTIAL, topics.PARTIAL_QOS)
        self.command_pub = self.create_publisher(String, topics.COMMAND, topics.RESULTS_QOS)
        self.listen = ListenServer(self, lambda: self.wake_phrases.options)
        self.create_subscription(Transcript, topics.TRANSCRIPT_EVENTS, self._on_event, topics.RESULTS_QOS)
        self.diagnostics = diagnostics.DiagnosticsPublisher(self, self._status)

    def _on_options(self, key: str, options) -> None:
        if key == "gate":
            self.wake_phrases = WakePhraseMatcher(options)
        else:
            self.options = options

    def _on_event(self, message: Transcript) -> None:
        text = message.text
        wake_phrases = self.wake_phrases
        command = wake_phrases.match(text) if message.final and text else None
        with self.lock:
            self.last_result_time = time.monotonic()
            if message.final:
                self.finals += 1
                self.latencies_ms.append(message.latency_ms)
                if not text:
                    self.empty_finals += 1
                elif command is not None:
                    self.commands += 1
                elif wake_phrases.enabled:
                    self.without_wake_phrase += 1
            else:
                self.partials += 1
        if message.final and (text or self.options.publish_empty):
            self.transcript_pub.publish(String(data=text))
        if command is not None:
            self.command_pub.publish(String(data=command.command))
        elif not message.final:
            shown = message.stable_text if self.options.partial_stable_only else text
            self.partial_pub.publish(String(data=shown))
        self.listen.on_result(message)

    def _status(self):
        with self.lock:
            latencies = np.array(self.latencies_ms) if self.latencies_ms else None
            values = {
                diagnostics.UTTERANCES: self.finals,
                diagnostics.PARTIALS: self.partials,
                diagnostics.EMPTY_FINALS: self.empty_finals,
                diagnostics.COMMANDS: self.commands,
                diagnostics.WITHOUT_WAKE_PHRASE: self.without_wake_phrase,
                diagnostics.LATENCY_P50_MS: -1.0 if latencies is None else float(np.percentile(latencies, 50)),
                diagnostics.LATENCY_P95_MS: -1.0 if latencies is None else float(np.percentile(latencies, 95)),
            }
        return diagnostics.OK, f"{self.finals} utterances transcribed", values

    def destroy_node(self):
        # Twice when rclpy's context shut down first (it destroys the nodes it tracks): the server goes once.
        listen, self.listen = self.listen, None
        if listen is not None:
            listen.destroy()
        super().destroy_node()


def main(args=None) -> int:
    from hailo_whisper_ros.ros.runner import run_nodes

    return run_nodes(args, [TranscriptPublisherNode])
