"""The microphone node on a real audio server: PulseAudio from the OS packages with a null sink (test/pulse_server.py),
real speech clips played into it with `paplay`, the node recording the sink's monitor through PortAudio and ALSA's
pulse plugin, and the composed speech_recognition process transcribing what it publishes, over real DDS.

Then what goes wrong on a robot: the node's process stalled while the server keeps producing (the audio of that
time is lost and counted), and the audio server stopped mid-clip and started again (a WARN, attempts to reopen,
capture resumed, the next clip transcribed). A device that does not exist ends the node with the list of devices.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
from ros_harness import Listener, NodeProcess

from hailo_whisper_ros.evaluation.datasets import SPEECH_SAMPLES, load_dataset
from hailo_whisper_ros.evaluation.scoring import word_errors
from hailo_whisper_ros.ros import diagnostics
from hailo_whisper_ros.ros.nodes import microphone

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pulse_server  # noqa: E402

if reason := pulse_server.missing():
    pytest.skip(reason, allow_module_level=True)

CLIPS = {clip.id: clip for clip in load_dataset(SPEECH_SAMPLES / "librispeech_testclean_fakebob61")}
FIRST_CLIPS = ("61-70968-0004", "61-70968-0016", "61-70968-0060")
CLIP_AFTER_RECOVERY = "61-70968-0040"
QUIET_S = 2.5  # no result for this long after a clip: its finals are out (the VAD waits 0.6 s of silence)
RESULT_TIMEOUT_S = 60.0
STALL_S = 5.0  # the node's process stopped for this long
STALL_FORMAT = {"sample_rate": 192000, "channels": 2, "sample_format": "F32LE"}  # the most bytes a second
# What the server keeps for the stalled node: its record buffer, 2.7 s of STALL_FORMAT (47 s of 44.1 kHz S16 mono).
SERVER_BUFFER_S = pulse_server.RECORD_BUFFER_BYTES / (STALL_FORMAT["sample_rate"] * STALL_FORMAT["channels"] * 4)


@pytest.fixture(scope="module")
def audio_server():
    with pulse_server.running() as server:
        yield server


@pytest.fixture(scope="module")
def mic(audio_server):
    """The microphone node on ALSA's pulse device (PULSE_SOURCE: the null sink's monitor); must exit cleanly."""
    process = NodeProcess("microphone", "-p", "device:=pulse")
    assert process.wait_for_output("capturing from pulse", timeout=30), process.log
    yield process
    assert process.stop() == 0, process.log


@pytest.fixture(scope="module")
def listener(ros_context, mic, speech_recognition):
    listener = Listener(ros_context)
    try:
        yield listener
    finally:
        listener.close()


def mic_status(listener: Listener, since: float = 0.0):
    return listener.latest(listener.status_name("microphone"), since)


def mic_value(listener: Listener, name: str) -> float:
    status = mic_status(listener)
    return -1.0 if status is None else float(status.values[name])


def wait_for_capture(listener: Listener) -> None:
    """Until the microphone reports audio captured and the audio subscriber its publisher matched."""
    def flowing() -> bool:
        subscriber = listener.latest(listener.status_name("audio_subscriber"), since=time.monotonic() - 1.5)
        return (mic_value(listener, microphone.CAPTURED_S) > 0 and subscriber is not None
                and int(subscriber.values[diagnostics.AUDIO_PUBLISHERS]) >= 1)

    assert listener.wait_for(flowing, 30), listener.latest_statuses()


def say(audio_server, listener: Listener, clip_id: str) -> str:
    """Plays the clip into the sink once the results of what came before are out; the finals that came for it,
    joined."""
    recognizer = listener.status_name("recognizer")

    def quiet(since: float) -> bool:
        status = listener.latest(recognizer, since=since)
        return (status is not None and status.values[diagnostics.TRANSCRIBING] == "False"
                and time.monotonic() - listener.last_event_arrival >= QUIET_S)

    waited = time.monotonic()
    assert listener.wait_for(lambda: quiet(waited), RESULT_TIMEOUT_S), listener.finals[-3:]
    before = len(listener.finals)
    started = time.monotonic()
    audio_server.play(CLIPS[clip_id].audio_path)
    assert listener.wait_for(lambda: len(listener.finals) > before and quiet(started), RESULT_TIMEOUT_S), (
        clip_id, listener.finals[before:])
    return " ".join(listener.finals[before:])


def test_clips_played_into_the_audio_server_are_transcribed(audio_server, mic, listener):
    wait_for_capture(listener)
    hypotheses = [say(audio_server, listener, clip_id) for clip_id in FIRST_CLIPS]
    wer = word_errors([CLIPS[clip_id].reference for clip_id in FIRST_CLIPS], hypotheses).wer
    print(f"\nWER of {len(FIRST_CLIPS)} clips through PulseAudio and the microphone node: {wer:.1%}: {hypotheses}")
    assert wer <= 0.15, hypotheses
    status = mic_status(listener)
    assert status.level == ord(diagnostics.OK) and status.values[microphone.DEVICE] == "pulse", status
    assert int(status.values[microphone.SAMPLE_RATE]) == 44100  # PulseAudio's default rate: the device's own


def test_what_needs_the_stream_opened_again_is_read_only(mic, listener, set_parameter, get_parameter):
    successful, reason = set_parameter(listener, "microphone", "device", "default")
    assert not successful and "read-only" in reason, reason
    assert set_parameter(listener, "microphone", "max_queue_s", 5.0) == (True, "")
    assert get_parameter(listener, "microphone", "max_queue_s") == 5.0
    successful, reason = set_parameter(listener, "microphone", "max_queue_s", 0.0)
    assert not successful and "max_queue_s" in reason, reason  # the core's own range


def accounted_s(status) -> float:
    """The audio the microphone accounts for: captured, and lost by each cause."""
    return sum(float(status.values[name]) for name in (microphone.CAPTURED_S, microphone.GAP_S, microphone.DROPPED_S))


def test_a_stalled_process_loses_audio_and_the_gap_is_counted(audio_server, ros_context):
    """PulseAudio keeps what a stalled client has not read up to its record buffer and drops the rest, and PortAudio
    (ALSA's pulse plugin) is told of no overflow. The microphone sees the step in its timeline: the stall less what
    the server kept; and captured plus lost keeps the clock's pace."""
    process = NodeProcess("microphone", "-r", "__ns:=/stalled", "-p", "device:=pulse",
                          *(arg for name, value in STALL_FORMAT.items() for arg in ("-p", f"{name}:={value}")))
    listener = Listener(ros_context, "stalled")
    name = listener.status_name("microphone")
    try:
        assert listener.wait_for(lambda: mic_value(listener, microphone.CAPTURED_S) > 3.0, 30), process.log
        before_arrival, before = listener.statuses[name]
        os.kill(process.pid, signal.SIGSTOP)  # the audio server keeps producing; nobody reads
        time.sleep(STALL_S)  # the stall itself, not a wait for a condition
        os.kill(process.pid, signal.SIGCONT)
        resumed = time.monotonic()
        assert listener.wait_for(lambda: mic_value(listener, microphone.GAPS) >= 1, 15), process.log
        assert listener.wait_for(lambda: listener.latest(name, since=resumed + 3.0) is not None, 15), process.log
        after_arrival, after = listener.statuses[name]
        print(f"\nafter a {STALL_S} s stall: {after.values}")
        assert float(after.values[microphone.GAP_S]) == pytest.approx(STALL_S - SERVER_BUFFER_S, abs=0.4), after
        # Within what the worker may not have taken from the queue yet when either status was made, on a busy machine.
        assert accounted_s(after) - accounted_s(before) == pytest.approx(after_arrival - before_arrival, abs=0.5)
        assert after.values[microphone.DEVICE_LOSSES] == "0", after  # a stall is no lost device
        assert "audio missing from pulse" in process.log
    finally:
        listener.close()
        assert process.stop() == 0, process.log


def test_the_audio_server_stopped_mid_clip_and_started_again(audio_server, mic, listener):
    wait_for_capture(listener)
    player = audio_server.play(CLIPS[FIRST_CLIPS[0]].audio_path, wait=False)
    assert listener.wait_for(lambda: mic_value(listener, microphone.CAPTURED_S) > 0, 10)
    time.sleep(1.0)  # into the clip: the server goes mid-stream
    audio_server.stop()
    player.wait(timeout=10)
    lost = time.monotonic()
    assert listener.wait_for(lambda: (mic_status(listener, lost) or mic_status(listener)).level == ord(diagnostics.WARN)
                             and mic_value(listener, microphone.REOPEN_ATTEMPTS) >= 1, 15), mic.log
    assert "lost pulse: PortAudio ended the stream" in mic.log and mic.running()
    assert "[WARN]" in next(line for line in mic.log.splitlines() if "lost pulse" in line)

    restarted = time.monotonic()
    audio_server.start()
    assert mic.wait_for_output("capturing again from pulse", 30), mic.log
    recovered_s = time.monotonic() - restarted
    assert listener.wait_for(lambda: (status := mic_status(listener, time.monotonic() - 1.5)) is not None
                             and status.level == ord(diagnostics.OK), 15), mic_status(listener)
    print(f"\ncapture resumed {recovered_s:.1f} s after the server restarted: {mic_status(listener).values}")
    assert mic_value(listener, microphone.RECONNECTS) == 1

    wait_for_capture(listener)
    text = say(audio_server, listener, CLIP_AFTER_RECOVERY)
    assert word_errors([CLIPS[CLIP_AFTER_RECOVERY].reference], [text]).wer <= 0.2, text  # 2 of its 12 words


def test_a_device_that_does_not_exist_ends_the_node_with_the_devices_there_are(audio_server):
    process = NodeProcess("microphone", "-p", "device:=USB PnP Sound Device")
    try:
        assert process.wait(timeout=30) == 2, process.log
    finally:
        process.stop()
    assert "error: no input device matching 'USB PnP Sound Device'; the input devices are: " in process.log
    assert "'pulse' (32 in, 44100 Hz)" in process.log
