"""Repeated Ctrl-C of the composed speech_recognition process while audio flows and the recognizer works: each stop
must exit with status 0, in time, and print no error line and no traceback; through the launch file, every process
it started must also have finished cleanly.

Started directly, or as `ros2 launch` starts it: a LaunchService running launch/speech_recognition.launch.py in a
process of its own, SIGINT to its process group as a terminal's Ctrl-C sends it. The launch file finds the package
through the ament index; for a source checkout that is a temporary prefix pointing at the checkout's files.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.evaluation.ros_session import BIN_DIR, Listener, NodeProcess, executable, local_context

PACKAGE = "hailo_whisper_ros"
CHECKOUT = Path(__file__).resolve().parents[2]  # beside the package: config/, launch/, package.xml
# What the launch file may start: either layout of the nodes, and its audio sources.
NODE_EXECUTABLES = ("speech_recognition", "audio_subscriber", "recognizer", "transcript_publisher", "wav_source",
                    "microphone")
LAUNCH_FILE = CHECKOUT / "launch" / "speech_recognition.launch.py"
BASE_PARAMETERS = CHECKOUT / "config" / "speech_recognition.yaml"
READY = "ready: encoder"
READY_TIMEOUT_S = 120.0
WORKING_TIMEOUT_S = 60.0  # from ready to the first result on transcript/events
STOP_DELAY_S = (0.0, 1.5)  # after the first result, so that stops land at every phase of the work
# Lines that are no problem: INFO log lines, and the one launch prints for every Ctrl-C.
INFO_LINE = re.compile(r"\[INFO\]")
LAUNCH_INTERRUPTED = "user interrupted with ctrl-c (SIGINT)"
# What launch prints of each process it starts, and once it exited with status 0.
LAUNCH_STARTED = re.compile(r"\[INFO\] \[([\w.-]+)\]: process started with pid \[(\d+)\]")
LAUNCH_FINISHED_CLEANLY = "process has finished cleanly [pid {pid}]"
# As `ros2 launch` runs a launch file (ros2launch.api.launch_a_launch_file): argv[1] the file, then name:=value.
LAUNCH_SCRIPT = """
import sys
import launch
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import AnyLaunchDescriptionSource
service = launch.LaunchService(argv=sys.argv[2:])
arguments = [argument.split(":=", 1) for argument in sys.argv[2:]]
service.include_launch_description(
    IncludeLaunchDescription(AnyLaunchDescriptionSource(sys.argv[1]), launch_arguments=arguments))
sys.exit(service.run())
"""


@dataclass(frozen=True)
class Stop:
    exit_code: int | None
    seconds_to_exit: float
    problem_lines: list[str]  # every line of the output that is not an INFO log line
    unclean_processes: list[str]  # through the launch file: each process it started that did not exit with 0


def problem_lines(output: str) -> list[str]:
    return [line for line in output.splitlines()
            if line.strip() and not INFO_LINE.search(line) and LAUNCH_INTERRUPTED not in line]


def unclean_processes(launch_output: str) -> list[str]:
    """The processes a launch started (by its output) that did not finish cleanly or still run; one entry saying so
    if it started none."""
    started = LAUNCH_STARTED.findall(launch_output)
    if not started:
        return ["the launch started no process"]
    return [f"{name} (pid {pid})" for name, pid in started
            if LAUNCH_FINISHED_CLEANLY.format(pid=pid) not in launch_output or Path(f"/proc/{pid}").exists()]


def launch_available() -> str | None:
    """None when launch and launch_ros import here, else why not."""
    try:
        import launch  # noqa: F401
        import launch_ros.actions  # noqa: F401
    except ImportError as error:
        return f"launch/launch_ros not installed ({error}); see ../shared/ros-launch/README.md"
    return None


def ament_prefix(directory: Path) -> Path:
    """An ament prefix in ``directory`` holding this checkout's package as a colcon install would: the index
    marker, share/ with package.xml, config/ and launch/, and lib/<package>/ with the executables."""
    share = directory / "share" / PACKAGE
    lib = directory / "lib" / PACKAGE
    for folder in (share, lib, directory / "share" / "ament_index" / "resource_index" / "packages"):
        folder.mkdir(parents=True, exist_ok=True)
    (directory / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE).touch()
    for name in ("package.xml", "config", "launch"):
        (share / name).symlink_to(CHECKOUT / name)
    for name in NODE_EXECUTABLES:
        (lib / name).symlink_to(BIN_DIR / name)
    return directory


@contextlib.contextmanager
def package_on_ament_path() -> Iterator[Path]:
    """This checkout's package first on AMENT_PREFIX_PATH (launched processes inherit it) while inside: an
    ament_prefix in a temporary directory."""
    previous = os.environ.get("AMENT_PREFIX_PATH")
    with tempfile.TemporaryDirectory(prefix="hailo_whisper_prefix_") as directory:
        prefix = ament_prefix(Path(directory))
        os.environ["AMENT_PREFIX_PATH"] = os.pathsep.join(
            [str(prefix), *filter(None, (previous or "").split(os.pathsep))])
        try:
            yield prefix
        finally:
            if previous is None:
                os.environ.pop("AMENT_PREFIX_PATH")
            else:
                os.environ["AMENT_PREFIX_PATH"] = previous


def ros2_launch(launch_file: Path = LAUNCH_FILE, /, *, venv: Path | None = None, env: Mapping[str, str] | None = None,
                **arguments: str) -> NodeProcess:
    """`ros2 launch hailo_whisper_ros speech_recognition.launch.py name:=value...` in a process of its own (the
    package must be on AMENT_PREFIX_PATH: package_on_ament_path, or a sourced workspace); with ``venv``, ``env``:
    that venv's launch, as NodeProcess runs its executables."""
    python = executable("python", venv) if venv else sys.executable
    return NodeProcess("launch", command=[python, "-c", LAUNCH_SCRIPT, str(launch_file),
                                          *(f"{name}:={value}" for name, value in arguments.items())],
                       venv=venv, env=env)


def start_speech_recognition(via_launch: bool) -> NodeProcess:
    if not via_launch:
        return NodeProcess("speech_recognition", "--params-file", str(BASE_PARAMETERS))
    # CPU only: the launch file's default overlay is the Hailo one, which this stop check is not about.
    return ros2_launch(params_file=str(BASE_PARAMETERS))


def stop_once(listener: Listener, via_launch: bool, delay_s: float) -> Stop:
    """Start speech_recognition, wait for it to transcribe (a result arrives), wait ``delay_s`` more, SIGINT."""
    with listener.lock:
        results_before = len(listener.events)
    process = start_speech_recognition(via_launch)
    try:
        if not process.wait_for_output(READY, READY_TIMEOUT_S):
            raise HailoWhisperError(f"speech_recognition not ready in {READY_TIMEOUT_S:g} s:\n{process.log}")
        if not listener.wait_for(lambda: len(listener.events) > results_before or not process.running(),
                                 WORKING_TIMEOUT_S) or not process.running():
            raise HailoWhisperError(f"no result within {WORKING_TIMEOUT_S:g} s of ready:\n{process.log}")
        listener.wait_for(lambda: not process.running(), delay_s)
    finally:
        started = time.monotonic()
        exit_code = process.stop()
        seconds = time.monotonic() - started
    return Stop(exit_code, seconds, problem_lines(process.log), unclean_processes(process.log) if via_launch else [])


def stops(runs: int, via_launch: bool, seed: int = 13) -> Iterator[Stop]:
    """``runs`` stops of speech_recognition while a wav_source plays real speech to it in a loop at real time."""
    from hailo_whisper_ros.evaluation.datasets import SPEECH_SAMPLES

    if via_launch and (reason := launch_available()):
        raise HailoWhisperError(reason)
    executable("speech_recognition")
    delays = random.Random(seed)
    with package_on_ament_path() if via_launch else contextlib.nullcontext(), local_context() as context:
        source = NodeProcess("wav_source", "-p", f"files:=['{SPEECH_SAMPLES / 'jfk' / 'jfk.flac'}']",
                             "-p", "loop:=true", "-p", "gap_s:=0.5")
        listener = Listener(context)
        try:
            for _ in range(runs):
                yield stop_once(listener, via_launch, delays.uniform(*STOP_DELAY_S))
        finally:
            listener.close()
            source.stop()


def report_line(index: int, stop: Stop) -> str:
    problems = "".join(f"\n    | {line}" for line in stop.problem_lines)
    unclean = f", not finished cleanly: {', '.join(stop.unclean_processes)}" if stop.unclean_processes else ""
    return f"run {index:2d}: exit {stop.exit_code}, {stop.seconds_to_exit:.2f} s to exit{unclean}, " \
           f"{len(stop.problem_lines)} problem line(s){problems}"


def passed(stop: Stop, max_seconds: float) -> bool:
    return (stop.exit_code == 0 and stop.seconds_to_exit <= max_seconds and not stop.problem_lines
            and not stop.unclean_processes)


def summary(results: Sequence[Stop], max_seconds: float) -> str:
    good = sum(passed(stop, max_seconds) for stop in results)
    times = sorted(stop.seconds_to_exit for stop in results)
    return (f"{good} of {len(results)} stops clean (exit 0, no problem line, <= {max_seconds:g} s); "
            f"time to exit median {times[len(times) // 2]:.2f} s, max {times[-1]:.2f} s")
