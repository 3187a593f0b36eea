"""A colcon workspace built from a clean copy of the repository, as on a robot: the tracked files in src/, `colcon
build` of this package and every interface package under interfaces/ (colcon-package-selection and colcon-bash from
requirements-build.txt), `source install/setup.bash`, and then the package found through the ament index and the
installed launch file starting the installed executables. The venv plays the ROS install the workspace overlays.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ros_harness import REPO

from hailo_whisper_ros.evaluation import shutdowns

BUILD_TIMEOUT_S = 900  # two interface packages and this one on 2 shared cores
READY_TIMEOUT_S = 150
INTERFACE_PACKAGES = sorted(path.parent.name for path in (REPO / "interfaces").glob("*/package.xml"))
# colcon does not look inside a package for more packages: interfaces/ is a base path of its own.
BASE_PATHS = "--base-paths src src/hailo_whisper_ros/interfaces"
# The venv is the underlay, as a sourced /opt/ros/<distro> is on a robot (its bin/ on PATH for colcon and cmake).
UNDERLAY = f'export PATH="{Path(sys.executable).parent}:$PATH" AMENT_PREFIX_PATH="{sys.prefix}" ' \
           f'CMAKE_PREFIX_PATH="{sys.prefix}" && '


def run(command: str, cwd: Path, timeout: float) -> str:
    """``command`` in bash in ``cwd``; its output, which the failure message shows if it fails."""
    result = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """src/ holding the tracked files of this checkout (as they are in the work tree), built with colcon."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip(f"{REPO} is not a git checkout: the workspace copies its tracked files")
    root = tmp_path_factory.mktemp("colcon_ws")
    source = root / "src" / "hailo_whisper_ros"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True)
    for relative in filter(None, tracked.stdout.split("\0")):
        if (REPO / relative).is_file():  # a tracked file deleted in the work tree is not part of the copy
            (source / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / relative, source / relative)
    run(UNDERLAY + f"colcon build {BASE_PATHS} --packages-up-to hailo_whisper_ros " + " ".join(INTERFACE_PACKAGES)
        + f" --cmake-args -DPython3_EXECUTABLE={sys.executable} -DBUILD_TESTING=OFF", root, BUILD_TIMEOUT_S)
    return root


def sourced(workspace: Path, command: str) -> str:
    return run(f"{UNDERLAY}source install/setup.bash && {command}", workspace, timeout=120)


def test_colcon_builds_the_package_and_every_interface_package(workspace):
    installed = sorted(path.name for path in (workspace / "install").iterdir() if path.is_dir())
    assert installed == sorted(["hailo_whisper_ros", *INTERFACE_PACKAGES])
    for package in installed:
        assert (workspace / "install" / package / "share" / package / "package.xml").is_file(), package


def test_the_sourced_workspace_resolves_the_package_share_and_its_python_from_the_install(workspace):
    located = sourced(workspace, f"{sys.executable} -c '"
                      "from ament_index_python.packages import get_package_share_directory as share; "
                      "import hailo_whisper_ros, audio_common_msgs.msg; "
                      "print(share(\"hailo_whisper_ros\")); print(hailo_whisper_ros.__file__); "
                      "print(audio_common_msgs.msg.__file__)'").split()
    install = workspace / "install"
    assert located[0] == str(install / "hailo_whisper_ros" / "share" / "hailo_whisper_ros")
    assert all(Path(path).is_relative_to(install) for path in located[1:]), located
    assert (Path(located[0]) / "launch" / "speech_recognition.launch.py").is_file()


def test_the_installed_launch_file_starts_the_installed_executables_and_ends_cleanly_on_ctrl_c(workspace,
                                                                                              monkeypatch):
    if reason := shutdowns.launch_available():
        pytest.skip(reason)
    environment = sourced(workspace, "env -0")
    for name, value in (entry.split("=", 1) for entry in environment.split("\0") if "=" in entry):
        if os.environ.get(name) != value:
            monkeypatch.setenv(name, value)
    share = workspace / "install" / "hailo_whisper_ros" / "share" / "hailo_whisper_ros"
    process = shutdowns.ros2_launch(share / "launch" / "speech_recognition.launch.py",
                                    params_file=str(share / "config" / "speech_recognition.yaml"),
                                    namespace="colcon_ws")
    try:
        assert process.wait_for_output("ready: encoder onnx", READY_TIMEOUT_S), process.log
    finally:
        assert process.stop() == 0, process.log
    # launch_ros found the executables where the install put them (the venv's own are registered elsewhere).
    lib = workspace / "install" / "hailo_whisper_ros" / "lib" / "hailo_whisper_ros"
    assert os.access(lib / "speech_recognition", os.X_OK) and os.access(lib / "wav_source", os.X_OK)
    assert shutdowns.unclean_processes(process.log) == [], process.log
