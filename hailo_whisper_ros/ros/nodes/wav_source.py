"""`wav_source`: publishes sound files as audio_common_msgs/AudioData (+ AudioInfo), for demos and tests.

The files are published as stored (their own sample rate and channel count), in the chosen PCM format, at real
time or at a multiple of it, with silence between files; a microphone driver does the same on a robot.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import rclpy
from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

# sample_format -> (soundfile dtype, little-endian numpy dtype)
PCM_FORMATS = {"S16LE": ("int16", "<i2"), "S32LE": ("int32", "<i4"), "F32LE": ("float32", "<f4")}


@dataclass
class SoundFile:
    path: str
    frames: np.ndarray  # [frames, channels] in the published dtype
    sample_rate: int


def read_sound_file(path: str, sample_format: str) -> SoundFile:
    import soundfile

    soundfile_dtype, wire_dtype = PCM_FORMATS[sample_format]
    try:
        frames, sample_rate = soundfile.read(path, dtype=soundfile_dtype, always_2d=True)
    except (OSError, RuntimeError, soundfile.LibsndfileError) as error:
        raise FileNotFoundError(f"cannot read sound file {path}: {error}") from error
    return SoundFile(path, np.ascontiguousarray(frames.astype(wire_dtype, copy=False)), int(sample_rate))


class WavSource(Node):
    def __init__(self, **kwargs):
        super().__init__("wav_source", **kwargs)
        self.declare_parameter(
            "files", [""], ParameterDescriptor(description="Sound files (wav, flac...) published one after another.")
        )
        self.declare_parameter(
            "sample_format",
            "S16LE",
            ParameterDescriptor(description=f"PCM format on the wire: one of {', '.join(PCM_FORMATS)}."),
        )
        self.declare_parameter(
            "chunk_ms",
            100,
            ParameterDescriptor(
                description="Audio per message [ms].", integer_range=[IntegerRange(from_value=5, to_value=2000, step=1)]
            ),
        )
        self.declare_parameter(
            "speed",
            1.0,
            ParameterDescriptor(
                description="Publishing pace as a multiple of real time (1.0 = real time).",
                floating_point_range=[FloatingPointRange(from_value=0.1, to_value=1000.0, step=0.0)],
            ),
        )
        self.declare_parameter(
            "gap_s",
            1.0,
            ParameterDescriptor(
                description="Silence published between files and after the last one [s].",
                floating_point_range=[FloatingPointRange(from_value=0.0, to_value=60.0, step=0.0)],
            ),
        )
        self.declare_parameter("loop", False, ParameterDescriptor(description="Start again after the last file."))
        self.declare_parameter(
            "stamped", False, ParameterDescriptor(description="Publish AudioDataStamped on audio_stamped as well.")
        )
        self.declare_parameter(
            "wait_for_subscribers",
            0,
            ParameterDescriptor(
                description="Hold back the first chunk until this many subscribers listen on `audio`.",
                integer_range=[IntegerRange(from_value=0, to_value=100, step=1)],
            ),
        )
        self.declare_parameter(
            "exit_when_done", False, ParameterDescriptor(description="Shut down after the last file (no loop).")
        )

        sample_format = self.get_parameter("sample_format").value
        if sample_format not in PCM_FORMATS:
            raise ValueError(f"sample_format must be one of {', '.join(PCM_FORMATS)}, not {sample_format!r}")
        paths = [p for p in self.get_parameter("files").value if p]
        if not paths:
            raise ValueError("parameter `files` names no sound file")
        self.sample_format = sample_format
        self.sounds = [read_sound_file(path, sample_format) for path in paths]
        self.chunk_ms = self.get_parameter("chunk_ms").value
        self.gap_s = self.get_parameter("gap_s").value
        self.loop = self.get_parameter("loop").value
        self.exit_when_done = self.get_parameter("exit_when_done").value
        self.wait_for_subscribers = self.get_parameter("wait_for_subscribers").value

        audio_qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        # AudioInfo is latched so that a subscriber starting late still learns the format.
        info_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.audio_pub = self.create_publisher(AudioData, "audio", audio_qos)
        self.stamped_pub = (
            self.create_publisher(AudioDataStamped, "audio_stamped", audio_qos)
            if self.get_parameter("stamped").value
            else None
        )
        self.info_pub = self.create_publisher(AudioInfo, "audio_info", info_qos)

        self.chunks = self._chunks()
        self.chunks_published = 0
        self.done = False
        period_s = self.chunk_ms / 1000.0 / self.get_parameter("speed").value
        self.timer = self.create_timer(period_s, self._publish_next)

    def _chunks(self):
        """Yields (AudioInfo or None, bytes) per message, forever when looping."""
        current_format = None
        while True:
            for sound in self.sounds:
                channels = sound.frames.shape[1]
                if current_format != (sound.sample_rate, channels):
                    current_format = (sound.sample_rate, channels)
                    yield self._audio_info(sound.sample_rate, channels), b""
                frames_per_chunk = max(1, sound.sample_rate * self.chunk_ms // 1000)
                gap = np.zeros((int(self.gap_s * sound.sample_rate), channels), sound.frames.dtype)
                for samples in (sound.frames, gap):
                    for start in range(0, len(samples), frames_per_chunk):
                        yield None, samples[start : start + frames_per_chunk].tobytes()
            if not self.loop:
                return

    def _audio_info(self, sample_rate: int, channels: int) -> AudioInfo:
        bits = np.dtype(PCM_FORMATS[self.sample_format][1]).itemsize * 8
        return AudioInfo(
            channels=channels,
            sample_rate=sample_rate,
            sample_format=self.sample_format,
            bitrate=sample_rate * channels * bits,
            coding_format="WAVE",
        )

    def _publish_next(self) -> None:
        if self.done:
            return
        if self.audio_pub.get_subscription_count() < self.wait_for_subscribers:
            return
        for info, payload in self.chunks:
            if info is not None:
                self.info_pub.publish(info)
                continue
            self.audio_pub.publish(AudioData(data=payload))
            if self.stamped_pub is not None:
                stamped = AudioDataStamped(audio=AudioData(data=payload))
                stamped.header.stamp = self.get_clock().now().to_msg()
                self.stamped_pub.publish(stamped)
            self.chunks_published += 1
            return
        self.done = True
        self.get_logger().info(f"published {self.chunks_published} chunks from {len(self.sounds)} file(s)")


def main(args=None) -> int:
    rclpy.init(args=args)
    try:
        node = WavSource()
    except (ValueError, FileNotFoundError) as error:
        print(f"wav_source: error: {error}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    try:
        while rclpy.ok() and not (node.done and node.exit_when_done):
            rclpy.spin_once(node, timeout_sec=0.1)
        # Reliable delivery of the last chunks before the publisher goes away.
        node.audio_pub.wait_for_all_acked(Duration(seconds=5))
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
