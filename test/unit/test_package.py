"""The ROS package metadata is valid and the tree holds no generated files."""

import subprocess
from pathlib import Path

from catkin_pkg.package import parse_package

REPO = Path(__file__).resolve().parents[1]


def test_package_xml_is_valid_format_3_with_the_runtime_dependencies():
    package = parse_package(str(REPO))
    assert package.name == "hailo_whisper_ros"
    assert package.package_format == 3
    assert package.get_build_type() == "ament_python"
    exec_depends = {dep.name for dep in package.exec_depends}
    assert {"rclpy", "std_msgs", "std_srvs", "diagnostic_msgs", "audio_common_msgs"} <= exec_depends


def test_vendored_interfaces_are_hidden_from_colcon_crawls():
    assert (REPO / "interfaces" / "COLCON_IGNORE").is_file()
    assert parse_package(str(REPO / "interfaces" / "audio_common_msgs")).name == "audio_common_msgs"


def test_no_generated_file_is_tracked():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    generated_prefixes = (".venv/", "build/", "install/", "log/", "models/")
    generated_suffixes = (".onnx", ".hef", ".bin", ".pyc", ".so", ".npy")
    offenders = [p for p in tracked if p.startswith(generated_prefixes) or p.endswith(generated_suffixes)]
    assert not offenders, offenders
