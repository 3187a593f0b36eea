"""A real PulseAudio server of the tests' own, for the microphone's tests (test/unit/test_microphone_capture.py,
test/ros/test_microphone.py): started from the OS packages in a temporary XDG_RUNTIME_DIR with a null sink, so that
`paplay` into the sink is what PortAudio records from the sink's monitor (ALSA's `pulse` device, through the
libasound2-plugins pulse plugin). This process and the nodes it starts reach it through PULSE_SERVER and record the
monitor through PULSE_SOURCE, set while the server object is in use.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hailo_whisper_ros.evaluation.ros_session import wait_until

SINK = "hailo_whisper_test"
PACKAGES = "pulseaudio pulseaudio-utils libportaudio2 libasound2-plugins"
START_TIMEOUT_S = 20.0
RECORD_BUFFER_BYTES = 4 * 2**20  # PulseAudio's default record buffer (maxlength), which ALSA's pulse plugin keeps


def missing() -> str | None:
    """Why the microphone cannot be tested here (one line naming what to install), or None."""
    absent = [tool for tool in ("pulseaudio", "pactl", "paplay") if shutil.which(tool) is None]
    try:
        import sounddevice  # noqa: F401 (raises OSError without the PortAudio library)
    except ImportError:
        return "sounddevice missing: pip install -r requirements.txt"
    except OSError:
        absent.append("libportaudio2")
    if not any(Path("/usr/lib").glob("*/alsa-lib/libasound_module_pcm_pulse.so")):
        absent.append("ALSA's pulse plugin")
    if absent:
        return f"{', '.join(absent)} missing: sudo apt-get install {PACKAGES}"
    return None


@contextlib.contextmanager
def running() -> Iterator[PulseServer]:
    """A started server of the test's own, closed afterwards; where none can run, the test skips saying what to
    install."""
    if reason := missing():
        pytest.skip(reason)
    server = PulseServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


class PulseServer:
    """``start()`` and ``stop()`` as often as a test likes, the same socket each time; ``close()`` at the end."""

    def __init__(self):
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="hailo_whisper_pulse_"))
        self.socket = self.runtime_dir / "native"
        self.process: subprocess.Popen | None = None
        self.saved = {name: os.environ.get(name) for name in ("PULSE_SERVER", "PULSE_SOURCE", "PULSE_SINK")}
        os.environ.update(PULSE_SERVER=f"unix:{self.socket}", PULSE_SOURCE=f"{SINK}.monitor", PULSE_SINK=SINK)
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(self.runtime_dir), "HOME": str(self.runtime_dir)}

    def start(self) -> None:
        self.log = open(self.runtime_dir / "pulseaudio.log", "a")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            # No shared memory: what the server keeps for a client that does not read is then its record buffer
            # (RECORD_BUFFER_BYTES), not as much again in memory blocks in flight, so a stall loses a known amount.
            ["pulseaudio", "-n", "--daemonize=no", "--system=false", "--exit-idle-time=-1", "--disallow-exit",
             "--disable-shm=yes", "--log-target=stderr",
             f"--load=module-native-protocol-unix socket={self.socket} auth-anonymous=1",
             f"--load=module-null-sink sink_name={SINK}"],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_until(lambda: self.answers() or self.process.poll() is not None, START_TIMEOUT_S, 0.1):
            raise TimeoutError(f"PulseAudio did not answer within {START_TIMEOUT_S:g} s: {self.log_text()}")
        if self.process.poll() is not None:
            raise RuntimeError(f"PulseAudio exited with {self.process.returncode}: {self.log_text()}")

    def answers(self) -> bool:
        return subprocess.run(["pactl", "info"], env=self.env, capture_output=True, timeout=10).returncode == 0

    def stop(self) -> None:
        """SIGTERM to the server (SIGKILL if it lingers), as a restarting audio server does."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
            self.log.close()
        self.process = None

    def play(self, clip: Path, wait: bool = True) -> subprocess.Popen:
        """``paplay`` of the clip into the null sink, in real time; waited for unless ``wait`` is false."""
        player = subprocess.Popen(["paplay", f"--device={SINK}", str(clip)], env=self.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if wait:
            output, _ = player.communicate(timeout=120)
            assert player.returncode == 0, f"paplay {clip}: {output}"
        return player

    def log_text(self) -> str:
        return (self.runtime_dir / "pulseaudio.log").read_text(errors="replace")[-3000:]

    def close(self) -> None:
        self.stop()
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(self.runtime_dir, ignore_errors=True)
