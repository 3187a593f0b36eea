"""core/microphone.py against a real PulseAudio server (test/pulse_server.py) through PortAudio: the devices it
lists, a device that does not exist, capture of what is played, a lost server and its return; the gap rule of the
timeline on arrival times."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.microphone import (
    GAP_WINDOW_S,
    CaptureFormat,
    MicrophoneCapture,
    MicrophoneOptions,
    Timeline,
    default_input_index,
    input_devices,
    refresh_devices,
    resolve_device,
)
from hailo_whisper_ros.evaluation.datasets import SPEECH_SAMPLES
from hailo_whisper_ros.evaluation.ros_session import wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pulse_server  # noqa: E402

CLIP = SPEECH_SAMPLES / "librispeech_testclean_fakebob61" / "61-70968-0004.flac"


@pytest.fixture(scope="module")
def server():
    with pulse_server.running() as server:
        refresh_devices()  # PortAudio listed the devices when sounddevice was imported, maybe before the server
        yield server


def test_devices_are_found_by_index_and_by_part_of_their_name(server):
    devices = input_devices()
    assert "pulse" in [device.name for device in devices]
    pulse = resolve_device("PULSE", devices, default_input_index())  # case does not matter
    assert resolve_device(str(pulse.index), devices, None) == pulse
    assert resolve_device("", devices, default_input_index()).index == default_input_index()


def test_a_device_that_does_not_exist_is_an_error_listing_the_devices_there_are(server):
    devices = input_devices()
    with pytest.raises(HailoWhisperError) as error:
        resolve_device("USB Audio", devices, default_input_index())
    assert str(error.value).startswith("no input device matching 'USB Audio'; the input devices are: ")
    assert all(str(device) in str(error.value) for device in devices)
    with pytest.raises(HailoWhisperError, match="no input device with index 99;"):
        resolve_device("99", devices, None)


def captured(capture: MicrophoneCapture, chunks: list) -> float:
    chunks.extend(capture.take())
    return capture.counts.captured_s


def test_what_is_played_is_captured_and_a_lost_server_is_reopened(server):
    reports = []
    capture = MicrophoneCapture(MicrophoneOptions(device="pulse", channels=1, sample_rate=16000),
                                report=lambda *report: reports.append(report))
    chunks = []
    try:
        capture.start()
        assert (capture.format.sample_rate, capture.format.channels) == (16000, 1)
        assert wait_until(lambda: captured(capture, chunks) > 0.5, 15)
        chunks.clear()
        player = server.play(CLIP, wait=False)
        assert wait_until(lambda: captured(capture, chunks) and player.poll() is not None, 20)
        samples = np.frombuffer(b"".join(chunk.data for chunk in chunks), "<i2")
        assert np.abs(samples).max() > 3000, "the clip played did not reach the capture"  # speech, not silence
        assert {len(chunk.data) for chunk in chunks} == {320 * 2}  # chunk_ms 20 at 16 kHz, S16LE mono

        server.stop()
        assert wait_until(lambda: capture.status().lost_for_s is not None, 5), reports
        assert wait_until(lambda: capture.counts.reopen_attempts >= 1, 5), reports
        server.start()
        assert wait_until(lambda: capture.status().lost_for_s is None, 20), reports
        before = captured(capture, chunks)
        assert wait_until(lambda: captured(capture, chunks) > before + 0.5, 15), reports
        counts = capture.status().counts
        assert (counts.losses, counts.reconnects, counts.overruns, counts.dropped_chunks) == (1, 1, 0, 0)
        assert [kind for _, kind, _ in reports][:2] == ["device lost", "reopen failed"]
        assert reports[-1][:2] == ("info", "device back")
    finally:
        capture.stop()


def test_the_timeline_counts_audio_missing_but_not_a_stall_that_loses_nothing():
    def feed(arrivals) -> list[float]:
        """Gaps of 20 ms blocks at 1 kHz that arrived at these times."""
        timeline = Timeline(1000)
        return [gap for block, arrival in enumerate(arrivals) if (gap := timeline.add(arrival, 20 * (block + 1)))]

    steady = [i * 0.02 for i in range(200)]  # 4 s of blocks on time
    assert feed(steady) == []
    # Nothing for 0.5 s at 2 s, then the blocks of that time at once: late, none lost.
    assert feed([max(t, 2.5) if 2.0 <= t < 2.5 else t for t in steady]) == []
    # Nothing for 0.5 s at 2 s, and the audio of that time lost.
    gaps = feed([t for t in steady if not 2.0 <= t < 2.5])
    assert len(gaps) == 1 and gaps[0] == pytest.approx(0.5, abs=0.03)
    assert GAP_WINDOW_S < 1.5  # the 4 s hold the windows the rule compares


def test_overflowing_queue_drops_the_oldest_and_counts_it(server):
    capture = MicrophoneCapture(MicrophoneOptions(device="pulse", channels=1, max_queue_s=0.1), report=print)
    try:
        capture.start()
        assert wait_until(lambda: capture.counts.dropped_chunks >= 10, 15)  # nobody takes: the queue holds 0.1 s
        queued = capture.take()
        assert 0.08 <= sum(len(chunk.data) for chunk in queued) / capture.format.bytes_per_second <= 0.1
        assert capture.counts.dropped_s == pytest.approx(capture.counts.dropped_chunks * 0.02, rel=0.01)
    finally:
        capture.stop()



def test_a_block_that_portaudio_flags_with_an_input_overflow_is_counted_and_reported():
    """PortAudio flags a block after an overrun of the device's buffer (an ALSA hw device not read in time). Through
    ALSA's pulse plugin, all this machine has, it never does: the server drops a stalled client's audio without a
    word (test/ros/test_microphone.py measures that loss as a gap). So the stream's callback is handed blocks here as
    PortAudio hands them, with its own flags object."""
    if reason := pulse_server.missing():
        pytest.skip(reason)
    import sounddevice

    reports = []
    capture = MicrophoneCapture(MicrophoneOptions(), report=lambda *report: reports.append(report))
    on_block = capture._callback(CaptureFormat("hw:1,0", 16000, 1, "S16LE"), stream_number=1)
    on_block(bytes(640), 320, None, sounddevice.CallbackFlags())
    on_block(bytes(640), 320, None, sounddevice.CallbackFlags(sounddevice._lib.paInputOverflow))
    assert [chunk.overflow for chunk in capture.take()] == [False, True]
    assert capture.counts.overruns == 1
    assert [(severity, kind) for severity, kind, _ in reports] == [("warn", "overrun")]
