"""The composed speech_recognition process over real DDS: transcripts, runtime parameters and diagnostics.

A wav_source process publishes real speech as AudioData; this test process listens on the topics like a robot's
dialogue node would, and changes parameters through the nodes' parameter services like `ros2 param set` does.
"""

from __future__ import annotations

import numpy as np
import pytest
import rclpy
import soundfile
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from ros_harness import REPO, Listener, NodeProcess, wav_source

from hailo_whisper_ros.core.audio import load_audio, resample
from hailo_whisper_ros.core.evaluation import word_errors

# Real read speech of several speakers, about 220 reference words, so that one word is under half a WER point.
CLIPS = [
    "librispeech_testclean_fakebob61/61-70968-0004.wav",
    "ljspeech_coqui/LJ001-0005.wav",
    "librispeech_testclean_kw/1089-134691-0001.flac",
    "ljspeech_coqui/LJ001-0014.wav",
    "pocketsphinx_librivox/sense_and_sensibility_01_austen_64kb-0870.wav",
    "ljspeech_coqui/LJ001-0015.wav",
    "ljspeech_coqui/LJ001-0017.wav",
    "pocketsphinx_librivox/sense_and_sensibility_01_austen_64kb-0920.wav",
    "ljspeech_coqui/LJ001-0023.wav",
    "ljspeech_coqui/LJ001-0018.wav",
]
SHORT_CLIP = 0  # 3.9 s: shorter than the encoder window, so one decode per utterance
MAX_WER_GAP_POINTS = 2.0


@pytest.fixture(scope="module")
def speech_recognition():
    process = NodeProcess(
        "speech_recognition",
        "--params-file", str(REPO / "config" / "cpu.yaml"),
        "-p", "audio_subscriber:audio.timeout_s:=1.0",
    )
    assert process.wait_for_output("ready: encoder", timeout=120), process.log
    yield process
    assert process.stop() == 0, process.log


@pytest.fixture(scope="module")
def listener(speech_recognition):
    context = rclpy.Context()
    rclpy.init(context=context)
    listener = Listener(context)
    yield listener
    listener.close()
    rclpy.try_shutdown(context=context)


@pytest.fixture(scope="module")
def clips(speech_dev, dev_utterances):
    by_path = {str(u.audio_path.relative_to(speech_dev)): u for u in dev_utterances}
    return [by_path[c] for c in CLIPS]


@pytest.fixture(scope="module")
def offline_wer(recognizer, clips):
    hypotheses = [recognizer.transcribe(load_audio(c.audio_path)).text for c in clips]
    return word_errors([c.reference for c in clips], hypotheses).wer


def stream_and_collect(listener: Listener, files: list[str], expected_finals: int, *extra: str) -> list[str]:
    before = len(listener.finals)
    source = wav_source(files, 4.0, 1.5, *extra)
    try:
        assert source.wait(timeout=120) == 0, source.log
        listener.wait_for(lambda: len(listener.finals) >= before + expected_finals, timeout=30)
        # Let the last utterance's final arrive if the VAD cut one clip in two.
        listener.wait_for(lambda: False, timeout=2.0)
    finally:
        source.stop()
    with listener.lock:
        return list(listener.finals[before:])


def test_16k_mono_s16le_speech_is_transcribed_as_well_as_offline(listener, clips, offline_wer):
    finals = stream_and_collect(listener, [str(c.audio_path) for c in clips], len(clips))
    streamed = word_errors([" ".join(c.reference for c in clips)], [" ".join(finals)]).wer
    print(f"streamed WER {100 * streamed:.1f}% vs offline {100 * offline_wer:.1f}% over {len(finals)} finals: {finals}")
    assert finals, "no transcript arrived"
    assert 100 * (streamed - offline_wer) <= MAX_WER_GAP_POINTS


def test_48k_stereo_speech_is_transcribed_as_well_as_offline(listener, clips, offline_wer, tmp_path):
    files = []
    for clip in clips:
        mono = load_audio(clip.audio_path)
        at_48k = resample(mono, 16000, 48000)
        stereo = np.stack([at_48k, 0.8 * at_48k], axis=1)
        path = tmp_path / f"{clip.audio_path.stem}_48k_stereo.wav"
        soundfile.write(path, stereo, 48000, subtype="PCM_16")
        files.append(str(path))
    finals = stream_and_collect(listener, files, len(clips))
    streamed = word_errors([" ".join(c.reference for c in clips)], [" ".join(finals)]).wer
    print(f"48 kHz stereo: streamed WER {100 * streamed:.1f}% vs offline {100 * offline_wer:.1f}%: {finals}")
    assert 100 * (streamed - offline_wer) <= MAX_WER_GAP_POINTS


def set_parameter(listener: Listener, node: str, name: str, value) -> tuple[bool, str]:
    """What `ros2 param set` does: a SetParameters call on the node's parameter service."""
    client = listener.node.create_client(SetParameters, f"/{node}/set_parameters")
    assert client.wait_for_service(timeout_sec=10)
    if isinstance(value, bool):
        parameter_value = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
    elif isinstance(value, int):
        parameter_value = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
    elif isinstance(value, float):
        parameter_value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
    else:
        parameter_value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
    future = client.call_async(SetParameters.Request(parameters=[Parameter(name=name, value=parameter_value)]))
    assert listener.wait_for(future.done, timeout=10)
    result = future.result().results[0]
    listener.node.destroy_client(client)
    return result.successful, result.reason


def test_runtime_parameters_valid_invalid_and_read_only(listener, clips):
    one_clip = [str(clips[SHORT_CLIP].audio_path)]
    # Valid: the next utterance decodes at most 3 tokens.
    assert set_parameter(listener, "recognizer", "decoding.max_new_tokens", 3) == (True, "")
    try:
        short = stream_and_collect(listener, one_clip, 1)
    finally:
        assert set_parameter(listener, "recognizer", "decoding.max_new_tokens", 224)[0]
    assert short and all(len(text.split()) <= 3 for text in short), short
    full = stream_and_collect(listener, one_clip, 1)
    assert len(" ".join(full).split()) > 6, full

    # Invalid values are rejected with the core's reason (or the declared range).
    ok, reason = set_parameter(listener, "recognizer", "decoding.language", "de")
    assert not ok and "language" in reason, reason
    ok, reason = set_parameter(listener, "audio_subscriber", "vad.speech_pad_ms", 900.0)
    assert not ok and "min_silence_ms" in reason, reason
    ok, reason = set_parameter(listener, "recognizer", "decoding.pad_encoder_output_to", 100)
    assert not ok and reason, reason
    # Read-only: changing the encoder needs a model reload.
    ok, reason = set_parameter(listener, "recognizer", "model.encoder", "30s")
    assert not ok and "read-only" in reason, reason


def test_diagnostics_report_every_key_move_with_audio_and_warn_when_it_stops(listener, clips):
    assert listener.wait_for(lambda: listener.latest_status("recognizer") is not None, timeout=10)
    before = float(listener.latest_status("audio_subscriber")[2]["audio received (s)"])
    source = wav_source([str(clips[SHORT_CLIP].audio_path)], 1.0, 0.5)
    try:
        assert listener.wait_for(
            lambda: float(listener.latest_status("audio_subscriber")[2]["audio received (s)"]) > before + 0.5, 15
        )
        assert listener.latest_status("audio_subscriber")[0] == 0, listener.latest_status("audio_subscriber")
        assert source.wait(timeout=60) == 0
    finally:
        source.stop()
    # Audio stopped: the audio subscriber warns, and its input counter stands still.
    assert listener.wait_for(lambda: listener.latest_status("audio_subscriber")[0] == 1, timeout=10)
    level, message, values = listener.latest_status("audio_subscriber")
    assert "audio stopped" in message
    frozen = values["audio received (s)"]
    listener.wait_for(lambda: False, timeout=2.5)
    assert listener.latest_status("audio_subscriber")[2]["audio received (s)"] == frozen

    expected_keys = {
        "audio_subscriber": {"audio input", "audio received (s)", "dropped audio (s)", "input queue (s)"},
        "recognizer": {
            "encoder backend", "fallback reason", "model", "utterances", "partials", "real-time factor",
            "latency p50 (ms)", "latency p95 (ms)", "queue depth (s)", "dropped audio (s)", "no-speech rejections",
        },
        "transcript_publisher": {"utterances", "partials", "latency p50 (ms)", "latency p95 (ms)"},
    }
    for node, keys in expected_keys.items():
        values = listener.latest_status(node)[2]
        assert keys <= set(values), f"{node} lacks {keys - set(values)}"
    recognizer_values = listener.latest_status("recognizer")[2]
    assert recognizer_values["encoder backend"] == "onnx"
    assert int(recognizer_values["utterances"]) > 0
    assert float(recognizer_values["latency p50 (ms)"]) > 0
