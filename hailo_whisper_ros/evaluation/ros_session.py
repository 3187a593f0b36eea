"""The package's ROS executables run as real processes on this machine, and the one DDS client that talks to them:
the demo, bench targets 1, 2 and 6, `soak --ros` and the ROS tests all start nodes and listen to them through this
module.

Topic names and QoS profiles come from ros.topics, status value names from ros.diagnostics, so that this client
reads what the nodes write by the same contract.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import rclpy
from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from diagnostic_msgs.msg import DiagnosticArray
from hailo_whisper_msgs.msg import Transcript
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile
from std_msgs.msg import String

from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.ros.diagnostics import (
    AUDIO_INFO_MESSAGES,
    AUDIO_PUBLISHERS,
    INPUT_QUEUE_S,
    QUEUE_DEPTH_S,
    TRANSCRIBING,
    level_of,
    status_values,
)
from hailo_whisper_ros.ros.topics import (
    AUDIO,
    AUDIO_INFO,
    AUDIO_INFO_QOS,
    AUDIO_PUBLISHER_QOS,
    AUDIO_STAMPED,
    COMMAND,
    DIAGNOSTICS,
    PARTIAL_QOS,
    RESULTS_QOS,
    TRANSCRIPT,
    TRANSCRIPT_EVENTS,
    TRANSCRIPT_PARTIAL,
)

BIN_DIR = Path(sys.executable).parent  # the executables are installed beside the interpreter of the venv
# Set by the ROS wheels' bootstrapper (ros_wheels_bootstrapper.pth) once it has put its venv's libraries on
# LD_LIBRARY_PATH and started the interpreter again; processes started from this one inherit both.
ROS_WHEELS_BOOTSTRAPPED = "_ROS_WHEELS_BOOTSTRAP_COMPLETE"
STOP_TIMEOUT_S = 10.0  # a node shuts down cleanly on SIGINT within this, else it is killed
PR_SET_PDEATHSIG = 1  # prctl option: the signal a child gets when its parent dies
DIAGNOSTICS_DEPTH = 50  # every node publishes once a second: room for a busy spinner to catch up
POLL_S = 0.05  # how often a wait looks at its condition


def wait_until(condition: Callable[[], bool], timeout_s: float, poll_s: float = POLL_S) -> bool:
    """Whether ``condition()`` became true within ``timeout_s``: the one deadline loop of the waits below."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
    return True


def s16le(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] (clipped) as S16LE bytes, the way a microphone driver sends them."""
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def confine_to_this_machine() -> str:
    """Keeps this process's DDS traffic and that of every node it starts on this machine, in the caller's
    ROS_DOMAIN_ID or else a random one, so that other ROS traffic stays apart; returns the domain id."""
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.pop("ROS_STATIC_PEERS", None)  # static peers would be reached on other machines too
    return os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 100)))


@contextlib.contextmanager
def ros_context() -> Iterator[rclpy.Context]:
    """An rclpy context of its own in this process's ROS environment as it is (to reach nodes running already),
    shut down on leaving."""
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)


@contextlib.contextmanager
def local_context() -> Iterator[rclpy.Context]:
    """An rclpy context of its own on this machine only (confine_to_this_machine), for nodes started here."""
    confine_to_this_machine()
    with ros_context() as context:
        yield context


def executable(name: str, venv: Path | None = None) -> str:
    """The path of executable ``name`` of ``venv`` (by default the one this process runs in)."""
    path = (Path(venv) / "bin" if venv else BIN_DIR) / name
    if not path.is_file():
        raise HailoWhisperError(f"{path} missing: run `make setup`")
    return str(path)


def venv_environment(venv: Path) -> dict[str, str]:
    """This process's environment for the executables of another ``venv``: without what the ROS wheels' bootstrapper
    put in it for the venv of this process (its guard, this venv's folders on LD_LIBRARY_PATH), so that the other
    venv's bootstrapper runs and its processes load its own ROS libraries, not this venv's."""
    environment = dict(os.environ)
    environment.pop(ROS_WHEELS_BOOTSTRAPPED, None)
    this_venv = Path(sys.prefix).resolve()
    library_path = [folder for folder in environment.pop("LD_LIBRARY_PATH", "").split(os.pathsep)
                    if folder and not Path(folder).resolve().is_relative_to(this_venv)]
    if library_path:
        environment["LD_LIBRARY_PATH"] = os.pathsep.join(library_path)
    return environment


def _die_with_parent() -> None:
    """SIGTERM the node when its parent dies, even killed: no stray node outlives the process that started it."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class NodeProcess:
    """One executable of the package with --ros-args (or another ``command`` that starts nodes, a launch say),
    confined to this machine. Its output is kept (for assertion and error messages) and, with ``echo``, also passed
    on to stderr as it comes. ``venv``: the venv whose executable runs (by default this process's), in
    venv_environment(venv) unless ``env`` gives the environment (a sourced workspace's, say)."""

    def __init__(self, name: str, *ros_args: str, echo: bool = False, command: Sequence[str] | None = None,
                 venv: Path | None = None, env: Mapping[str, str] | None = None):
        confine_to_this_machine()
        self.name = name
        self.command = list(command) if command else [executable(name, venv), "--ros-args", *ros_args]
        self.echo = echo
        if env is None and venv is not None:
            env = venv_environment(venv)
        self.process = subprocess.Popen(
            self.command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: stop() signals the node and nothing else
            preexec_fn=_die_with_parent,
        )
        self.output: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            if self.echo:
                sys.stderr.write(line)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log(self) -> str:
        return "".join(self.output)

    def running(self) -> bool:
        return self.process.poll() is None

    def wait_for_output(self, text: str, timeout: float) -> bool:
        wait_until(lambda: text in self.log or not self.running(), timeout)
        if not self.running():
            self.reader.join(timeout=1)  # the last lines may still be on their way
        return text in self.log

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> int | None:
        """SIGINT (a node's clean shutdown), SIGKILL after STOP_TIMEOUT_S; the exit status."""
        if self.running():
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.reader.join(timeout=5)
        return self.process.returncode


def wav_source(files: Sequence[str | Path], speed: float, gap_s: float, *ros_args: str,
               echo: bool = False, venv: Path | None = None) -> NodeProcess:
    """A wav_source (``venv``'s, see NodeProcess) playing ``files`` once at ``speed`` times real time, ``gap_s`` of
    silence after each, once a subscriber listens on its audio topic; it exits when done."""
    listed = ",".join(f"'{file}'" for file in files)
    return NodeProcess(
        "wav_source",
        "-p", f"files:=[{listed}]",
        "-p", f"speed:={speed}",
        "-p", f"gap_s:={gap_s}",
        "-p", "wait_for_subscribers:=1",
        "-p", "exit_when_done:=true",
        *ros_args,
        echo=echo,
        venv=venv,
    )


def play(files: Sequence[str | Path], speed: float, gap_s: float, timeout_s: float, *ros_args: str,
         echo: bool = False) -> int:
    """A wav_source playing ``files`` to the nodes (see wav_source); its exit status once it is done.
    HailoWhisperError if it is still playing after ``timeout_s``."""
    source = wav_source(files, speed, gap_s, *ros_args, echo=echo)
    try:
        return source.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise HailoWhisperError(f"wav_source still playing after {timeout_s:g} s") from None
    finally:
        source.stop()


class NodeStatus(NamedTuple):
    """One node's status as received on /diagnostics; the value names are ros.diagnostics' constants."""

    level: int
    message: str
    values: dict[str, str]


class Listener:
    """What the nodes publish, collected on a thread of its own: final texts on ``transcript``, partial texts on
    ``transcript/partial``, commands on ``command`` (the wake-phrase gate), every result on ``transcript/events``
    (hailo_whisper_msgs/Transcript), checked against the message's contract, and every node's status on /diagnostics.
    ``on_record`` sees each result as it arrives; ``on_status(name, status)`` each status.
    ``keep_diagnostics=False`` keeps only each node's latest status (a long soak would pile up the rest)."""

    def __init__(
        self,
        context: rclpy.Context,
        namespace: str = "",
        node_name: str = "hailo_whisper_listener",
        on_record: Callable[[Transcript], None] | None = None,
        on_status: Callable[[str, NodeStatus], None] | None = None,
        keep_diagnostics: bool = True,
    ):
        self.node = rclpy.create_node(node_name, namespace=namespace or None, context=context)
        self.namespace = self.node.get_namespace().strip("/")  # as the nodes' status names carry it
        self.on_record, self.on_status, self.keep_diagnostics = on_record, on_status, keep_diagnostics
        self.lock = threading.RLock()  # reentrant: wait_for's predicates call the locked accessors
        self.finals: list[str] = []
        self.partials: list[str] = []
        self.commands: list[str] = []
        self.events: list[Transcript] = []
        self.event_arrivals: list[float] = []  # time.monotonic() when each of the events arrived
        self.contract_violations: list[str] = []  # each result on transcript/events that broke Transcript's contract
        self.finished_ids: set[int] = set()  # utterances whose final came
        self.diagnostics: list[tuple[float, dict[str, NodeStatus]]] = []  # (arrival, {status name: status})
        self.statuses: dict[str, tuple[float, NodeStatus]] = {}  # status name -> (arrival, its latest status)
        self.node.create_subscription(String, TRANSCRIPT, lambda m: self._add(self.finals, m.data), RESULTS_QOS)
        self.node.create_subscription(
            String, TRANSCRIPT_PARTIAL, lambda m: self._add(self.partials, m.data), PARTIAL_QOS
        )
        self.node.create_subscription(String, COMMAND, lambda m: self._add(self.commands, m.data), RESULTS_QOS)
        self.node.create_subscription(Transcript, TRANSCRIPT_EVENTS, self._on_event, RESULTS_QOS)
        self.node.create_subscription(DiagnosticArray, DIAGNOSTICS, self._on_diagnostics, DIAGNOSTICS_DEPTH)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _add(self, target: list, item) -> None:
        with self.lock:
            target.append(item)

    def _on_event(self, message: Transcript) -> None:
        with self.lock:
            kind = "final" if message.final else "partial"
            if message.utterance_id in self.finished_ids:
                self.contract_violations.append(f"a {kind} of utterance {message.utterance_id} after its final")
            elif self.events and message.utterance_id < self.events[-1].utterance_id:
                self.contract_violations.append(
                    f"utterance {message.utterance_id} after utterance {self.events[-1].utterance_id}")
            if message.final:
                self.finished_ids.add(message.utterance_id)
            self.events.append(message)
            self.event_arrivals.append(time.monotonic())
        if self.on_record is not None:
            self.on_record(message)

    def _on_diagnostics(self, message: DiagnosticArray) -> None:
        arrival = time.monotonic()
        statuses = {s.name: NodeStatus(level_of(s), s.message, status_values(s)) for s in message.status}
        with self.lock:
            if self.keep_diagnostics:
                self.diagnostics.append((arrival, statuses))
            self.statuses.update((name, (arrival, status)) for name, status in statuses.items())
        if self.on_status is not None:
            for name, status in statuses.items():
                self.on_status(name, status)

    def status_name(self, node: str) -> str:
        """The name a node of the listener's namespace reports its status under (e.g. 'robot/recognizer')."""
        return f"{self.namespace}/{node}" if self.namespace else node

    def latest(self, name: str, since: float = 0.0) -> NodeStatus | None:
        """The latest status called exactly ``name`` if it arrived after ``since`` (time.monotonic()), else None."""
        with self.lock:
            arrival, status = self.statuses.get(name, (0.0, None))
        return status if arrival > since else None

    def latest_status(self, name_suffix: str) -> NodeStatus | None:
        """The latest status of any node whose status name ends with ``name_suffix``, or None."""
        with self.lock:
            matching = [entry for name, entry in self.statuses.items() if name.endswith(name_suffix)]
        return max(matching, key=lambda entry: entry[0])[1] if matching else None

    def latest_statuses(self) -> dict[str, NodeStatus]:
        with self.lock:
            return {name: status for name, (_, status) in self.statuses.items()}

    @property
    def last_event_arrival(self) -> float:
        with self.lock:
            return self.event_arrivals[-1] if self.event_arrivals else 0.0

    def caught_up(self, since: float, quiet_s: float) -> bool:
        """True once the audio subscriber and the recognizer reported empty queues and the recognizer no decode in
        progress after ``since``, and no result arrived for ``quiet_s``: everything sent before ``since`` is
        transcribed. (An empty queue alone is not enough: the audio of a final being decoded is off it, and a busy
        machine can take longer than ``quiet_s`` to decode one.)"""
        subscriber = self.latest(self.status_name("audio_subscriber"), since)
        recognizer = self.latest(self.status_name("recognizer"), since)
        return (
            subscriber is not None
            and recognizer is not None
            and float(subscriber.values[INPUT_QUEUE_S]) == 0
            and float(recognizer.values[QUEUE_DEPTH_S]) == 0
            and recognizer.values[TRANSCRIBING] == "False"
            and time.monotonic() - max(self.last_event_arrival, since) >= quiet_s
        )

    def wait_until_caught_up(self, since: float, quiet_s: float, timeout_s: float,
                             process: NodeProcess | None = None) -> bool:
        """Waits until ``caught_up`` (or, given, the nodes' ``process`` exited); whether it caught up."""
        self.wait_for(lambda: self.caught_up(since, quiet_s) or (process is not None and not process.running()),
                      timeout_s)
        return self.caught_up(since, quiet_s)

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        def locked() -> bool:
            with self.lock:
                return predicate()

        return wait_until(locked, timeout)

    def close(self) -> None:
        self.executor.shutdown()
        # A spinner thread still running at interpreter exit aborts the process ("terminate called without an
        # active exception").
        self.thread.join(timeout=STOP_TIMEOUT_S)
        self.node.destroy_node()


class AudioDriver:
    """Publishes raw audio as a microphone driver does, mistakes included: AudioInfo (latched) on `audio_info`, and
    the bytes it is given as AudioData on `audio` (or AudioDataStamped on `audio_stamped`), paced in real time or
    a multiple of it; ``qos``: the audio publisher's (a driver's reliable one by default)."""

    def __init__(self, context: rclpy.Context, namespace: str = "", stamped: bool = False,
                 node_name: str = "hailo_whisper_audio_driver", qos: QoSProfile = AUDIO_PUBLISHER_QOS):
        self.node = rclpy.create_node(node_name, namespace=namespace or None, context=context)
        self.info_pub = self.node.create_publisher(AudioInfo, AUDIO_INFO, AUDIO_INFO_QOS)
        self.stamped = stamped
        self.audio_pub = (
            self.node.create_publisher(AudioDataStamped, AUDIO_STAMPED, qos)
            if stamped
            else self.node.create_publisher(AudioData, AUDIO, qos)
        )
        self.stamp_ns = 1_000_000_000_000  # the stamp of the next stamped message
        self.sent = 0  # audio messages published

    def has_subscriber(self) -> bool:
        return self.audio_pub.get_subscription_count() > 0

    def wait_for_subscriber(self, listener: Listener, timeout: float = 30.0) -> None:
        """Until the audio subscriber (its status on ``listener``) has matched this publisher from its own side too:
        its best-effort subscription drops what arrives before that, although this side already counts it."""
        if not wait_until(self.has_subscriber, timeout):
            raise TimeoutError(f"no subscriber on {self.audio_pub.topic_name} within {timeout:g} s")
        matched_here = time.monotonic()

        def matched_there() -> bool:
            status = listener.latest(listener.status_name("audio_subscriber"), since=matched_here)
            # Every publisher this side sees on the topic, this one included.
            return status is not None and int(status.values[AUDIO_PUBLISHERS]) >= self.node.count_publishers(
                self.audio_pub.topic_name)

        if not listener.wait_for(matched_there, timeout):
            raise TimeoutError(f"the audio subscriber did not report matching {self.audio_pub.topic_name}'s "
                               f"publisher within {timeout:g} s")

    def declare(self, listener: Listener, sample_rate: int, channels: int = 1, sample_format: str = "S16LE",
                coding: str = "WAVE", timeout: float = 20.0) -> None:
        """AudioInfo, then wait until the audio subscriber has handled it (its status on ``listener`` counts one
        more): it travels on a topic of its own, so audio sent sooner could be converted in the old format."""
        status_name = listener.status_name("audio_subscriber")

        def handled() -> int:
            status = listener.latest(status_name)
            return -1 if status is None else int(status.values[AUDIO_INFO_MESSAGES])

        if not listener.wait_for(lambda: handled() >= 0, timeout):
            raise TimeoutError(f"no status of {status_name} within {timeout:g} s")
        before = handled()
        self.info_pub.publish(
            AudioInfo(channels=channels, sample_rate=sample_rate, sample_format=sample_format, coding_format=coding)
        )
        if not listener.wait_for(lambda: handled() > before, timeout):
            raise TimeoutError(f"{status_name} did not handle the AudioInfo within {timeout:g} s")

    def send(self, payload: bytes, duration_s: float = 0.0) -> None:
        """One message; a stamped one carries the current stamp, which then moves on by ``duration_s``."""
        audio = AudioData(data=payload)
        self.sent += 1
        if not self.stamped:
            self.audio_pub.publish(audio)
            return
        message = AudioDataStamped(audio=audio)
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
