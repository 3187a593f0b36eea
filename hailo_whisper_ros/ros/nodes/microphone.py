"""`microphone`: a sound device (PortAudio, through sounddevice) published as audio_common_msgs/AudioData on `audio`
and AudioInfo on `audio_info`, at the device's own rate and channels unless the parameters ask for others.

A shell over core/microphone.py: the PortAudio callback only queues what it captured; the worker publishes it. A
device that goes away (unplugged, the audio server restarted) is a WARN on /diagnostics and in the log, and is
opened again with backoff until it is back; one that does not exist at start ends the node with the list of the
devices there are (exit 2).
"""

from __future__ import annotations

from rclpy.node import Node

from hailo_whisper_ros.core.microphone import CaptureCounts, MicrophoneCapture, MicrophoneOptions
from hailo_whisper_ros.ros import diagnostics
from hailo_whisper_ros.ros.audio_publisher import AudioPublisher
from hailo_whisper_ros.ros.diagnostics import RateLimitedLog
from hailo_whisper_ros.ros.params import ParameterBinder
from hailo_whisper_ros.ros.worker import NodeWorker

# The node's parameters: every declared option of these (ROS names from core/options.py), by binder key.
PARAMETER_GROUPS = {"microphone": MicrophoneOptions}

# Values of the microphone's status on /diagnostics.
DEVICE = "device"
SAMPLE_RATE = "sample rate (Hz)"
CHANNELS = "channels"
SAMPLE_FORMAT = "sample format"
CAPTURED_S = "audio captured (s)"
OVERRUNS = "overruns"  # blocks PortAudio flagged with an input overflow
GAPS = "gaps"  # audio lost before PortAudio had it: steps in the device's timeline
GAP_S = "gaps (s)"
DROPPED_CHUNKS = "dropped chunks"  # the oldest, from a full queue (max_queue_s)
DROPPED_S = "dropped (s)"
DEVICE_LOSSES = "device losses"
WITHOUT_DEVICE_S = "time without device (s)"
REOPEN_ATTEMPTS = "failed reopen attempts"
RECONNECTS = "reconnects"
AUDIO_SUBSCRIBERS = "audio subscribers"
# The counts that mean audio was lost; a status after any of them grew is a WARN.
LOSS_COUNTS = {OVERRUNS: "overruns", GAPS: "gaps", DROPPED_CHUNKS: "dropped_chunks", DEVICE_LOSSES: "losses"}


class MicrophoneNode(Node):
    def __init__(self, **kwargs):
        super().__init__("microphone", **kwargs)
        # Made first: rclpy destroys a node whose constructor raised too (no such device), and destroy_node stops it.
        self.worker = NodeWorker("microphone_publisher", self._work, idle_wait_s=0.5,
                                 has_work=lambda: self.capture.has_pending)
        binder = ParameterBinder(self)
        (options,) = binder.declare(PARAMETER_GROUPS)
        binder.on_change(self._on_options)
        self.log = RateLimitedLog(self.get_logger())
        self.capture = MicrophoneCapture(options, report=self._report, wake=self.worker.wake)
        self.publisher = AudioPublisher(self, options.sample_format)
        self.reported = CaptureCounts()  # the counts of the last status, to tell new losses
        self.capture.start()
        capture = self.capture.format
        self.get_logger().info(f"capturing from {capture.device} at {capture.sample_rate} Hz, {capture.channels} "
                               f"channel(s), {capture.sample_format}, {options.chunk_ms} ms per message")
        self.diagnostics = diagnostics.DiagnosticsPublisher(self, self._status)
        self.worker.start()

    def _on_options(self, key: str, options: MicrophoneOptions) -> None:
        self.capture.options = options

    def _report(self, severity: str, kind: str, text: str) -> None:
        {"info": self.log.info, "warn": self.log.warn, "error": self.log.error}[severity](kind, text)

    # Worker side.
    def _work(self) -> None:
        for chunk in self.capture.take():
            self.publisher.declare_format(chunk.format.sample_rate, chunk.format.channels)
            self.publisher.publish(chunk.data)

    def _status(self):
        status = self.capture.status()
        counts, capture = status.counts, status.format
        values = {
            DEVICE: capture.device, SAMPLE_RATE: capture.sample_rate, CHANNELS: capture.channels,
            SAMPLE_FORMAT: capture.sample_format, CAPTURED_S: counts.captured_s, OVERRUNS: counts.overruns,
            GAPS: counts.gaps, GAP_S: counts.gap_s, DROPPED_CHUNKS: counts.dropped_chunks,
            DROPPED_S: counts.dropped_s, DEVICE_LOSSES: counts.losses, WITHOUT_DEVICE_S: counts.lost_s,
            REOPEN_ATTEMPTS: counts.reopen_attempts, RECONNECTS: counts.reconnects,
            AUDIO_SUBSCRIBERS: self.publisher.audio_pub.get_subscription_count(),
        }
        new_losses = ", ".join(f"{getattr(counts, name) - getattr(self.reported, name)} {label}"
                               for label, name in LOSS_COUNTS.items()
                               if getattr(counts, name) > getattr(self.reported, name))
        self.reported = counts
        if status.lost_for_s is not None:
            return diagnostics.WARN, f"device lost {status.lost_for_s:.1f} s ago: opening it again", values
        if new_losses:
            return diagnostics.WARN, f"audio lost since the last status: {new_losses}", values
        return diagnostics.OK, f"capturing from {capture.device}", values

    def destroy_node(self):
        self.worker.stop(timeout_s=5)
        capture = getattr(self, "capture", None)  # None when a parameter was refused before it was made
        if capture is not None:
            capture.stop()
        return super().destroy_node()


def main(args=None) -> int:
    from hailo_whisper_ros.ros.runner import run_nodes

    return run_nodes(args, [MicrophoneNode])
