"""The ROS package metadata is valid and the tree holds no generated files."""

import hashlib
import subprocess
from pathlib import Path

from catkin_pkg.package import parse_package

REPO = Path(__file__).resolve().parents[2]


def test_package_xml_is_valid_format_3_with_the_runtime_dependencies():
    package = parse_package(str(REPO))
    assert package.name == "hailo_whisper_ros"
    assert package.package_format == 3
    assert package.get_build_type() == "ament_python"
    exec_depends = {dep.name for dep in package.exec_depends}
    assert {"rclpy", "std_msgs", "std_srvs", "diagnostic_msgs", "audio_common_msgs", "hailo_whisper_msgs",
            "lifecycle_msgs"} <= exec_depends


def test_every_interface_package_is_one_a_workspace_builds():
    # A workspace names interfaces/ as a base path (test/ros/test_colcon_workspace.py): nothing may hide them.
    assert not list((REPO / "interfaces").rglob("COLCON_IGNORE"))
    packages = {parse_package(str(path.parent)).name for path in (REPO / "interfaces").glob("*/package.xml")}
    assert {"audio_common_msgs", "hailo_whisper_msgs"} <= packages


# Binary files that ship as they are, each with a README beside it naming its origin, licence and sha256.
VENDORED = ("hailo_whisper_ros/core/silero_vad/silero_vad_v6.onnx",)


def test_no_generated_file_is_tracked():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    generated_prefixes = (".venv/", ".venv-", "build/", "install/", "log/", "models/")
    generated_suffixes = (".onnx", ".hef", ".bin", ".pyc", ".so", ".npy")
    offenders = [p for p in tracked if (p.startswith(generated_prefixes) or p.endswith(generated_suffixes))
                 and p not in VENDORED]
    assert not offenders, offenders


def test_each_vendored_file_is_documented_with_its_checksum():
    for relative in VENDORED:
        path = REPO / relative
        assert hashlib.sha256(path.read_bytes()).hexdigest() in (path.parent / "README.md").read_text(), relative


def test_the_shipped_speech_samples_are_complete_small_and_documented():
    from hailo_whisper_ros.evaluation.datasets import SPEECH_SAMPLES, load_dataset

    clips = load_dataset(SPEECH_SAMPLES)  # ALL.tsv
    assert len(clips) >= 20 and all(clip.audio_path.is_file() and clip.reference for clip in clips)
    # The set folders' transcripts.tsv files list the same clips with the same references as ALL.tsv.
    in_sets = [c for folder in sorted(p for p in SPEECH_SAMPLES.iterdir() if p.is_dir()) for c in load_dataset(folder)]
    assert sorted((c.audio_path, c.reference) for c in in_sets) == sorted((c.audio_path, c.reference) for c in clips)
    size = sum(path.stat().st_size for path in SPEECH_SAMPLES.rglob("*") if path.is_file())
    assert size < 5 * 2**20, f"the samples hold {size / 2**20:.1f} MB: keep them to a few MB"
    sources = (SPEECH_SAMPLES / "SOURCES.md").read_text()
    for folder in {clip.audio_path.parent.name for clip in clips}:
        assert f"`{folder}`" in sources, f"SOURCES.md does not say where {folder}/ comes from"
    # Installed with the package (setup.py package_data), so the demo finds them after a colcon build too.
    assert "speech_samples/*/*" in (REPO / "setup.py").read_text()
