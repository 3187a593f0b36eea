"""`wav_source`: publishes sound files as audio_common_msgs/AudioData (+ AudioInfo), for demos and tests.

The files are published as stored (their own sample rate and channel count), in the chosen PCM format, at real
time or at a multiple of it, with silence between files; a microphone driver does the same on a robot. With
`exit_when_done` the process ends once the last file is played and delivered (ros/runner.py).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.task import Future

from hailo_whisper_ros.core.audio import PCM_FORMATS, pcm_dtype
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.options import Options, option
from hailo_whisper_ros.ros.audio_publisher import AudioPublisher
from hailo_whisper_ros.ros.params import ParameterBinder
from hailo_whisper_ros.ros.runner import run_nodes

# How long the node waits, once it has played the last file, for its subscribers to acknowledge the last chunks.
DELIVERY_TIMEOUT_S = 5.0


@dataclass
class SoundFile:
    path: str
    frames: np.ndarray  # [frames, channels] in the published dtype
    sample_rate: int


def read_sound_file(path: str, sample_format: str) -> SoundFile:
    import soundfile

    wire_dtype = pcm_dtype(sample_format)
    try:
        frames, sample_rate = soundfile.read(path, dtype=wire_dtype.name, always_2d=True)
    except (OSError, RuntimeError, soundfile.LibsndfileError) as error:
        raise HailoWhisperError(f"cannot read sound file {path}: {error}") from error
    return SoundFile(path, np.ascontiguousarray(frames.astype(wire_dtype, copy=False)), int(sample_rate))


@dataclass(frozen=True)
class WavSourceOptions(Options):
    files: tuple[str, ...] = option(("",), "Sound files (wav, flac...) published one after another.")
    sample_format: str = option("S16LE", "PCM format on the wire.", choices=PCM_FORMATS)
    chunk_ms: int = option(100, "Audio per message.", unit="ms", range=(5, 2000))
    speed: float = option(1.0, "Publishing pace as a multiple of real time (1.0 = real time).", range=(0.1, 1000.0))
    gap_s: float = option(1.0, "Silence published between files and after the last one.", unit="s", range=(0.0, 60.0))
    loop: bool = option(False, "Start again after the last file.")
    stamped: bool = option(False, "Publish AudioDataStamped on audio_stamped as well.")
    wait_for_subscribers: int = option(
        0, "Hold back the first chunk until this many subscribers listen on `audio`.", range=(0, 100))
    exit_when_done: bool = option(False, "Shut down after the last file (no loop).")


# The node's parameters: every declared option of these (ROS names from core/options.py), by binder key.
PARAMETER_GROUPS = {"wav_source": WavSourceOptions}


class WavSource(Node):
    def __init__(self, **kwargs):
        # Completed once every chunk is published with exit_when_done: ends the process (ros/runner.py's run_nodes).
        # Set first: the context's shutdown destroys a node whose construction failed too.
        self.finished = Future()
        super().__init__("wav_source", **kwargs)
        (options,) = ParameterBinder(self).declare(PARAMETER_GROUPS)
        paths = [p for p in options.files if p]
        if not paths:
            raise HailoWhisperError("parameter `files` names no sound file")
        self.options = options
        self.sounds = [read_sound_file(path, options.sample_format) for path in paths]
        self.chunk_ms = options.chunk_ms
        self.gap_s = options.gap_s
        self.loop = options.loop
        self.exit_when_done = options.exit_when_done
        self.wait_for_subscribers = options.wait_for_subscribers

        self.publisher = AudioPublisher(self, options.sample_format, options.stamped)

        self.chunks = self._chunks()
        self.chunks_published = 0
        self.done = False  # every chunk published (never when looping)
        period_s = self.chunk_ms / 1000.0 / options.speed
        self.timer = self.create_timer(period_s, self._publish_next)

    def _chunks(self):
        """Yields ((sample rate, channels), bytes) per message, forever when looping."""
        while True:
            for sound in self.sounds:
                audio_format = (sound.sample_rate, sound.frames.shape[1])
                frames_per_chunk = max(1, sound.sample_rate * self.chunk_ms // 1000)
                gap = np.zeros((int(self.gap_s * sound.sample_rate), audio_format[1]), sound.frames.dtype)
                for samples in (sound.frames, gap):
                    for start in range(0, len(samples), frames_per_chunk):
                        yield audio_format, samples[start : start + frames_per_chunk].tobytes()
            if not self.loop:
                return

    def _publish_next(self) -> None:
        if self.done:
            return
        if self.publisher.audio_pub.get_subscription_count() < self.wait_for_subscribers:
            return
        for audio_format, payload in self.chunks:
            self.publisher.declare_format(*audio_format)
            self.publisher.publish(payload)
            self.chunks_published += 1
            return
        self.done = True
        self.get_logger().info(f"published {self.chunks_published} chunks from {len(self.sounds)} file(s)")
        if self.exit_when_done:
            self.finished.set_result(self.chunks_published)

    def destroy_node(self):
        if self.finished.done():
            # Reliable delivery of the last chunks before the publisher goes away.
            self.publisher.audio_pub.wait_for_all_acked(Duration(seconds=DELIVERY_TIMEOUT_S))
        return super().destroy_node()


def main(args=None) -> int:
    return run_nodes(args, [WavSource])


if __name__ == "__main__":
    sys.exit(main())
