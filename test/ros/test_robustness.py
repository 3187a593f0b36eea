"""Robustness of the running nodes: bad audio from a driver, start-up faults, an inference fault, overload, a soak.

One composed speech_recognition process serves the module. This test process is the audio driver (it publishes raw
AudioData and AudioInfo itself, mistakes included) and the listener. For every kind of bad input the node must stay
up, go on transcribing the real speech sent before and after it, count what it rejected under `rejected <kind>` on
/diagnostics and log each kind of problem once, not once per message.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import psutil
import pytest
import rclpy
from hailo_whisper_msgs.msg import Speech
from ros_harness import AudioDriver, Listener, NodeProcess, executable, s16le

from hailo_whisper_ros.core.audio import resample
from hailo_whisper_ros.core.intake import SpeechEvent
from hailo_whisper_ros.core.text import normalise
from hailo_whisper_ros.core.vad import SpeechAudio, SpeechEnded, SpeechStarted
from hailo_whisper_ros.ros import diagnostics
from hailo_whisper_ros.ros.topics import SPEECH, SPEECH_QOS, to_message

# Short real clips that tiny.en gets (nearly) right, so that hearing one is unmistakable.
CLIPS = [
    "librispeech_testclean_fakebob61/61-70968-0060.flac",  # no thanks i am glad to give you such easy happiness
    "pocketsphinx_librivox/sense_and_sensibility_01_austen_64kb-0930.flac",  # he might even have been made amiable
    "misc_clips/fw_stereo_right_260-123286-0001.flac",  # the horizon seems extremely distant
    "librispeech_testclean_fakebob61/61-70968-0016.flac",  # and then they became vexed and would have snatched...
    "librispeech_testclean_fakebob61/61-70968-0040.flac",  # right willingly for between us we have won the battle...
    "librispeech_testclean_fakebob61/61-70968-0004.flac",  # also there was a stripling page who turned into a maid
    "ljspeech_coqui/LJ001-0013.flac",  # than in the same operations with ugly ones
]
HEARD_RECALL = 0.6  # a final holding this share of a clip's reference words has heard the clip
UNHEARD_RECALL = 0.3  # no final may hold this share of the words of speech that had to be dropped
SILENCE_S = 1.5  # after each clip, so that the VAD ends its utterance
SPEED = 4.0  # the pace of the good speech, times real time
HEARD_TIMEOUT_S = 60.0
S16_RATE = 2 * 16000  # bytes per second of 16 kHz mono S16LE
F32_RATE = 4 * 16000


@pytest.fixture(scope="module")
def clips(sample_clips, sample_audio):
    return [Clip(sample_audio(c), sample_clips[c].reference) for c in CLIPS]


class Clip:
    def __init__(self, audio: np.ndarray, reference: str):
        self.audio = audio  # 16 kHz float32 mono
        self.reference = reference
        self.words = normalise(reference).split()

    def recall(self, text: str) -> float:
        heard = set(normalise(text).split())
        return sum(word in heard for word in self.words) / len(self.words)


def with_silence(audio: np.ndarray, rate: int = 16000) -> np.ndarray:
    return np.concatenate([audio, np.zeros(int(SILENCE_S * rate), np.float32)])


class Session:
    """A node process as seen from the test: the driver publishing to it, the listener, and marks of where a test
    began in the finals and the rejection counters. Every check of what was heard also checks the node is up."""

    def __init__(self, process: NodeProcess, context, namespace: str = "", stamped: bool = False):
        self.process = process
        self.prefix = f"{namespace}/" if namespace else ""
        self.listener = Listener(context, namespace)
        self.driver = AudioDriver(context, namespace, stamped)
        self.driver.wait_for_subscriber(self.listener)
        self.messages_before = int(self.values("audio_subscriber")[diagnostics.AUDIO_MESSAGES])

    def values(self, node: str) -> dict | None:
        status = self.listener.latest(self.prefix + node)
        return None if status is None else status.values

    def counters(self, node: str, prefix: str) -> dict[str, float]:
        return {k: float(v) for k, v in (self.values(node) or {}).items() if k.startswith(prefix)}

    def mark(self) -> dict:
        with self.listener.lock:
            finals = len(self.listener.finals)
        return {"finals": finals, "rejected": self.counters("audio_subscriber", diagnostics.REJECTED_PREFIX)}

    def declare(self, *audio_info) -> None:
        """A new AudioInfo once the node has converted all audio sent before it: the two topics are not ordered,
        so audio still waiting in the node would otherwise be converted in the new format."""

        def converted() -> int:
            return int(self.values("audio_subscriber")[diagnostics.AUDIO_MESSAGES]) - self.messages_before

        assert self.listener.wait_for(lambda: converted() == self.driver.sent, 20), (
            f"the node converted {converted()} of the {self.driver.sent} audio messages sent"
        )
        self.driver.declare(self.listener, *audio_info)

    def say(self, clip: Clip, **stream) -> int:
        """The clip and a silence as 16 kHz S16LE at SPEED; returns the messages sent."""
        payload = s16le(with_silence(clip.audio))
        self.driver.stream(payload, S16_RATE, **{"speed": SPEED, **stream})
        return -(-len(payload) // int(S16_RATE * stream.get("chunk_s", 0.1)))

    def finals_since(self, mark: dict) -> list[str]:
        with self.listener.lock:
            return list(self.listener.finals[mark["finals"] :])

    def expect_heard(self, mark: dict, *clips: Clip) -> None:
        def all_heard():
            finals = self.listener.finals[mark["finals"] :]
            return all(any(clip.recall(text) >= HEARD_RECALL for text in finals) for clip in clips)

        assert self.listener.wait_for(all_heard, HEARD_TIMEOUT_S), (
            f"not all of {[c.reference for c in clips]} heard in {self.finals_since(mark)}\n{self.process.log[-3000:]}"
        )
        assert self.process.process.poll() is None, self.process.log

    def expect_rejected(self, mark: dict, expected: dict[str, int]) -> None:
        """The audio subscriber's `rejected <kind>` counters moved by exactly ``expected`` (the others not at all)."""

        def moved():
            now = self.counters("audio_subscriber", diagnostics.REJECTED_PREFIX)
            return {k: int(v - mark["rejected"].get(k, 0)) for k, v in now.items() if v != mark["rejected"].get(k, 0)}

        wanted = {diagnostics.REJECTED_PREFIX + kind: count for kind, count in expected.items()}
        self.listener.wait_for(lambda: moved() == wanted, 10)
        assert moved() == wanted

    def expect_logged_once(self, *texts: str) -> None:
        for text in texts:
            lines = [line for line in self.process.log.splitlines() if text in line]
            assert len(lines) == 1, f"{text!r} logged {len(lines)} times: {lines}"

    def close(self) -> None:
        self.driver.close()
        self.listener.close()


@pytest.fixture(scope="module")
def session(speech_recognition, ros_context):
    session = Session(speech_recognition, ros_context)
    session.declare(16000)
    yield session
    session.close()


def test_empty_messages_and_partial_frames(session, clips):
    mark = session.mark()
    session.say(clips[0])
    for _ in range(20):
        session.driver.send(b"")
    # Every message one byte too long: the frames in it are still audio, only the stray byte is dropped.
    cut_messages = session.say(clips[1], cut=lambda chunk: chunk + b"\x01")
    for _ in range(5):
        session.driver.send(b"\x07")  # less than one frame
    session.say(clips[2])
    session.expect_heard(mark, clips[0], clips[1], clips[2])
    session.expect_rejected(mark, {"empty_message": 20, "partial_frame": cut_messages + 5})
    session.expect_logged_once("empty audio message", "is not a whole number of")


def test_invalid_audio_info_stops_conversion_until_a_valid_one(session, clips):
    mark = session.mark()
    session.say(clips[0])
    spoken_in_bad_formats = 0
    for declared in [(16000, 0), (0, 1), (16000, 1, "U8"), (16000, 1, "S16LE", "MP3")]:
        session.declare(*declared)
        spoken_in_bad_formats += session.say(clips[3])  # unusable: dropped, never transcribed
    session.declare(16000)
    session.say(clips[4])
    session.expect_heard(mark, clips[0], clips[4])
    assert not any(clips[3].recall(text) >= UNHEARD_RECALL for text in session.finals_since(mark))
    session.expect_rejected(
        mark, {"invalid_format": 3, "unsupported_coding": 1, "unusable_format": spoken_in_bad_formats}
    )
    # Three invalid formats are one kind of problem: the first is logged, the other two only counted.
    session.expect_logged_once(
        "AudioInfo rejected: AudioFormat option channels must be in [1, 32], not 0",
        "AudioInfo rejected: audio coding 'MP3'",
        "audio dropped: the declared format is not usable",
    )
    assert "AudioInfo rejected: AudioFormat option sample_rate" not in session.process.log


def test_sample_rate_change_mid_stream(session, clips):
    mark = session.mark()
    changes = float(session.values("audio_subscriber")[diagnostics.AUDIO_FORMAT_CHANGES])
    session.say(clips[5])
    session.declare(48000)
    at_48k = s16le(with_silence(resample(clips[6].audio, 16000, 48000), 48000))
    session.driver.stream(at_48k, 3 * S16_RATE, speed=SPEED)
    session.declare(16000)
    session.say(clips[0])
    session.expect_heard(mark, clips[5], clips[6], clips[0])
    session.expect_rejected(mark, {})
    assert session.listener.wait_for(
        lambda: float(session.values("audio_subscriber")[diagnostics.AUDIO_FORMAT_CHANGES]) == changes + 2, 5
    )


def test_nan_inf_and_full_scale_clipping_in_f32(session, clips):
    mark = session.mark()
    session.declare(16000, 1, "F32LE")
    session.driver.stream(with_silence(clips[1].audio).astype("<f4").tobytes(), F32_RATE, speed=SPEED)
    # NaN and Inf sprinkled over speech (one sample in 200), then a whole message of NaN.
    spoiled = with_silence(clips[2].audio)
    rng = np.random.default_rng(8)
    spoiled[rng.choice(len(spoiled), len(spoiled) // 200, replace=False)] = np.nan
    spoiled[rng.choice(len(spoiled), 50, replace=False)] = np.inf
    spoiled = np.concatenate([spoiled, np.full(1600, np.nan, np.float32)])
    session.driver.stream(spoiled.astype("<f4").tobytes(), F32_RATE, speed=SPEED)
    # An overdriven microphone: speech 8 times too loud, far beyond full scale.
    overdriven = 8.0 * with_silence(clips[3].audio)
    session.driver.stream(overdriven.astype("<f4").tobytes(), F32_RATE, speed=SPEED)
    session.declare(16000)
    session.say(clips[4])
    session.expect_heard(mark, clips[1], clips[2], clips[3], clips[4])
    session.expect_rejected(mark, {
        "non_finite_samples": int(np.count_nonzero(~np.isfinite(spoiled))),
        "clipped_samples": int(np.count_nonzero(np.abs(overdriven) > 1.0)),
    })
    session.expect_logged_once("NaN/Inf samples replaced by silence", "float samples outside [-1, 1] clipped")


def test_a_stream_that_stops_mid_utterance_still_gets_its_final(session, clips):
    """No silence after the speech (a microphone driver that dies, a file that ends on a word): the audio
    subscriber ends the utterance audio.timeout_s after the last audio, so it is transcribed."""
    mark = session.mark()
    session.driver.stream(s16le(clips[1].audio), S16_RATE, speed=SPEED)
    session.expect_heard(mark, clips[1])
    assert "the utterance in progress ends there" in session.process.log


def test_a_burst_at_ten_times_real_time_is_transcribed_whole(session, clips):
    mark = session.mark()
    dropped = {
        node: float(session.values(node)[diagnostics.DROPPED_AUDIO_S]) for node in ("audio_subscriber", "recognizer")
    }
    burst = s16le(np.concatenate([with_silence(clip.audio) for clip in clips[:6]]))  # 30 s of audio in 3 s
    session.driver.stream(burst, S16_RATE, speed=10.0)
    session.say(clips[6])
    session.expect_heard(mark, *clips)
    session.expect_rejected(mark, {})
    for node, before in dropped.items():
        assert float(session.values(node)[diagnostics.DROPPED_AUDIO_S]) == before, f"{node} dropped audio"


def test_overload_drops_the_oldest_audio_keeps_latency_bounded_and_memory_flat(session, clips, set_parameter):
    process = psutil.Process(session.process.process.pid)
    rss_before = process.memory_info().rss
    dropped_before = float(session.values("recognizer")[diagnostics.DROPPED_AUDIO_S])
    with session.listener.lock:
        events_before = len(session.listener.events)
        diagnostics_before = len(session.listener.diagnostics)
    assert set_parameter(session.listener, "recognizer", "queue.max_audio_s", 1.0) == (True, "")
    try:
        burst = s16le(np.concatenate([with_silence(clip.audio) for clip in clips[:6]]))
        session.driver.stream(burst, S16_RATE, speed=40.0, chunk_s=0.2)
        assert session.listener.wait_for(
            lambda: float(session.values("recognizer")[diagnostics.DROPPED_AUDIO_S]) > dropped_before, 20
        ), session.values("recognizer")
        assert session.listener.wait_for(
            lambda: float(session.values("recognizer")[diagnostics.QUEUE_DEPTH_S]) == 0, 30
        )
    finally:
        assert set_parameter(session.listener, "recognizer", "queue.max_audio_s", 30.0)[0]
    with session.listener.lock:
        finals = [e for e in session.listener.events[events_before:] if e.final]
        depths = [
            float(statuses["recognizer"].values[diagnostics.QUEUE_DEPTH_S])
            for _, statuses in session.listener.diagnostics[diagnostics_before:]
            if "recognizer" in statuses
        ]
    # The queue never held more than its limit, so no result waited on more than a second of audio before it.
    assert depths and max(depths) <= 1.0, depths
    assert finals and max(e.latency_ms for e in finals) < 5000, [e.latency_ms for e in finals]
    assert process.memory_info().rss < rss_before * 1.05, (rss_before, process.memory_info().rss)
    mark = session.mark()
    session.say(clips[6])
    session.expect_heard(mark, clips[6])


def test_an_inference_error_skips_that_utterance_only(session, clips, ros_context):
    # A fault the recognizer really meets: utterances of NaN audio on `speech` make the encoder input invalid.
    node = rclpy.create_node("test_speech_injector", context=ros_context)
    speech_pub = node.create_publisher(Speech, SPEECH, SPEECH_QOS)
    errors_before = float(session.values("recognizer")[diagnostics.INFERENCE_ERRORS])
    with session.listener.lock:
        diagnostics_before = len(session.listener.diagnostics)
    try:
        for utterance_id in (1_000_001, 1_000_002):
            for event in (SpeechStarted(0), SpeechAudio(0, np.full(16000, np.nan, np.float32)),
                          SpeechEnded(0, 16000, False)):
                speech_pub.publish(to_message(SpeechEvent(utterance_id, event, 0)))
        assert session.listener.wait_for(
            lambda: float(session.values("recognizer")[diagnostics.INFERENCE_ERRORS]) == errors_before + 2, 20
        ), session.values("recognizer")
    finally:
        node.destroy_node()
    with session.listener.lock:
        statuses = [s["recognizer"] for _, s in session.listener.diagnostics[diagnostics_before:] if "recognizer" in s]
    assert any(s.level == ord(diagnostics.ERROR) and "inference error" in s.message for s in statuses), statuses
    session.expect_logged_once("inference failed on utterance 1000001")
    assert "utterance 1000002" not in session.process.log
    mark = session.mark()
    session.say(clips[5])
    session.expect_heard(mark, clips[5])


def test_timestamps_jumping_backwards(ros_context, clips):
    # The defaults (speech_recognition.yaml's values): its /**/audio_subscriber entry would override a node-prefixed
    # -p here.
    process = NodeProcess("speech_recognition", "-r", "__ns:=/stamped", "-p", "audio.stamped:=true")
    try:
        assert process.wait_for_output("ready: encoder", timeout=120), process.log
        session = Session(process, ros_context, namespace="stamped", stamped=True)
        try:
            mark = session.mark()
            session.say(clips[0])
            session.driver.stamp_ns -= 10_000_000_000  # a driver restart: the clock starts over
            session.say(clips[1])
            session.driver.stamp_ns -= 5_000_000_000
            session.say(clips[2])
            session.expect_heard(mark, clips[0], clips[1], clips[2])
            session.expect_rejected(mark, {})
            assert session.listener.wait_for(
                lambda: session.values("audio_subscriber")[diagnostics.TIMESTAMPS_BACKWARDS] == "2", 5
            ), session.values("audio_subscriber")
            session.expect_logged_once("header stamp went back")
        finally:
            session.close()
    finally:
        assert process.stop() == 0, process.log


def damaged_model_dir(model_dir: Path, tmp_path: Path, damage: str) -> tuple[Path, str]:
    """A model directory with one fault, and the path the error must name. The undamaged files are links, to spare
    copying 350 MB."""
    if damage == "no directory":
        return Path("/nonexistent/tiny.en"), "/nonexistent/tiny.en"
    damaged = {
        "missing file": "encoder_dynamic_int8.onnx", "truncated file": "default_int8/decoder_with_past_model.onnx"
    }[damage]
    copy = tmp_path / "model"
    for source in model_dir.rglob("*"):
        target = copy / source.relative_to(model_dir)
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif source.relative_to(model_dir).as_posix() != damaged:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source)
    if damage == "truncated file":
        data = (model_dir / damaged).read_bytes()
        (copy / damaged).write_bytes(data[: len(data) // 10])
    return copy, str(copy / damaged)


STARTUP_COMMANDS = {  # name -> (command line for a model directory and a sound file, its error prefix)
    "recognizer": (lambda model, _: [executable("recognizer"), "--ros-args", "-p", f"model.dir:={model}"],
                   "recognizer: error:"),
    "pipeline": (lambda model, audio: [executable("hailo-whisper"), "pipeline", "--model_dir", str(model),
                                       "--audio_file", str(audio)], "hailo-whisper pipeline: error:"),
    "caption": (lambda model, audio: [executable("hailo-whisper"), "caption", "--model-dir", str(model), str(audio)],
                "hailo-whisper caption: error:"),
}


@pytest.mark.parametrize("damage", ["no directory", "missing file", "truncated file"])
@pytest.mark.parametrize("command", list(STARTUP_COMMANDS))
def test_a_bad_model_gives_one_line_naming_the_file_and_exit_2(command, damage, model_dir, speech_samples, tmp_path):
    bad_dir, named = damaged_model_dir(model_dir, tmp_path, damage)
    command_line, error_prefix = STARTUP_COMMANDS[command]
    result = subprocess.run(command_line(bad_dir, speech_samples / "jfk" / "jfk.flac"), capture_output=True,
                            text=True, timeout=60)
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith(error_prefix)]
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    assert len(errors) == 1 and named in errors[0], output


def test_hef_without_hailo_platform_falls_back_to_the_cpu_with_a_warning(ros_context, tmp_path):
    hef = tmp_path / "encoder_10s.hef"
    hef.write_bytes(b"not a real HEF: hailo_platform is missing anyway")
    process = NodeProcess(
        "recognizer", "-r", "__ns:=/fallback", "-p", "model.encoder:=hef", "-p", f"model.encoder_file:={hef}",
    )
    listener = Listener(ros_context, "fallback")
    try:
        assert process.wait_for_output("ready: encoder onnx", timeout=120), process.log
        assert listener.wait_for(lambda: listener.latest("fallback/recognizer") is not None, 10)
        level, message, values = listener.latest("fallback/recognizer")
        assert level == ord(diagnostics.WARN), (level, message)
        assert "CPU fallback" in message and "hailo_platform" in message, message
        assert "hailo_platform" in values[diagnostics.FALLBACK_REASON] and values[diagnostics.ENCODER_BACKEND] == "onnx"
        assert "running on the CPU: encoder: hailo_platform" in process.log
    finally:
        listener.close()
        assert process.stop() == 0, process.log


def test_soak_over_dds_accounts_for_every_utterance(session, tmp_path):
    report_path = tmp_path / "soak.json"
    result = subprocess.run(
        [executable("hailo-whisper"), "soak", "--ros", "--minutes", "0.5", "--speed", "4",
         "--pid", str(session.process.process.pid), "--json", str(report_path)],
        capture_output=True, text=True, timeout=180,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(report_path.read_text())
    accounting = report["accounting"]
    assert accounting["expected"] >= 3 and accounting["transcribed"] == accounting["expected"], accounting
    assert not accounting["missing"] and not accounting["stray_finals"] and report["exception_count"] == 0
    assert report["rss_mb"]["end"] is not None and accounting["wer"] < 0.3
