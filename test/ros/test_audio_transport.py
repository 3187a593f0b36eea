"""Audio crosses a process boundary over real DDS: wav_source publishes a real speech file as AudioData chunks,
this test process receives every one of them, byte for byte."""

import time

import rclpy
import soundfile
from audio_common_msgs.msg import AudioData, AudioInfo
from rclpy.executors import SingleThreadedExecutor
from ros_harness import wav_source

from hailo_whisper_ros.ros.topics import AUDIO, AUDIO_INFO, AUDIO_INFO_QOS, AUDIO_PUBLISHER_QOS

CHUNK_MS = 100


def test_wav_source_chunks_arrive_complete_and_unaltered(ros_context, speech_samples):
    path = str(speech_samples / "jfk" / "jfk.flac")  # 44.1 kHz stereo, 16-bit
    expected = soundfile.read(path, dtype="int16", always_2d=True)[0]
    sample_rate = soundfile.info(path).samplerate
    frames_per_chunk = sample_rate * CHUNK_MS // 1000
    expected_chunks = [expected[i : i + frames_per_chunk].tobytes() for i in range(0, len(expected), frames_per_chunk)]

    node = rclpy.create_node("audio_transport_probe", context=ros_context)
    received: list[bytes] = []
    infos: list[AudioInfo] = []
    # Reliable with the publisher's depth: a chunk that does not arrive is a fault of the transport, not of the QoS.
    node.create_subscription(AudioData, AUDIO, lambda msg: received.append(bytes(msg.data)), AUDIO_PUBLISHER_QOS)
    node.create_subscription(AudioInfo, AUDIO_INFO, infos.append, AUDIO_INFO_QOS)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)

    source = wav_source([path], 20.0, 0.0, "-p", "sample_format:=S16LE", "-p", f"chunk_ms:={CHUNK_MS}")
    deadline = time.monotonic() + 60
    try:
        while len(received) < len(expected_chunks) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        source.wait(timeout=20)
    finally:
        exit_status = source.stop()
        executor.shutdown()
        node.destroy_node()

    assert exit_status == 0, source.log
    assert len(received) == len(expected_chunks), f"{len(received)} of {len(expected_chunks)} chunks arrived"
    for index, (got, want) in enumerate(zip(received, expected_chunks)):
        assert got == want, f"chunk {index} differs"
    assert b"".join(received) == expected.tobytes()
    assert infos and infos[-1].sample_rate == sample_rate and infos[-1].channels == expected.shape[1]
    assert infos[-1].sample_format == "S16LE"
