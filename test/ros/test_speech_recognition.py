"""The composed speech_recognition process over real DDS: transcripts, runtime parameters and diagnostics.

A wav_source process publishes real speech as AudioData; this test process listens on the topics like a robot's
dialogue node would, and changes parameters through the nodes' parameter services like `ros2 param set` does.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile
from ros_harness import Listener, wav_source

from hailo_whisper_ros.core.audio import resample
from hailo_whisper_ros.core.int8_kernels import this_cpu_int8_kernels
from hailo_whisper_ros.core.text import normalise
from hailo_whisper_ros.evaluation.scoring import word_errors
from hailo_whisper_ros.evaluation.vocabulary import load_vocabulary_set
from hailo_whisper_ros.ros import diagnostics

# Real read speech of several speakers, about 220 reference words, so that one word is under half a WER point.
CLIPS = [
    "librispeech_testclean_fakebob61/61-70968-0004.flac",
    "ljspeech_coqui/LJ001-0005.flac",
    "librispeech_testclean_kw/1089-134691-0001.flac",
    "ljspeech_coqui/LJ001-0014.flac",
    "pocketsphinx_librivox/sense_and_sensibility_01_austen_64kb-0870.flac",
    "ljspeech_coqui/LJ001-0015.flac",
    "ljspeech_coqui/LJ001-0017.flac",
    "pocketsphinx_librivox/sense_and_sensibility_01_austen_64kb-0920.flac",
    "ljspeech_coqui/LJ001-0023.flac",
    "ljspeech_coqui/LJ001-0018.flac",
]
SHORT_CLIP = 0  # 3.9 s: shorter than the encoder window, so one decode per utterance
MAX_WER_GAP_POINTS = 2.0
# The `speech_recognition` fixture's process: the audio subscriber warns after 1 s without audio instead of 2.
SPEECH_RECOGNITION_ARGS = ("-p", "audio_subscriber:audio.timeout_s:=1.0")


@pytest.fixture(scope="module")
def listener(speech_recognition, ros_context):
    listener = Listener(ros_context)
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def clips(sample_clips):
    return [sample_clips[c] for c in CLIPS]


@pytest.fixture(scope="module")
def offline_wer(recognizer, clips, sample_audio):
    hypotheses = [recognizer.transcribe(sample_audio(c)).text for c in CLIPS]
    return word_errors([c.reference for c in clips], hypotheses).wer


def stream_and_collect(listener: Listener, files: list[str], expected_finals: int, *extra: str) -> list[str]:
    before = len(listener.finals)
    source = wav_source(files, 4.0, 1.5, *extra)
    try:
        assert source.wait(timeout=120) == 0, source.log
        listener.wait_for(lambda: len(listener.finals) >= before + expected_finals, timeout=30)
        # The last utterance's final too, if the VAD cut one clip in two: both nodes' queues empty and no result
        # for a while, however slowly a busy machine decodes.
        assert listener.wait_until_caught_up(time.monotonic(), quiet_s=1.0, timeout_s=60), "results still coming"
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


def test_48k_stereo_speech_is_transcribed_as_well_as_offline(listener, clips, offline_wer, sample_audio, tmp_path):
    files = []
    for name, clip in zip(CLIPS, clips):
        mono = sample_audio(name)
        at_48k = resample(mono, 16000, 48000)
        stereo = np.stack([at_48k, 0.8 * at_48k], axis=1)
        path = tmp_path / f"{clip.audio_path.stem}_48k_stereo.wav"
        soundfile.write(path, stereo, 48000, subtype="PCM_16")
        files.append(str(path))
    finals = stream_and_collect(listener, files, len(clips))
    streamed = word_errors([" ".join(c.reference for c in clips)], [" ".join(finals)]).wer
    print(f"48 kHz stereo: streamed WER {100 * streamed:.1f}% vs offline {100 * offline_wer:.1f}%: {finals}")
    assert 100 * (streamed - offline_wer) <= MAX_WER_GAP_POINTS


def test_runtime_parameters_valid_invalid_and_read_only(listener, clips, set_parameter, get_parameter):
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
    # tiny.en cannot detect a language: the on-set callback says so, and the old value stays.
    ok, reason = set_parameter(listener, "recognizer", "decoding.language", "auto")
    assert not ok and "English-only" in reason and "multilingual" in reason, reason
    assert get_parameter(listener, "recognizer", "decoding.language") == ""
    ok, reason = set_parameter(listener, "audio_subscriber", "vad.speech_pad_ms", 900.0)
    assert not ok and "min_silence_ms" in reason, reason
    ok, reason = set_parameter(listener, "recognizer", "decoding.pad_encoder_output_to", 100)
    assert not ok and reason, reason
    # Read-only: changing the encoder or how it reaches the NPU needs a model reload.
    for name, value in (("model.encoder", "30s"), ("model.hailo_timeout_ms", 5000)):
        ok, reason = set_parameter(listener, "recognizer", name, value)
        assert not ok and "read-only" in reason, (name, reason)


def test_word_timestamps_set_at_run_time_put_every_word_in_the_transcript(listener, clips, set_parameter):
    """`ros2 param set /recognizer decoding.word_timestamps true`: the next final's Transcript carries its words
    over DDS, in order, inside the utterance, each with a probability; off again, none."""
    one_clip = [str(clips[SHORT_CLIP].audio_path)]
    assert set_parameter(listener, "recognizer", "decoding.word_timestamps", True) == (True, "")
    try:
        before = len(listener.events)
        stream_and_collect(listener, one_clip, 1)
        with listener.lock:
            finals = [event for event in listener.events[before:] if event.final and event.text]
    finally:
        assert set_parameter(listener, "recognizer", "decoding.word_timestamps", False) == (True, "")
    assert finals
    for final in finals:
        words = final.words
        assert normalise(" ".join(word.text for word in words)) == normalise(final.text), (final.text, words)
        for before_word, word in zip([None, *words], words):
            assert final.start_s - 1e-6 <= word.start_s <= word.end_s <= final.end_s + 1e-6, (word, final)
            assert 0.0 < word.probability <= 1.0, word
            assert before_word is None or before_word.start_s <= word.start_s, (before_word, word)
    before = len(listener.events)
    stream_and_collect(listener, one_clip, 1)
    with listener.lock:
        assert all(not event.words for event in listener.events[before:])


def test_initial_prompt_set_at_run_time_spells_the_robots_vocabulary(listener, set_parameter):
    words = load_vocabulary_set()
    command = [str(next(clip for clip in words.clips if clip.id == "robot11").audio_path)]  # Ravensworth, Gunnhild
    without = set(normalise(" ".join(stream_and_collect(listener, command, 1))).split())
    assert set_parameter(listener, "recognizer", "decoding.initial_prompt", words.prompt) == (True, "")
    try:
        with_prompt = set(normalise(" ".join(stream_and_collect(listener, command, 1))).split())
    finally:
        assert set_parameter(listener, "recognizer", "decoding.initial_prompt", "")[0]
    assert not {"ravensworth", "gunnhild"} & without, without
    assert {"ravensworth", "gunnhild"} <= with_prompt, with_prompt
    # A prompt that would leave the decoder no room is refused with the reason, and the old one kept.
    ok, reason = set_parameter(listener, "recognizer", "decoding.initial_prompt", "robot " * 300)
    assert not ok and "initial_prompt is 300 tokens" in reason, reason


def test_diagnostics_report_every_key_move_with_audio_and_warn_when_it_stops(listener, clips):
    def audio_subscriber():
        return listener.latest_status("audio_subscriber")

    assert listener.wait_for(lambda: listener.latest_status("recognizer") is not None, timeout=10)
    before = float(audio_subscriber().values[diagnostics.AUDIO_RECEIVED_S])
    source = wav_source([str(clips[SHORT_CLIP].audio_path)], 1.0, 0.5)
    try:
        assert listener.wait_for(
            lambda: float(audio_subscriber().values[diagnostics.AUDIO_RECEIVED_S]) > before + 0.5, 15
        )
        assert audio_subscriber().level == ord(diagnostics.OK), audio_subscriber()
        assert source.wait(timeout=60) == 0
    finally:
        source.stop()
    # Audio stopped: the audio subscriber warns, and its input counter stands still.
    assert listener.wait_for(lambda: audio_subscriber().level == ord(diagnostics.WARN), timeout=10)
    assert "audio stopped" in audio_subscriber().message
    frozen, frozen_at = audio_subscriber().values[diagnostics.AUDIO_RECEIVED_S], time.monotonic()

    def statuses_since() -> list:
        return [s["audio_subscriber"] for t, s in listener.diagnostics if t > frozen_at and "audio_subscriber" in s]

    assert listener.wait_for(lambda: len(statuses_since()) >= 2, timeout=10)
    assert all(status.values[diagnostics.AUDIO_RECEIVED_S] == frozen for status in statuses_since())

    expected_keys = {
        "audio_subscriber": {
            diagnostics.AUDIO_INPUT, diagnostics.AUDIO_RECEIVED_S, diagnostics.DROPPED_AUDIO_S,
            diagnostics.INPUT_QUEUE_S,
        },
        "recognizer": {
            diagnostics.ENCODER_BACKEND, diagnostics.FALLBACK_REASON, diagnostics.MODEL, diagnostics.UTTERANCES,
            diagnostics.PARTIALS, diagnostics.REAL_TIME_FACTOR, diagnostics.LATENCY_P50_MS, diagnostics.LATENCY_P95_MS,
            diagnostics.QUEUE_DEPTH_S, diagnostics.DROPPED_AUDIO_S, diagnostics.NO_SPEECH_REJECTIONS,
            diagnostics.RESIDENT_MEMORY_MB, diagnostics.INT8_KERNELS,
        },
        "transcript_publisher": {
            diagnostics.UTTERANCES, diagnostics.PARTIALS, diagnostics.LATENCY_P50_MS, diagnostics.LATENCY_P95_MS,
        },
    }
    for node, keys in expected_keys.items():
        values = listener.latest_status(node).values
        assert keys <= set(values), f"{node} lacks {keys - set(values)}"
    recognizer = listener.latest_status("recognizer").values
    assert recognizer[diagnostics.ENCODER_BACKEND] == "onnx"
    assert recognizer[diagnostics.INT8_KERNELS] == this_cpu_int8_kernels()  # the node runs on this machine
    assert int(recognizer[diagnostics.UTTERANCES]) > 0
    assert float(recognizer[diagnostics.LATENCY_P50_MS]) > 0
    assert recognizer[diagnostics.LAST_LANGUAGE] == "en (given)"  # tiny.en decodes English, nothing detected
    # The process's resident memory: the model and ONNX Runtime's arenas, far more than an idle Python process.
    assert float(recognizer[diagnostics.RESIDENT_MEMORY_MB]) > 100
