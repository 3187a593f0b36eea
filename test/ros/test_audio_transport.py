"""Audio crosses a process boundary over real DDS: wav_source publishes a real speech file as AudioData chunks,
this test process receives every one of them, byte for byte."""

import subprocess
import time

import numpy as np
import soundfile
from audio_common_msgs.msg import AudioData, AudioInfo
from ros_harness import executable
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

CHUNK_MS = 100


def test_wav_source_chunks_arrive_complete_and_unaltered(ros_context, dev_utterances):
    import rclpy

    path = str(dev_utterances[0].audio_path)
    expected = soundfile.read(path, dtype="int16", always_2d=True)[0]
    sample_rate = soundfile.info(path).samplerate
    frames_per_chunk = sample_rate * CHUNK_MS // 1000
    expected_chunks = [expected[i : i + frames_per_chunk].tobytes() for i in range(0, len(expected), frames_per_chunk)]

    node = rclpy.create_node("audio_transport_probe", context=ros_context)
    received: list[bytes] = []
    infos: list[AudioInfo] = []
    node.create_subscription(
        AudioData, "audio", lambda msg: received.append(bytes(msg.data)), QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    )
    node.create_subscription(
        AudioInfo,
        "audio_info",
        infos.append,
        QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL),
    )
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)

    source = subprocess.Popen(
        [
            executable("wav_source"),
            "--ros-args",
            "-p", f"files:=['{path}']",
            "-p", "sample_format:=S16LE",
            "-p", f"chunk_ms:={CHUNK_MS}",
            "-p", "speed:=20.0",
            "-p", "gap_s:=0.0",
            "-p", "wait_for_subscribers:=1",
            "-p", "exit_when_done:=true",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    try:
        while len(received) < len(expected_chunks) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        source.wait(timeout=20)
    finally:
        if source.poll() is None:
            source.kill()
        log = source.communicate()[0]
        executor.shutdown()
        node.destroy_node()

    assert source.returncode == 0, log
    assert len(received) == len(expected_chunks), f"{len(received)} of {len(expected_chunks)} chunks arrived"
    for index, (got, want) in enumerate(zip(received, expected_chunks)):
        assert got == want, f"chunk {index} differs"
    assert b"".join(received) == expected.tobytes()
    assert infos and infos[-1].sample_rate == sample_rate and infos[-1].channels == expected.shape[1]
    assert infos[-1].sample_format == "S16LE"
