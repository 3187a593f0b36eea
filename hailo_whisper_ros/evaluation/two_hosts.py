"""A robot and a base station over a lossy link (issue 31), measured on one machine: the robot's network namespace
runs the audio subscriber (and the wav_source playing the recording, 48 kHz stereo at 1x, as a microphone driver),
the server's the recognizer and the transcript publisher; they discover each other across the veth link
(ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET, UDP only), the server's ingress losing UDP packets at random
(evaluation/netns.py). This process listens from the robot's namespace, where the person is: what a person waits
is from the publication of a clip's last speech sample to its final's arrival back on the robot (ros_layouts).

"One host" runs all four nodes in the robot's namespace with Fast DDS's default transports, as on one machine.
Several robots are several ROS namespaces of the robot's network namespace, each with its own recognizer and
transcript publisher on the server.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import rclpy

from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.evaluation import netns
from hailo_whisper_ros.evaluation.long_recording import LongRecording
from hailo_whisper_ros.evaluation.ros_layouts import (
    GAP_S,
    SETTLE_S,
    Arrivals,
    LayoutFigures,
    layout_figures,
    wait_until_ready,
)
from hailo_whisper_ros.evaluation.ros_session import Listener, NodeProcess, executable

PROFILE = Path(__file__).resolve().parents[2] / "config" / "two_hosts_fastdds.xml"
ROBOT_NODES = ("audio_subscriber",)
SERVER_NODES = ("recognizer", "transcript_publisher")
DRIVER_BYTES_PER_SAMPLE = 4  # 16-bit stereo, as ros_layouts.write_driver_wav writes it


@dataclass(frozen=True)
class Design:
    """How speech crosses the link: the Fast DDS profile the nodes load, the audio subscriber's message size."""

    name: str
    profile: Path | None
    max_message_samples: int  # speech.max_message_samples (0: one message per segmenter release)


TODAY = Design("today", None, 0)
NEW = Design("profile + 300-sample messages", PROFILE, 300)


@dataclass(frozen=True)
class Robot:
    namespace: str  # its ROS namespace ('' for the only one)
    recording: LongRecording
    wav: Path  # the recording as a driver sends it (ros_layouts.write_driver_wav)


@dataclass(frozen=True)
class LinkRun:
    design: str
    loss_percent: int | None  # None: one host
    loss_unit: str  # of netns.LOSS_UNITS
    robots: list[LayoutFigures]
    finals: list[list[str]]  # each robot's final texts, in order
    counters: netns.LinkCounters


def node_environment(design: Design, one_host: bool, domain_id: str) -> dict[str, str]:
    """The DDS environment of every process of a run (this one's too)."""
    environment = dict(os.environ, ROS_DOMAIN_ID=domain_id, ROS_AUTOMATIC_DISCOVERY_RANGE="SUBNET")
    for name in ("ROS_STATIC_PEERS", "FASTDDS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS"):
        environment.pop(name, None)
    if design.profile is not None and not one_host:
        environment["FASTDDS_DEFAULT_PROFILES_FILE"] = str(design.profile)
    elif not one_host:
        environment["FASTDDS_BUILTIN_TRANSPORTS"] = "UDPv4"  # shared memory would bypass the link
    return environment


def _node(name: str, namespace_net: str, robot: Robot, environment: dict, *ros_args: str) -> NodeProcess:
    ros_namespace = ("-r", f"__ns:=/{robot.namespace}") if robot.namespace else ()
    command = ["ip", "netns", "exec", namespace_net, executable(name), "--ros-args", "--log-level", "warn",
               *ros_namespace, *ros_args]
    return NodeProcess(name, command=command, env=environment)


def _start_nodes(link: netns.Link, design: Design, one_host: bool, robots: list[Robot], environment: dict,
                 model_dir: Path, threads: int) -> list[NodeProcess]:
    server = link.robot if one_host else link.server
    processes = []
    for robot in robots:
        processes.append(_node("audio_subscriber", link.robot, robot, environment,
                               "-p", f"speech.max_message_samples:={design.max_message_samples}"))
        processes.append(_node("recognizer", server, robot, environment, "-p", f"model.dir:={model_dir}",
                               "-p", f"model.threads:={threads}"))
        processes.append(_node("transcript_publisher", server, robot, environment))
    return processes


def measure_link(link: netns.Link, design: Design, loss_percent: int | None, robots: list[Robot], model_dir: Path,
                 threads: int, loss_unit: str = "packet") -> LinkRun:
    """One run: ``robots`` played at once to their nodes over ``link`` at ``loss_percent`` of ``loss_unit`` (None:
    one host)."""
    one_host = loss_percent is None
    link.set_loss(loss_percent or 0, loss_unit)
    before = link.counters()
    environment = node_environment(design, one_host, str(random.randint(1, 200)))
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environment)  # read by this process's DDS participant, made in rclpy.init
    context = rclpy.Context()
    try:
        with netns.entered(link.robot):
            rclpy.init(context=context)
            figures, finals = _listen_and_play(link, design, one_host, robots, environment, context, model_dir, threads)
    finally:
        rclpy.try_shutdown(context=context)
        os.environ.clear()
        os.environ.update(saved)
    after = link.counters()
    counters = netns.LinkCounters(*(a - b for a, b in zip(vars(after).values(), vars(before).values())))
    return LinkRun(design.name, loss_percent, loss_unit, figures, finals, counters)


def _listen_and_play(link, design, one_host, robots, environment, context, model_dir, threads):
    """Each robot's figures and final texts."""
    listeners = [Listener(context, namespace=robot.namespace, node_name="two_hosts_listener") for robot in robots]
    arrivals = [Arrivals(listener, DRIVER_BYTES_PER_SAMPLE) for listener in listeners]
    processes = _start_nodes(link, design, one_host, robots, environment, model_dir, threads)
    try:
        for listener in listeners:
            wait_until_ready(design.name, listener)
        values = _play(link, robots, listeners, processes, environment)
    finally:
        for process in processes:
            process.stop()
        for listener in listeners:
            listener.close()
    figures, finals = [], []
    for robot, listener, arrived, recognizer_values in zip(robots, listeners, arrivals, values):
        with listener.lock:
            events = list(listener.events)
        figures.append(layout_figures(robot.namespace or "robot", robot.recording, events, arrived,
                                      recognizer_values, {}))
        finals.append([event.text for event in events if event.final])
    return figures, finals


def _play(link, robots, listeners, processes, environment) -> list[dict[str, str]]:
    """Plays every robot's recording at once; each robot's recognizer status values once it caught up."""
    sources = [_node("wav_source", link.robot, robot, environment, "-p", f"files:=['{robot.wav}']",
                     "-p", f"gap_s:={GAP_S}", "-p", "wait_for_subscribers:=2", "-p", "exit_when_done:=true")
               for robot in robots]
    try:
        for source, robot in zip(sources, robots):
            if source.wait(timeout=2 * robot.recording.duration_s + 60) != 0:
                raise HailoWhisperError(f"wav_source exited with {source.process.returncode}:\n{source.log}")
    finally:
        for source in sources:
            source.stop()
    return [_recognizer_values(listener, processes) for listener in listeners]


def _recognizer_values(listener: Listener, processes: list[NodeProcess]) -> dict[str, str]:
    """Once the robot's nodes caught up and every final reached `transcript`: its recognizer's status values sent
    after its last final."""
    import time

    if not listener.wait_until_caught_up(time.monotonic(), SETTLE_S, 120.0):
        stopped = [f"{p.name}: {p.log}" for p in processes if not p.running()]
        raise HailoWhisperError(f"still transcribing 120 s after the audio; {stopped}")
    # `transcript` comes through the transcript publisher, after the events: every final with text.
    listener.wait_for(lambda: len(listener.finals) >= sum(1 for e in listener.events if e.final and e.text), 30.0)
    status_name = listener.status_name("recognizer")
    since = time.monotonic()
    listener.wait_for(lambda: listener.latest(status_name, since) is not None, 10.0)
    return listener.latest(status_name).values


def crossings(run: LinkRun, robots: list[Robot]) -> int:
    """Finals of one robot nearer (by word errors) to a clip another robot played than to every clip of its own."""
    from hailo_whisper_ros.evaluation.scoring import word_errors

    references = [(owner, clip.reference) for owner, robot in enumerate(robots) for clip in robot.recording.clips]
    crossed = 0
    for index, texts in enumerate(run.finals):
        for text in filter(str.strip, texts):
            nearest, _ = min(references, key=lambda reference: word_errors([reference[1]], [text]).wer)
            crossed += nearest != index
    return crossed
