"""Every executable of setup.py and the launch file starts, and the parameter files hold only declared parameters.

Also where launch is not installed (a user's clone): the executables the launch file names and the parameter files it
loads, started the way launch_ros starts them. test_launch_file.py launches the launch file itself.
"""

from __future__ import annotations

import ast
import subprocess
from importlib.metadata import entry_points

import pytest
import rclpy
import yaml
from rcl_interfaces.srv import ListParameters
from rclpy.executors import SingleThreadedExecutor
from ros_harness import REPO, NodeProcess, executable, wait_until

NODE_EXECUTABLES = {  # executable -> the nodes it runs
    "audio_subscriber": ["audio_subscriber"],
    "recognizer": ["recognizer"],
    "transcript_publisher": ["transcript_publisher"],
    "speech_recognition": ["audio_subscriber", "recognizer", "transcript_publisher"],
    "wav_source": ["wav_source"],
    "microphone": ["microphone"],  # started on a real audio server by test_microphone.py
}
NEEDS_AN_AUDIO_SERVER = {"microphone"}
LAUNCH_FILE = REPO / "launch" / "speech_recognition.launch.py"
PARAMETER_FILES = ["speech_recognition.yaml", "hailo.yaml"]  # the base file, then the overlay
ROS_OWN_PARAMETERS = {"use_sim_time", "start_type_description_service"}  # declared by rclpy for every node


def console_scripts() -> set[str]:
    return {ep.name for ep in entry_points(group="console_scripts") if ep.value.startswith("hailo_whisper_ros.")}


def launch_file_executables() -> set[str]:
    tree = ast.parse(LAUNCH_FILE.read_text())
    return {
        keyword.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for keyword in node.keywords
        if keyword.arg == "executable" and isinstance(keyword.value, ast.Constant)
    }


def test_setup_py_and_launch_file_name_the_same_known_executables():
    assert console_scripts() == set(NODE_EXECUTABLES) | {"hailo-whisper"}
    assert launch_file_executables() <= set(NODE_EXECUTABLES)
    # The launch file's default parameter file and the installed data files exist.
    for name in PARAMETER_FILES:
        assert (REPO / "config" / name).is_file()
    assert 'CONFIG, "hailo.yaml"' in LAUNCH_FILE.read_text()


def test_hailo_whisper_command_starts():
    result = subprocess.run([executable("hailo-whisper"), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for command in ("export", "pipeline", "compare", "caption"):
        assert command in result.stdout


@pytest.fixture
def graph_probe(ros_context):
    node = rclpy.create_node("executables_probe", context=ros_context)
    yield node
    node.destroy_node()


def wait_for_nodes(probe, names: list[str], timeout: float = 90.0) -> bool:
    return wait_until(lambda: set(names) <= set(probe.get_node_names()), timeout, poll_s=0.2)


def declared_parameters(probe, node_name: str) -> set[str]:
    client = probe.create_client(ListParameters, f"/{node_name}/list_parameters")
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(ListParameters.Request())
    executor = SingleThreadedExecutor(context=probe.context)
    executor.add_node(probe)
    executor.spin_until_future_complete(future, timeout_sec=10)
    executor.remove_node(probe)
    probe.destroy_client(client)
    return set(future.result().result.names)


@pytest.mark.parametrize("name", sorted(set(NODE_EXECUTABLES) - NEEDS_AN_AUDIO_SERVER))
def test_each_node_executable_starts_and_stops_cleanly(name, graph_probe, speech_samples):
    args = ["--params-file", str(REPO / "config" / "speech_recognition.yaml")]
    if name == "wav_source":
        args = ["-p", f"files:=['{speech_samples / 'jfk' / 'jfk.flac'}']", "-p", "loop:=true"]
    process = NodeProcess(name, *args)
    try:
        assert wait_for_nodes(graph_probe, NODE_EXECUTABLES[name]), process.log
        if "recognizer" in NODE_EXECUTABLES[name]:
            assert process.wait_for_output("ready: encoder", timeout=60), process.log
        assert process.process.poll() is None, process.log
    finally:
        assert process.stop() == 0, process.log


@pytest.mark.parametrize("parameter_file", PARAMETER_FILES)
def test_every_parameter_in_the_yaml_files_is_declared(parameter_file, graph_probe, tmp_path):
    path = REPO / "config" / parameter_file
    # As the launch file loads them: the base file, then the overlay (the base file alone is the CPU set-up).
    args = ["--params-file", str(REPO / "config" / PARAMETER_FILES[0]), "--params-file", str(path)]
    if parameter_file == "hailo.yaml":
        # No NPU and no hailo_platform here: a HEF file that exists makes the node take the CPU fallback path.
        hef = tmp_path / "encoder.hef"
        hef.write_bytes(b"not a real HEF")
        args += ["-p", f"recognizer:model.encoder_file:={hef}"]
    process = NodeProcess("speech_recognition", *args)
    try:
        nodes = ["audio_subscriber", "recognizer", "transcript_publisher"]
        assert wait_for_nodes(graph_probe, nodes), process.log
        assert process.wait_for_output("ready: encoder", timeout=60), process.log
        sections = yaml.safe_load(path.read_text())
        for section, content in sections.items():
            node_name = section.rsplit("/", 1)[-1]
            in_file = set(content["ros__parameters"])
            declared = declared_parameters(graph_probe, node_name)
            undeclared = in_file - declared
            assert not undeclared, f"{parameter_file}: {node_name} does not declare {sorted(undeclared)}"
            if parameter_file == PARAMETER_FILES[0]:  # the base file lists every parameter the node declares
                missing = declared - in_file - ROS_OWN_PARAMETERS
                assert not missing, f"{parameter_file}: {node_name} declares {sorted(missing)}, not in the file"
        if parameter_file == "hailo.yaml":
            assert "hailo_platform" in process.log and "running on the CPU" in process.log, process.log
    finally:
        assert process.stop() == 0, process.log
