"""launch/speech_recognition.launch.py launched for real, as `ros2 launch` launches it (a LaunchService in a process
of its own, the package found through the ament index): in its default layout (three processes) with its wav_source
and the CPU configuration it transcribes, composed with its microphone on a real PulseAudio server
(test/pulse_server.py) it transcribes what is played there, in the composed layout with its default parameters (the
Hailo overlay) on this machine without a device it falls back to the CPU.
test_shutdown_and_fallback.py stops it with Ctrl-C; test_colcon_workspace.py launches it from a colcon install.
launch_pytest's plugin fails on pytest 9 (pytest.ini), so the launches are the evaluation's `ros2_launch`.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from hailo_whisper_ros.evaluation import shutdowns

if reason := shutdowns.launch_available():
    pytest.skip(reason, allow_module_level=True)

from ament_index_python.packages import get_package_prefix, get_package_share_directory  # noqa: E402
from rcl_interfaces.srv import GetParameters  # noqa: E402
from ros_harness import REPO, Listener, NodeProcess  # noqa: E402

from hailo_whisper_ros.core.text import normalise  # noqa: E402
from hailo_whisper_ros.evaluation.datasets import SPEECH_SAMPLES  # noqa: E402
from hailo_whisper_ros.ros import diagnostics  # noqa: E402
from hailo_whisper_ros.ros.nodes import microphone  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pulse_server  # noqa: E402

JFK_WORDS = "ask what you can do for your country"  # the last utterance the VAD cuts jfk.flac into
HAILO_YAML_HEF = "/usr/local/share/hailo_whisper/tiny.en-whisper-encoder-10s.hef"
FIRST_RESULT_TIMEOUT_S = 150.0  # the model loads and warms up first, on 2 cores shared with other tests


@pytest.fixture(scope="module")
def package_prefix():
    """This checkout's package on AMENT_PREFIX_PATH, as a sourced workspace has it, for FindPackageShare."""
    with shutdowns.package_on_ament_path() as prefix:
        yield prefix


@pytest.fixture(scope="module")
def model_link(tmp_path_factory):
    """The exported model under a path of its own, to see the model_dir argument reach the recognizer."""
    link = tmp_path_factory.mktemp("launch_model") / "tiny.en"
    link.symlink_to(os.environ.get("HAILO_WHISPER_MODEL_DIR", REPO / "models" / "tiny.en"))
    return link


@pytest.fixture
def launched(package_prefix):
    """launched(name=value, ...): the launch file with these arguments; it must end cleanly on Ctrl-C after the
    test (exit 0, every process it started finished cleanly)."""
    processes: list[NodeProcess] = []

    def start(**arguments: str) -> NodeProcess:
        processes.append(shutdowns.ros2_launch(**arguments))
        return processes[-1]

    yield start
    for process in processes:
        assert process.stop() == 0, process.log
        assert shutdowns.unclean_processes(process.log) == [], process.log


def parameters(listener: Listener, node: str, names: list[str]) -> list:
    """What `ros2 param get` shows: the values of ``names`` on ``node``, through its parameter service."""
    client = listener.node.create_client(GetParameters, f"{node}/get_parameters")
    try:
        assert client.wait_for_service(timeout_sec=30), f"no parameter service on {node}"
        future = client.call_async(GetParameters.Request(names=names))
        assert listener.wait_for(future.done, timeout=10), f"{node}/get_parameters did not answer"
        return future.result().values
    finally:
        listener.node.destroy_client(client)


def test_the_venv_holds_the_package_in_its_ament_index(monkeypatch):
    # What tools/setup.sh registers: FindPackageShare and Node(package=...) resolve in the venv as in a colcon
    # install. (The launches below use a prefix pointing at this checkout, which may not be the venv's.)
    monkeypatch.setenv("AMENT_PREFIX_PATH", sys.prefix)
    share = Path(get_package_share_directory("hailo_whisper_ros"))
    assert (share / "launch" / "speech_recognition.launch.py").is_file()
    assert {"speech_recognition.yaml", "hailo.yaml"} <= {path.name for path in (share / "config").iterdir()}
    lib = Path(get_package_prefix("hailo_whisper_ros")) / "lib" / "hailo_whisper_ros"
    for name in shutdowns.NODE_EXECUTABLES:
        assert os.access(lib / name, os.X_OK), lib / name


def started_executables(process: NodeProcess) -> list[str]:
    """The executables the launch started, by its output ("[recognizer-2]: process started with pid [...]")."""
    return sorted(re.sub(r"-\d+$", "", name) for name, _ in shutdowns.LAUNCH_STARTED.findall(process.log))


def test_launched_with_the_wav_source_and_the_cpu_configuration_it_transcribes(launched, ros_context, model_link):
    process = launched(
        params_file=str(REPO / "config" / "speech_recognition.yaml"), namespace="launched", audio_topic="mic",
        model_dir=str(model_link), encoder="10s", audio_source="file",
        wav_file=str(SPEECH_SAMPLES / "jfk" / "jfk.flac"),
    )
    listener = Listener(ros_context, "launched")
    try:
        # The wav_source plays jfk.flac in a loop on /launched/mic, remapped to the audio subscriber's input.
        assert listener.wait_for(lambda: any(JFK_WORDS in normalise(text) for text in listener.finals),
                                 FIRST_RESULT_TIMEOUT_S), f"{listener.finals}\n{process.log}"
        model_dir, encoder = parameters(listener, "/launched/recognizer", ["model.dir", "model.encoder"])
        assert (model_dir.string_value, encoder.string_value) == (str(model_link), "10s")
        # The default layout: each node in a process of its own.
        assert started_executables(process) == ["audio_subscriber", "recognizer", "transcript_publisher",
                                                "wav_source"], process.log
        status = listener.latest(listener.status_name("recognizer"))
        assert status.values[diagnostics.ENCODER_BACKEND] == "onnx" and str(model_link) in status.values[
            diagnostics.MODEL]
    finally:
        listener.close()


@pytest.fixture
def audio_server():
    """A PulseAudio server of the test's own (set up before the launch, so it goes after it)."""
    with pulse_server.running() as server:
        yield server


def test_launched_with_the_microphone_it_transcribes_what_is_said(audio_server, launched, ros_context, model_link):
    process = launched(
        params_file=str(REPO / "config" / "speech_recognition.yaml"), namespace="launched_mic", composed="true",
        model_dir=str(model_link), encoder="10s", audio_source="microphone", device="pulse",
    )
    listener = Listener(ros_context, "launched_mic")
    try:
        assert process.wait_for_output("ready: encoder", FIRST_RESULT_TIMEOUT_S), process.log
        def capturing() -> bool:
            status = listener.latest(listener.status_name("microphone"))
            return status is not None and float(status.values[microphone.CAPTURED_S]) > 0

        assert listener.wait_for(capturing, 30), process.log
        audio_server.play(SPEECH_SAMPLES / "jfk" / "jfk.flac")
        assert listener.wait_for(lambda: any(JFK_WORDS in normalise(text) for text in listener.finals),
                                 FIRST_RESULT_TIMEOUT_S), f"{listener.finals}\n{process.log}"
        assert started_executables(process) == ["microphone", "speech_recognition"], process.log
    finally:
        listener.close()


def test_launched_composed_with_its_default_hailo_configuration_without_a_device_it_falls_back_to_the_cpu(
        launched, ros_context):
    if Path(HAILO_YAML_HEF).exists():
        pytest.skip(f"{HAILO_YAML_HEF} exists here: this is the test of a machine without it")
    process = launched(namespace="launched_hailo", composed="true")
    listener = Listener(ros_context, "launched_hailo")
    try:
        name = listener.status_name("recognizer")
        assert listener.wait_for(lambda: listener.latest(name) is not None, FIRST_RESULT_TIMEOUT_S), process.log
        level, message, values = listener.latest(name)
        reason = f"encoder: cannot read HEF file {HAILO_YAML_HEF}: No such file or directory"
        assert (level, message) == (ord(diagnostics.WARN), f"CPU fallback: {reason}")
        assert values[diagnostics.FALLBACK_REASON] == reason and values[diagnostics.ENCODER_BACKEND] == "onnx"
        assert started_executables(process) == ["speech_recognition"], process.log
    finally:
        listener.close()


def test_a_server_role_serves_each_robot_role_on_its_own_topics_with_the_lossy_link_profile(
        launched, ros_context, model_link):
    server = launched(params_file=str(REPO / "config" / "speech_recognition.yaml"), role="server",
                      robots="robot_a,robot_b", model_dir=str(model_link), encoder="10s")
    robot = launched(params_file=str(REPO / "config" / "speech_recognition.yaml"), role="robot", namespace="robot_a",
                     audio_source="file", wav_file=str(SPEECH_SAMPLES / "jfk" / "jfk.flac"))
    listeners = {name: Listener(ros_context, name) for name in ("robot_a", "robot_b")}
    try:
        assert listeners["robot_a"].wait_for(
            lambda: any(JFK_WORDS in normalise(text) for text in listeners["robot_a"].finals),
            FIRST_RESULT_TIMEOUT_S), f"{listeners['robot_a'].finals}\n{server.log}\n{robot.log}"
        robot_b = listeners["robot_b"]
        assert robot_b.wait_for(lambda: robot_b.latest(robot_b.status_name("recognizer")) is not None, 30)
        assert robot_b.finals == [] and robot_b.events == []  # robot_a's speech stays on robot_a's topics
        assert started_executables(server) == ["recognizer", "recognizer", "transcript_publisher",
                                               "transcript_publisher"], server.log
        assert started_executables(robot) == ["audio_subscriber", "wav_source"], robot.log
        # Each node loads the profile of its Fast DDS (2 or 3) from the package's config/, and Fast DDS parses it.
        profiles = [bytes(Path(get_package_share_directory("hailo_whisper_ros"), "config", name))
                    for name in ("two_hosts_fastdds.xml", "two_hosts_fastdds2.xml")]
        for process in (server, robot):
            assert "XMLPARSER" not in process.log, process.log
            for _, pid in shutdowns.LAUNCH_STARTED.findall(process.log):
                environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                assert {b"FASTDDS_DEFAULT_PROFILES_FILE=" + profile for profile in profiles} & set(environment)
    finally:
        for listener in listeners.values():
            listener.close()
