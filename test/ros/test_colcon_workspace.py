"""A colcon workspace built from a clean copy of the repository, as on a robot: the tracked files in src/, `colcon
build` of this package and every interface package under interfaces/ (colcon-package-selection and colcon-bash from
requirements-build.txt), `source install/setup.bash`, and then the package found through the ament index and the
installed launch file starting the installed executables, which transcribe a clip installed with the package. The
runtime venv (runtime_venv.py: requirements.txt, the ROS wheels, the build tools, no test requirements) plays the ROS
install the workspace overlays and the pip install of requirements.txt a robot makes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from ros_harness import REPO, Listener
from runtime_venv import CLIP, MAX_WER, run_python, runtime_venv

from hailo_whisper_ros.evaluation import shutdowns
from hailo_whisper_ros.evaluation.datasets import load_dataset
from hailo_whisper_ros.evaluation.ros_session import venv_environment
from hailo_whisper_ros.evaluation.scoring import word_errors

BUILD_TIMEOUT_S = 900  # two interface packages and this one on 2 shared cores
READY_TIMEOUT_S = 150
TRANSCRIPT_TIMEOUT_S = 90  # the launch's wav_source plays the 8 s clip in a loop: the first whole play, decoded
MAX_FINALS_A_PLAY = 4  # the clip is one sentence: the VAD may cut it at a pause
INTERFACE_PACKAGES = sorted(path.parent.name for path in (REPO / "interfaces").glob("*/package.xml"))
# colcon does not look inside a package for more packages: interfaces/ is a base path of its own.
BASE_PATHS = "--base-paths src src/hailo_whisper_ros/interfaces"


def run(venv: Path, command: str, cwd: Path, timeout: float) -> str:
    """``command`` in bash in ``cwd`` with ``venv`` as the underlay, as a sourced /opt/ros/<distro> is on a robot
    (its bin/ on PATH for colcon and cmake); its output, which the failure message shows if it fails."""
    underlay = f'export PATH="{venv}/bin:$PATH" AMENT_PREFIX_PATH="{venv}" CMAKE_PREFIX_PATH="{venv}" && '
    result = subprocess.run(["bash", "-c", underlay + command], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, env=venv_environment(venv))
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def venv() -> Path:
    return runtime_venv()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, venv):
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
    run(venv, f"colcon build {BASE_PATHS} --packages-up-to hailo_whisper_ros " + " ".join(INTERFACE_PACKAGES)
        + f" --cmake-args -DPython3_EXECUTABLE={venv / 'bin' / 'python'} -DBUILD_TESTING=OFF", root, BUILD_TIMEOUT_S)
    return root


def sourced(workspace: Path, venv: Path, command: str) -> str:
    return run(venv, f"source install/setup.bash && {command}", workspace, timeout=120)


def best_wer(reference: str, finals: list[str]) -> float:
    """The lowest WER against ``reference`` of a run of consecutive ``finals``: of the loop's plays, a whole one."""
    runs = (finals[start:end] for start in range(len(finals))
            for end in range(start + 1, min(start + MAX_FINALS_A_PLAY, len(finals)) + 1))
    return min((word_errors([reference], [" ".join(run)]).wer for run in runs), default=1.0)


def test_colcon_builds_the_package_and_every_interface_package(workspace):
    installed = sorted(path.name for path in (workspace / "install").iterdir() if path.is_dir())
    assert installed == sorted(["hailo_whisper_ros", *INTERFACE_PACKAGES])
    for package in installed:
        assert (workspace / "install" / package / "share" / package / "package.xml").is_file(), package


def test_the_sourced_workspace_resolves_the_package_share_and_its_python_from_the_install(workspace, venv):
    located = sourced(workspace, venv, "python -c '"
                      "from ament_index_python.packages import get_package_share_directory as share; "
                      "import hailo_whisper_ros, audio_common_msgs.msg; "
                      "print(share(\"hailo_whisper_ros\")); print(hailo_whisper_ros.__file__); "
                      "print(audio_common_msgs.msg.__file__)'").split()
    install = workspace / "install"
    assert located[0] == str(install / "hailo_whisper_ros" / "share" / "hailo_whisper_ros")
    assert all(Path(path).is_relative_to(install) for path in located[1:]), located
    assert (Path(located[0]) / "launch" / "speech_recognition.launch.py").is_file()


def test_the_installed_launch_file_starts_the_installed_executables_which_transcribe_and_end_cleanly_on_ctrl_c(
        workspace, venv, ros_context):
    if run_python(venv, "import launch, launch_ros.actions").returncode != 0:
        pytest.skip(f"launch/launch_ros are not in {venv}: no ../shared/ros-launch (see its README.md)")
    environment = dict(entry.split("=", 1) for entry in sourced(workspace, venv, "env -0").split("\0") if "=" in entry)
    install = workspace / "install" / "hailo_whisper_ros"
    share = install / "share" / "hailo_whisper_ros"
    # The clip as colcon installed it with the package (package_data).
    samples, = install.glob(f"lib/python*/site-packages/hailo_whisper_ros/speech_samples/{CLIP[0]}")
    clip = next(c for c in load_dataset(samples) if c.id == CLIP[1])
    process = shutdowns.ros2_launch(share / "launch" / "speech_recognition.launch.py", venv=venv, env=environment,
                                    params_file=str(share / "config" / "speech_recognition.yaml"),
                                    namespace="colcon_ws", audio_source="file", wav_file=str(clip.audio_path))
    listener = Listener(ros_context, "colcon_ws")
    try:
        assert process.wait_for_output("ready: encoder onnx", READY_TIMEOUT_S), process.log
        assert listener.wait_for(lambda: best_wer(clip.reference, listener.finals) <= MAX_WER, TRANSCRIPT_TIMEOUT_S), \
            f"{listener.finals}\n{process.log}"
    finally:
        listener.close()
        assert process.stop() == 0, process.log
    # launch_ros found the executables where the install put them (the venv's own are registered elsewhere).
    lib = install / "lib" / "hailo_whisper_ros"
    assert os.access(lib / "speech_recognition", os.X_OK) and os.access(lib / "wav_source", os.X_OK)
    assert shutdowns.unclean_processes(process.log) == [], process.log
