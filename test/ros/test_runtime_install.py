"""What a robot installs is all the nodes need: in a venv of requirements.txt, the ROS 2 wheels and the build tools
of the interface packages, without the test requirements (runtime_venv.py), the installed speech_recognition and
wav_source transcribe a clip that ships in the installed package, over real DDS to this process (which runs in the
test venv), and `hailo-whisper export` makes the model as the nodes do on their first use.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from ros_harness import REPO, Listener, NodeProcess, executable, wav_source
from runtime_venv import CLIP, MAX_WER, run_python, runtime_venv

from hailo_whisper_ros.evaluation.datasets import load_dataset
from hailo_whisper_ros.evaluation.ros_session import venv_environment
from hailo_whisper_ros.evaluation.scoring import word_errors

# From requirements-test.txt, each of which the package's code could be tempted to import at run time. (pytest is
# not among them: colcon-core requires it, in requirements-build.txt as in Debian's python3-colcon-core.)
TEST_ONLY_MODULES = ("faster_whisper", "ctranslate2", "hypothesis", "matplotlib", "pywhispercpp")
NAMESPACE = "runtime_install"
READY = "ready: encoder"
READY_TIMEOUT_S = 120
PLAY_TIMEOUT_S = 60
RESULT_TIMEOUT_S = 60
EXPORT_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def venv() -> Path:
    return runtime_venv()


@pytest.fixture(scope="module")
def installed_package(venv) -> Path:
    """The folder of the package as installed in the runtime venv."""
    result = run_python(venv, "import hailo_whisper_ros; print(hailo_whisper_ros.__file__)")
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip()).parent


def test_the_package_is_installed_not_editable_and_without_the_test_requirements(venv, installed_package):
    assert installed_package.is_relative_to(venv), installed_package
    for module in TEST_ONLY_MODULES:
        result = run_python(venv, f"import {module}")
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, f"{module} imports in {venv}"


def test_the_installed_nodes_transcribe_a_shipped_clip(venv, installed_package, ros_context):
    clip = next(c for c in load_dataset(installed_package / "speech_samples" / CLIP[0]) if c.id == CLIP[1])
    config = venv / "share" / "hailo_whisper_ros" / "config" / "speech_recognition.yaml"  # setup.py's data_files
    namespace = ("-r", f"__ns:=/{NAMESPACE}")
    nodes = NodeProcess("speech_recognition", "--params-file", str(config), *namespace, venv=venv)
    listener = Listener(ros_context, NAMESPACE)
    try:
        assert nodes.wait_for_output(READY, READY_TIMEOUT_S), nodes.log
        source = wav_source([clip.audio_path], 4.0, 1.5, *namespace, venv=venv)
        try:
            assert source.wait(timeout=PLAY_TIMEOUT_S) == 0, source.log
        finally:
            source.stop()

        def transcript() -> str:
            return " ".join(listener.finals)

        # Until the finals make the sentence: the VAD may cut it in two, and a busy machine may take a while over
        # the second part (the audio subscriber's segmenting shows in no queue that caught_up could wait on).
        transcribed = listener.wait_for(lambda: word_errors([clip.reference], [transcript()]).wer <= MAX_WER,
                                        timeout=RESULT_TIMEOUT_S)
        with listener.lock:
            assert transcribed, f"{transcript()!r} for {clip.reference!r}\n{nodes.log}"
    finally:
        listener.close()
        assert nodes.stop() == 0, nodes.log


def test_the_export_of_first_use_runs_without_the_test_requirements(venv):
    """What the nodes do when no model directory is given (the README's robot route), made by the runtime venv: the
    files of `make setup`'s export, from the same weights and exporter version (its stamp says so)."""
    reference = Path(os.environ.get("HAILO_WHISPER_MODEL_DIR", REPO / "models" / "tiny.en"))
    if not (reference / "export_stamp.json").is_file():
        pytest.skip(f"no export in {reference} to compare with: run `make setup`")
    with tempfile.TemporaryDirectory(prefix="runtime_export_") as folder:  # 450 MB: not kept after the run
        result = subprocess.run([executable("hailo-whisper", venv), "export", "tiny.en", "--out", folder],
                                capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S, cwd=folder,
                                env=venv_environment(venv))
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
        exported = json.loads((Path(folder) / "export_stamp.json").read_text())
    assert exported == json.loads((reference / "export_stamp.json").read_text())
