"""Running the package's executables as real processes and listening to them from the test process over DDS."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

BIN_DIR = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def executable(name: str) -> str:
    path = BIN_DIR / name
    assert path.exists(), f"{path} missing: run `make setup`"
    return str(path)


def _die_with_parent() -> None:
    """SIGTERM the node when the test process dies, even killed: no stray node outlives its test run."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


PR_SET_PDEATHSIG = 1


class NodeProcess:
    """One executable of the package with --ros-args, its output kept for assertion messages."""

    def __init__(self, name: str, *ros_args: str):
        self.command = [executable(name), "--ros-args", *ros_args]
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.output: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)

    @property
    def log(self) -> str:
        return "".join(self.output)

    def wait_for_output(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log:
                return True
            if self.process.poll() is not None:
                return text in self.log
            time.sleep(0.05)
        return False

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> int | None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.reader.join(timeout=5)
        return self.process.returncode


def wav_source(files: list[str], speed: float = 4.0, gap_s: float = 1.5, *extra: str) -> NodeProcess:
    listed = ",".join(f"'{f}'" for f in files)
    return NodeProcess(
        "wav_source",
        "-p", f"files:=[{listed}]",
        "-p", f"speed:={speed}",
        "-p", f"gap_s:={gap_s}",
        "-p", "wait_for_subscribers:=1",
        "-p", "exit_when_done:=true",
        *extra,
    )


class Listener:
    """Collects transcripts, partials, result events and diagnostics on a thread of its own."""

    def __init__(self, context, namespace: str = ""):
        self.node = rclpy.create_node("test_listener", namespace=namespace or None, context=context)
        self.lock = threading.RLock()  # wait_for's predicates call the locked accessors
        self.finals: list[str] = []
        self.partials: list[str] = []
        self.events: list[dict] = []
        self.diagnostics: list[tuple[float, dict]] = []  # (arrival, {status name: (level, message, values)})
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(String, "transcript", lambda m: self._add(self.finals, m.data), reliable)
        self.node.create_subscription(String, "transcript/partial", lambda m: self._add(self.partials, m.data), 10)
        self.node.create_subscription(
            String, "transcript/events", lambda m: self._add(self.events, json.loads(m.data)), reliable
        )
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _add(self, target: list, item) -> None:
        with self.lock:
            target.append(item)

    def _on_diagnostics(self, message: DiagnosticArray) -> None:
        statuses = {s.name: (ord(s.level) if isinstance(s.level, bytes) else s.level, s.message,
                             {kv.key: kv.value for kv in s.values}) for s in message.status}
        self._add(self.diagnostics, (time.monotonic(), statuses))

    def latest_status(self, name_suffix: str):
        with self.lock:
            for _, statuses in reversed(self.diagnostics):
                for name, status in statuses.items():
                    if name.endswith(name_suffix):
                        return status
        return None

    def wait_for(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate():
                    return True
            time.sleep(0.05)
        with self.lock:
            return predicate()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def status_named(listener: Listener, name: str):
    """The latest (level, message, values) of the node whose status is called exactly ``name`` (a namespace
    prefix included, e.g. 'stamped/audio_subscriber'), or None."""
    with listener.lock:
        for _, statuses in reversed(listener.diagnostics):
            if name in statuses:
                return statuses[name]
    return None


class AudioDriver:
    """Publishes raw audio as a microphone driver does, mistakes included: AudioInfo (latched) on `audio_info`, and
    the bytes it is given as AudioData on `audio` (or AudioDataStamped on `audio_stamped`), paced in real time or
    a multiple of it."""

    def __init__(self, context, namespace: str = "", stamped: bool = False):
        from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
        from rclpy.qos import DurabilityPolicy

        self.AudioData, self.AudioDataStamped, self.AudioInfo = AudioData, AudioDataStamped, AudioInfo
        self.node = rclpy.create_node("test_audio_driver", namespace=namespace or None, context=context)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.info_pub = self.node.create_publisher(AudioInfo, "audio_info", latched)
        self.stamped = stamped
        reliable = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        self.audio_pub = (
            self.node.create_publisher(AudioDataStamped, "audio_stamped", reliable)
            if stamped
            else self.node.create_publisher(AudioData, "audio", reliable)
        )
        self.stamp_ns = 1_000_000_000_000  # the stamp of the next stamped message
        self.sent = 0  # audio messages published

    def wait_for_subscriber(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.audio_pub.get_subscription_count() == 0:
            assert time.monotonic() < deadline, f"no subscriber on {self.audio_pub.topic_name}"
            time.sleep(0.05)
        time.sleep(0.5)  # the subscriber's side of the match settles too

    def declare(self, sample_rate: int, channels: int = 1, sample_format: str = "S16LE", coding: str = "WAVE"):
        self.info_pub.publish(
            self.AudioInfo(channels=channels, sample_rate=sample_rate, sample_format=sample_format, coding_format=coding)
        )
        time.sleep(0.3)  # the format travels on its own topic: let it arrive before the audio in it

    def send(self, payload: bytes, duration_s: float = 0.0) -> None:
        """One message; a stamped one carries the current stamp, which then moves on by ``duration_s``."""
        audio = self.AudioData(data=payload)
        self.sent += 1
        if not self.stamped:
            self.audio_pub.publish(audio)
            return
        message = self.AudioDataStamped(audio=audio)
        message.header.stamp.sec, message.header.stamp.nanosec = divmod(self.stamp_ns, 1_000_000_000)
        self.audio_pub.publish(message)
        self.stamp_ns += int(duration_s * 1e9)

    def stream(self, payload: bytes, bytes_per_second: float, speed: float = 4.0, chunk_s: float = 0.1, cut=None):
        """``payload`` in chunks of ``chunk_s`` at ``speed`` times real time; ``cut(chunk) -> bytes`` may spoil
        each chunk on its way out."""
        chunk_bytes = int(round(bytes_per_second * chunk_s))
        started = time.monotonic()
        for index, start in enumerate(range(0, len(payload), chunk_bytes)):
            chunk = payload[start : start + chunk_bytes]
            time.sleep(max(started + index * chunk_s / speed - time.monotonic(), 0.0))
            self.send(cut(chunk) if cut else chunk, len(chunk) / bytes_per_second)

    def close(self) -> None:
        self.node.destroy_node()
