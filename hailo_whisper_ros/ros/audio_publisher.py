"""What an audio driver publishes, for the package's own drivers (wav_source, microphone): AudioInfo on `audio_info`
(transient local, so a late subscriber gets it) whenever the format changes, then AudioData on `audio`, and with
``stamped`` AudioDataStamped on `audio_stamped` as well, with the QoS profiles of ros/topics.py."""

from __future__ import annotations

from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from rclpy.node import Node

from hailo_whisper_ros.core.audio import pcm_sample_width
from hailo_whisper_ros.ros import topics


class AudioPublisher:
    def __init__(self, node: Node, sample_format: str, stamped: bool = False):
        self.node = node
        self.sample_format = sample_format
        self.audio_pub = node.create_publisher(AudioData, topics.AUDIO, topics.AUDIO_PUBLISHER_QOS)
        self.stamped_pub = (node.create_publisher(AudioDataStamped, topics.AUDIO_STAMPED, topics.AUDIO_PUBLISHER_QOS)
                            if stamped else None)
        self.info_pub = node.create_publisher(AudioInfo, topics.AUDIO_INFO, topics.AUDIO_INFO_QOS)
        self.format: tuple[int, int] | None = None  # (sample rate, channels) last declared on audio_info

    def declare_format(self, sample_rate: int, channels: int) -> None:
        """AudioInfo for the audio that follows, unless it is the format declared last."""
        if self.format == (sample_rate, channels):
            return
        self.format = (sample_rate, channels)
        bits = pcm_sample_width(self.sample_format) * 8
        self.info_pub.publish(AudioInfo(channels=channels, sample_rate=sample_rate, sample_format=self.sample_format,
                                        bitrate=sample_rate * channels * bits, coding_format="WAVE"))

    def publish(self, payload: bytes) -> None:
        """One chunk; the stamped one carries the time of publishing."""
        self.audio_pub.publish(AudioData(data=payload))
        if self.stamped_pub is not None:
            stamped = AudioDataStamped(audio=AudioData(data=payload))
            stamped.header.stamp = self.node.get_clock().now().to_msg()
            self.stamped_pub.publish(stamped)
