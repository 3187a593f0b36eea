"""The core runs without ROS: importing every core module loads neither rclpy nor, lazily kept, hailo_platform."""

import subprocess
import sys

IMPORT_EVERY_CORE_MODULE = """
import importlib, pkgutil, sys
import hailo_whisper_ros.core as core
names = [info.name for info in pkgutil.iter_modules(core.__path__)]
for name in names:
    importlib.import_module(f"hailo_whisper_ros.core.{name}")
print(",".join(names))
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in ("rclpy", "hailo_platform"))))
"""


def test_core_modules_import_without_rclpy_or_hailo_platform():
    completed = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_CORE_MODULE], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    imported, forbidden = completed.stdout.splitlines()
    mine = {"recognizer", "decoder", "decoding", "encoders", "hailo", "tokenizer", "evaluation"}
    assert mine <= set(imported.split(","))
    assert forbidden == "", f"the core imported {forbidden}"
