"""The ROS tests' side of DDS: the package's executables run as real processes and a listener and an audio driver
in the test process, all from evaluation.ros_session (the one launcher and client the commands use too)."""

from __future__ import annotations

from pathlib import Path

from hailo_whisper_ros.evaluation.ros_session import (  # noqa: F401 (the tests import these from here)
    BIN_DIR,
    AudioDriver,
    Listener,
    NodeProcess,
    executable,
    s16le,
    wait_until,
    wav_source,
)

REPO = Path(__file__).resolve().parents[2]
