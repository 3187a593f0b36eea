"""Each node's status on /diagnostics (diagnostic_msgs/DiagnosticArray) about once a second, the names of the
values it reports (the contract that monitors, the soak command and the tests read), and logging that says each
kind of problem once, then at most once a minute with a count.

A node supplies a function returning (level, message, values); this module turns it into a DiagnosticStatus named
after the node, like diagnostic_updater does for C++ and Python nodes on a full ROS install.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from hailo_whisper_ros.core.decoding import GUARDS
from hailo_whisper_ros.core.intake import IntakeStatus
from hailo_whisper_ros.core.transcripts import StreamingStats
from hailo_whisper_ros.ros.topics import DIAGNOSTICS

OK = DiagnosticStatus.OK
WARN = DiagnosticStatus.WARN
ERROR = DiagnosticStatus.ERROR
REPEAT_AFTER_S = 60.0  # a kind of problem logged again at most this often
BEHIND_FRACTION = 0.5  # the recognizer WARNs when its queue holds more than this share of queue.max_audio_s

# Values of the audio_subscriber's status.
LISTENING = "listening"
ROBOT_SPEAKING = "robot speaking"  # the robot_speaking gate is closed
GATED_AUDIO_S = "gated audio (s)"  # not recognized: while the robot spoke, and gate.tail_ms after
GATE_CLOSINGS = "gate closings"  # times robot_speaking turned true
AUDIO_INPUT = "audio input"
AUDIO_MESSAGES = "audio messages"
AUDIO_RECEIVED_S = "audio received (s)"
AUDIO_FORMAT_CHANGES = "audio format changes"
AUDIO_INFO_MESSAGES = "audio info messages"  # AudioInfo messages handled, valid or not
AUDIO_PUBLISHERS = "audio publishers"  # publishers the audio subscription has matched, as seen from its side
UTTERANCES_SEGMENTED = "utterances segmented"
INPUT_QUEUE_S = "input queue (s)"
DROPPED_AUDIO_S = "dropped audio (s)"  # the recognizer reports its own drops under the same name
# Audio lost on the way in, by cause: the oldest dropped from a full input queue (queue.max_input_s); lost by DDS
# (the subscription's message_lost event, seconds at the latest message's duration); missing between audio_stamped
# header stamps (a stamp later than the previous one plus its audio). And speech lost on the way out: segmented while
# nothing subscribed to `speech` (a recognizer process still loading its model: DDS keeps nothing for a late reader).
AUDIO_MESSAGES_RECEIVED = "audio messages received"  # by the subscription callback; "audio messages" are converted
DROPPED_AUDIO_MESSAGES = "dropped audio messages"
LOST_IN_TRANSPORT_S = "lost in transport (s)"
LOST_IN_TRANSPORT_MESSAGES = "lost in transport (messages)"
MISSING_BY_STAMPS_S = "missing by stamps (s)"
MISSING_BY_STAMPS_MESSAGES = "missing by stamps (messages)"
TIMESTAMPS_BACKWARDS = "timestamps going backwards"
UNHEARD_SPEECH_S = "speech with no recognizer subscribed (s)"
UNHEARD_SPEECH_MESSAGES = "speech with no recognizer subscribed (messages)"
SECONDS_SINCE_AUDIO = "seconds since last audio"
REJECTED_PREFIX = "rejected "  # + the front end's kind of problem, e.g. "rejected partial_frame"

# Values of the recognizer's status.
LIFECYCLE_STATE = "lifecycle state"  # unconfigured, inactive, active...
IGNORED_INACTIVE = "speech ignored while inactive"  # speech messages
ENCODER_BACKEND = "encoder backend"
DECODER_BACKEND = "decoder backend"
INT8_KERNELS = "int8 kernels"  # MLAS's u8 x u8 kernels on this CPU (core/int8_kernels)
FALLBACK_REASON = "fallback reason"
MODEL = "model"
LAST_LANGUAGE = "last language"  # of the last final: "de (p 0.97)" when detected, "en (given)" otherwise
UTTERANCES = "utterances"  # the transcript_publisher counts its finals under the same name
PARTIALS = "partials"
PARTIALS_SKIPPED = "partials skipped"
PARTIALS_DEFERRED = "partials deferred by budget"  # due, but waited for streaming.partial_budget
PARTIAL_SHARE = "partial compute share"  # partials' decode time per second of the latest 30 s of audio
PARTIAL_FRESHNESS_P95_MS = "partial freshness p95 (ms)"  # arrival of a partial's last sample -> the partial
NO_SPEECH_REJECTIONS = "no-speech rejections"
INFERENCE_ERRORS = "inference errors"
REAL_TIME_FACTOR = "real-time factor"
LATENCY_P50_MS = "latency p50 (ms)"
LATENCY_P95_MS = "latency p95 (ms)"
QUEUE_DEPTH_S = "queue depth (s)"
# Whether the worker is transcribing now: audio it took is off the queue, but its results are not published yet.
TRANSCRIBING = "transcribing"
AUDIO_TRANSCRIBED_S = "audio transcribed (s)"
RESIDENT_MEMORY_MB = "resident memory (MB)"
MALFORMED_SPEECH = "malformed speech messages"
GUARDS_FIRED = "loop guards fired"  # "<guard>: <count>" per decoding.GUARDS name, comma-separated
LOOP_RECOVERIES = "loops recovered"
UNRECOVERED_LOOPS = "loops unrecovered"
BACKGROUND_REMOVED_S = "background removed (s)"  # audio after the talker left out of finals (background_trim_db)
BACKGROUND_REMOVALS = "finals with background removed"

# Values of the transcript_publisher's status.
EMPTY_FINALS = "empty finals"
COMMANDS = "commands"  # finals that began with a wake phrase (gate.wake_phrases), published on `command`
WITHOUT_WAKE_PHRASE = "finals without wake phrase"  # finals with text that began with none, while the gate is on

StatusFunction = Callable[[], tuple[bytes, str, dict[str, Any]]]


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def status_values(status: DiagnosticStatus) -> dict[str, str]:
    """A received status's values by name (the names above)."""
    return {kv.key: kv.value for kv in status.values}


def level_of(status: DiagnosticStatus) -> int:
    """The level as an int: rclpy gives the byte field as bytes."""
    return ord(status.level) if isinstance(status.level, bytes) else int(status.level)


def intake_values(status: IntakeStatus) -> dict:
    """The intake's counts under their /diagnostics names."""
    counts = status.counts
    values = {
        LISTENING: status.listening,
        ROBOT_SPEAKING: status.robot_speaking,
        GATED_AUDIO_S: counts.gated_s,
        GATE_CLOSINGS: counts.gate_closings,
        AUDIO_INPUT: status.audio_format,
        AUDIO_MESSAGES: status.messages_converted,
        AUDIO_RECEIVED_S: status.received_s,
        AUDIO_FORMAT_CHANGES: status.format_changes,
        AUDIO_INFO_MESSAGES: counts.format_declarations,
        UTTERANCES_SEGMENTED: counts.utterances,
        INPUT_QUEUE_S: status.queued_s,
        AUDIO_MESSAGES_RECEIVED: counts.messages_received,
        DROPPED_AUDIO_S: counts.dropped_s,
        DROPPED_AUDIO_MESSAGES: counts.dropped_messages,
        LOST_IN_TRANSPORT_S: counts.lost_in_transport_s,
        LOST_IN_TRANSPORT_MESSAGES: counts.lost_in_transport_messages,
        MISSING_BY_STAMPS_S: counts.missing_by_stamps_s,
        MISSING_BY_STAMPS_MESSAGES: counts.missing_by_stamps_messages,
        TIMESTAMPS_BACKWARDS: counts.stamps_backwards,
        SECONDS_SINCE_AUDIO: -1.0 if status.seconds_since_audio is None else status.seconds_since_audio,
    }
    values.update({REJECTED_PREFIX + kind: count for kind, count in status.rejected.items()})
    return values


def transcriber_values(stats: StreamingStats) -> dict:
    """The transcriber's counts under their /diagnostics names."""
    return {
        UTTERANCES: stats.utterances,
        PARTIALS: stats.partials,
        PARTIALS_SKIPPED: stats.partials_skipped,
        PARTIALS_DEFERRED: stats.partials_deferred,
        PARTIAL_SHARE: stats.partial_share,
        PARTIAL_FRESHNESS_P95_MS: -1.0 if stats.partial_freshness_p95_ms is None else stats.partial_freshness_p95_ms,
        NO_SPEECH_REJECTIONS: stats.no_speech_rejections,
        INFERENCE_ERRORS: stats.errors,
        REAL_TIME_FACTOR: stats.real_time_factor,
        # From the arrival of the end of speech to the final, as a listener waits (StreamingStats).
        LATENCY_P50_MS: -1.0 if stats.speech_end_latency_p50_ms is None else stats.speech_end_latency_p50_ms,
        LATENCY_P95_MS: -1.0 if stats.speech_end_latency_p95_ms is None else stats.speech_end_latency_p95_ms,
        QUEUE_DEPTH_S: stats.queue_depth_s,
        DROPPED_AUDIO_S: stats.audio_dropped_s,
        AUDIO_TRANSCRIBED_S: stats.speech_s_transcribed,
        GUARDS_FIRED: ", ".join(f"{guard}: {stats.guards_fired.get(guard, 0)}" for guard in GUARDS),
        LOOP_RECOVERIES: stats.loop_recoveries,
        UNRECOVERED_LOOPS: stats.unrecovered_loops,
        BACKGROUND_REMOVED_S: stats.background_removed_s,
        BACKGROUND_REMOVALS: stats.background_removals,
    }


def language_label(language: str, probability: float) -> str:
    """LAST_LANGUAGE's value: "de (p 0.97)" when detected, "en (given)" otherwise."""
    return f"{language} (given)" if math.isnan(probability) else f"{language} (p {probability:.2f})"



def recognizer_status(state: str, active: bool, recognizer, stats: StreamingStats, max_queue_s: float,
                      new_errors: int, node_values: dict) -> tuple[int, str, dict]:
    """The recognizer node's status: its own values, the backends', the transcriber's; the level by the worst of
    inference errors since the last status, a queue more than BEHIND_FRACTION full, dropped audio, a CPU fallback."""
    values = {
        **node_values,
        ENCODER_BACKEND: recognizer.encoder_backend,
        DECODER_BACKEND: recognizer.decoder_backend,
        INT8_KERNELS: recognizer.int8_kernels,
        FALLBACK_REASON: recognizer.fallback_reason or "",
        **transcriber_values(stats),
    }
    if new_errors:
        return ERROR, f"{new_errors} inference error(s) in the last period", values
    if stats.queue_depth_s > BEHIND_FRACTION * max_queue_s:
        return WARN, f"falling behind: {stats.queue_depth_s:.1f} s of audio waiting", values
    if stats.audio_dropped_s > 0:
        return WARN, f"fell behind: {stats.audio_dropped_s:.1f} s of audio dropped", values
    if recognizer.fallback_reason:
        return WARN, f"CPU fallback: {recognizer.fallback_reason}", values
    if not active:
        return OK, f"{state}: speech is ignored", values
    return OK, f"{recognizer.encoder_backend} encoder, {stats.utterances} utterances", values


class DiagnosticsPublisher:
    """Publishes one DiagnosticStatus for its node on /diagnostics every `period_s`."""

    def __init__(self, node: Node, status: StatusFunction, period_s: float = 1.0):
        self.node = node
        self.status = status
        self.publisher = node.create_publisher(DiagnosticArray, DIAGNOSTICS, 10)
        self.timer = node.create_timer(period_s, self.publish)

    def publish(self) -> None:
        level, message, values = self.status()
        status = DiagnosticStatus(
            level=level,
            name=f"{self.node.get_fully_qualified_name().lstrip('/')}",
            message=message,
            hardware_id="hailo_whisper_ros",
            values=[KeyValue(key=key, value=format_value(value)) for key, value in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.node.get_clock().now().to_msg()
        self.publisher.publish(array)


class RateLimitedLog:
    """Logs each kind of problem once, then at most once every ``repeat_after_s`` with the count held back."""

    def __init__(self, logger, repeat_after_s: float = REPEAT_AFTER_S):
        self.logger = logger
        self.repeat_after_s = repeat_after_s
        self.last_logged: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def _due(self, kind: str, message: str) -> str | None:
        """The line to log now for this kind (with the count of those held back since), or None to hold it back."""
        now = time.monotonic()
        last = self.last_logged.get(kind)
        if last is not None and now - last < self.repeat_after_s:
            self.suppressed[kind] = self.suppressed.get(kind, 0) + 1
            return None
        repeats = self.suppressed.pop(kind, 0)
        self.last_logged[kind] = now
        return message + (f" (and {repeats} more like it since)" if repeats else "")

    # rclpy fixes the severity of each line that calls its logger (a ValueError on any other severity from that
    # line), so each severity is logged from a line of its own.
    def info(self, kind: str, message: str) -> None:
        if (line := self._due(kind, message)) is not None:
            self.logger.info(line)

    def warn(self, kind: str, message: str) -> None:
        if (line := self._due(kind, message)) is not None:
            self.logger.warning(line)

    def error(self, kind: str, message: str) -> None:
        if (line := self._due(kind, message)) is not None:
            self.logger.error(line)
