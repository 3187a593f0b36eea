"""`make demo`: the composed speech_recognition node and a wav_source playing real speech over real DDS; prints
each partial and final transcript as it arrives on the topics, then the diagnostics of every node.

Traffic stays on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) in a domain of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from hailo_whisper_ros.core.datasets import SPEECH_DEV

DEFAULT_CLIPS = [
    "jfk/jfk.flac",
    "librispeech_testclean_kw/1089-134686-0000.flac",
    "ljspeech_coqui/LJ001-0005.wav",
    "pocketsphinx_librivox/sense_and_sensibility_01_austen_64kb-0870.wav",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help=f"sound files (default: {len(DEFAULT_CLIPS)} dev clips)")
    parser.add_argument("--speed", type=float, default=1.0, help="playback pace, a multiple of real time")
    parser.add_argument("--params-file", default=str(Path(__file__).resolve().parents[2] / "config" / "cpu.yaml"))
    args = parser.parse_args()
    files = args.files or [str(SPEECH_DEV / clip) for clip in DEFAULT_CLIPS]

    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 100)))
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    bin_dir = Path(sys.executable).parent
    recognition = subprocess.Popen(
        [str(bin_dir / "speech_recognition"), "--ros-args", "--params-file", args.params_file, "--log-level", "warn"]
    )
    rclpy.init()
    node = rclpy.create_node("demo_listener")
    statuses = {}
    finals = []

    def on_event(message: String) -> None:
        event = json.loads(message.data)
        if event["kind"] == "partial":
            print(f"  partial #{event['utterance_id']}: {event['text']}", flush=True)
        else:
            finals.append(event)
            print(
                f"FINAL   #{event['utterance_id']} [{event['start_s']:6.2f}-{event['end_s']:6.2f} s, "
                f"{event['latency_ms']:.0f} ms after end of speech]: {event['text'] or '(no speech)'}",
                flush=True,
            )

    node.create_subscription(String, "transcript/events", on_event, QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    node.create_subscription(
        DiagnosticArray, "/diagnostics", lambda m: statuses.update({s.name: s for s in m.status}), 10
    )
    print(f"starting speech_recognition (ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}) ...", flush=True)
    deadline = time.monotonic() + 120
    while "recognizer" not in statuses and time.monotonic() < deadline and recognition.poll() is None:
        rclpy.spin_once(node, timeout_sec=0.2)
    if "recognizer" not in statuses:
        print("speech_recognition did not come up", file=sys.stderr)
        recognition.terminate()
        return 1
    listed = ",".join(f"'{f}'" for f in files)
    print(f"playing {len(files)} file(s) at {args.speed:g}x real time on 'audio'", flush=True)
    source = subprocess.Popen(
        [
            str(bin_dir / "wav_source"), "--ros-args", "--log-level", "warn",
            "-p", f"files:=[{listed}]", "-p", f"speed:={args.speed}", "-p", "exit_when_done:=true",
            "-p", "wait_for_subscribers:=1",
        ]
    )
    try:
        while source.poll() is None:
            rclpy.spin_once(node, timeout_sec=0.1)
        settle = time.monotonic() + 3.0  # the last utterance's final follows the closing silence
        while time.monotonic() < settle:
            rclpy.spin_once(node, timeout_sec=0.1)
        print("\ndiagnostics:")
        for name in sorted(statuses):
            status = statuses[name]
            level = ["OK", "WARN", "ERROR", "STALE"][ord(status.level) if isinstance(status.level, bytes) else status.level]
            print(f"  {name}: {level} - {status.message}")
            for value in status.values:
                print(f"      {value.key}: {value.value}")
    finally:
        source.terminate()
        recognition.send_signal(2)
        recognition.wait(timeout=20)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0 if finals else 1


if __name__ == "__main__":
    sys.exit(main())
