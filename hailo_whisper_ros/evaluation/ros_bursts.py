"""Audio bursts over DDS (`hailo-whisper bursts`): speech published to a speech_recognition process as a 48 kHz
stereo S16LE microphone driver publishes it (20 ms AudioData chunks), at multiples of real time, from a reliable
publisher (as ros-drivers' audio_capture: reliable, depth 50) and from a best-effort one (SensorDataQoS, depth 5).
For each: the messages published and received, the audio lost by cause as the audio subscriber reports it on
/diagnostics, and the WER of the finals against the clips' references.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from hailo_whisper_ros.core.audio import resample
from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.evaluation.datasets import Clip
from hailo_whisper_ros.evaluation.long_recording import build_long_recording
from hailo_whisper_ros.evaluation.ros_session import AudioDriver, Listener, s16le
from hailo_whisper_ros.evaluation.scoring import word_errors
from hailo_whisper_ros.ros.diagnostics import (
    AUDIO_MESSAGES_RECEIVED,
    DROPPED_AUDIO_MESSAGES,
    DROPPED_AUDIO_S,
    LOST_IN_TRANSPORT_MESSAGES,
    LOST_IN_TRANSPORT_S,
    MISSING_BY_STAMPS_MESSAGES,
    MISSING_BY_STAMPS_S,
)

DRIVER_RATE = 48000  # Hz: what USB microphones and audio_capture commonly send
DRIVER_CHANNELS = 2
DRIVER_BYTES_PER_S = DRIVER_RATE * DRIVER_CHANNELS * 2  # S16LE
CHUNK_S = 0.02
PUBLISHER_QOS = {
    "reliable": QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE),
    "best_effort": qos_profile_sensor_data,
}
# The audio subscriber's losses by cause: (cause, seconds value, messages value).
LOSSES = (
    ("queue", DROPPED_AUDIO_S, DROPPED_AUDIO_MESSAGES),
    ("transport", LOST_IN_TRANSPORT_S, LOST_IN_TRANSPORT_MESSAGES),
    ("stamps", MISSING_BY_STAMPS_S, MISSING_BY_STAMPS_MESSAGES),
)
SETTLE_S = 3.0  # after the last message: no new result for this long and the queues empty
SETTLE_TIMEOUT_S = 180.0
STATUS_TIMEOUT_S = 5.0


def driver_payload(audio: np.ndarray) -> bytes:
    """16 kHz mono float audio as the driver sends it: 48 kHz, both channels the same, S16LE."""
    frames = resample(audio, SAMPLE_RATE, DRIVER_RATE)
    return s16le(np.repeat(frames[:, None], DRIVER_CHANNELS, axis=1).reshape(-1))


class BurstInput:
    """The clips' speech, one second of silence after each, as the driver's bytes, and the references."""

    def __init__(self, clips: Sequence[Clip]):
        speech = [clip for clip in clips if clip.reference.strip()]
        if not speech:
            raise HailoWhisperError("the burst measurement needs speech clips with reference transcripts")
        recording = build_long_recording(speech, gaps_s=(1.0,))
        self.payload = driver_payload(recording.audio)
        self.references = [clip.reference for clip in recording.clips]
        self.duration_s = len(recording.audio) / SAMPLE_RATE


@dataclass(frozen=True)
class BurstResult:
    publisher: str  # a key of PUBLISHER_QOS
    speed: float
    published: int  # audio messages
    received: int  # by the audio subscriber's callback
    lost_s: dict[str, float]  # by cause (LOSSES)
    lost_messages: dict[str, int]
    wer: float  # fraction, of the finals joined against the references joined
    publish_wall_s: float


def fresh_status(listener: Listener, node: str) -> dict[str, str]:
    """The values of a status of ``node`` published after now."""
    asked = time.monotonic()
    name = listener.status_name(node)
    if not listener.wait_for(lambda: listener.latest(name, asked) is not None, STATUS_TIMEOUT_S):
        raise HailoWhisperError(f"no status of {name} on /diagnostics within {STATUS_TIMEOUT_S:g} s")
    return listener.latest(name, asked).values


def measure_burst(listener: Listener, driver: AudioDriver, publisher: str, burst: BurstInput,
                  speed: float) -> BurstResult:
    """``burst`` published by ``driver`` (declared 48 kHz stereo) at ``speed``, read back once the nodes caught up."""
    before = fresh_status(listener, "audio_subscriber")
    finals_before, sent_before = len(listener.finals), driver.sent
    started = time.monotonic()
    driver.stream(burst.payload, DRIVER_BYTES_PER_S, speed=speed, chunk_s=CHUNK_S)
    ended = time.monotonic()
    if not listener.wait_until_caught_up(ended, SETTLE_S, SETTLE_TIMEOUT_S):
        raise HailoWhisperError(f"the nodes did not catch up within {SETTLE_TIMEOUT_S:g} s of the burst's end")
    after = fresh_status(listener, "audio_subscriber")

    def delta(key: str) -> float:
        return float(after.get(key, 0)) - float(before.get(key, 0))

    hypothesis = " ".join(listener.finals[finals_before:])
    return BurstResult(
        publisher=publisher,
        speed=speed,
        published=driver.sent - sent_before,
        received=int(delta(AUDIO_MESSAGES_RECEIVED)),
        lost_s={cause: delta(seconds) for cause, seconds, _ in LOSSES},
        lost_messages={cause: int(delta(messages)) for cause, _, messages in LOSSES},
        wer=word_errors([" ".join(burst.references)], [hypothesis]).wer,
        publish_wall_s=ended - started,
    )


def run_bursts(context, burst: BurstInput, speeds: Sequence[float], publishers: Sequence[str],
               show: Callable[[BurstResult], None]) -> list[BurstResult]:
    """Every speed for every publisher QoS kind, to the speech_recognition already running in ``context``'s
    environment; ``show`` sees each result as it is measured."""
    listener = Listener(context, node_name="hailo_whisper_bursts")
    results = []
    try:
        for publisher in publishers:
            driver = AudioDriver(context, node_name=f"hailo_whisper_bursts_{publisher}", qos=PUBLISHER_QOS[publisher])
            try:
                driver.wait_for_subscriber(listener)
                driver.declare(listener, DRIVER_RATE, DRIVER_CHANNELS)
                for speed in speeds:
                    results.append(measure_burst(listener, driver, publisher, burst, speed))
                    show(results[-1])
            finally:
                driver.close()
    finally:
        listener.close()
    return results


def format_result(result: BurstResult) -> str:
    lost = ", ".join(f"{cause} {result.lost_s[cause]:.2f} s/{result.lost_messages[cause]} msgs"
                     for cause, _, _ in LOSSES)
    return (f"{result.publisher:>11} {result.speed:5g}x  published {result.published:5d}  received "
            f"{result.received:5d}  lost: {lost}  WER {100 * result.wer:5.1f}%  ({result.publish_wall_s:.1f} s)")
