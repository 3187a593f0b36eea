"""The recognizer end to end on real speech: accuracy, long clips, non-speech, statistics and error reporting.

Memory figures are measured by hailo_whisper_ros.evaluation.memory and tested beside it, not here.
"""

import math

import numpy as np
import pytest

from hailo_whisper_ros.core.audio import split_at_quiet_points
from hailo_whisper_ros.core.config import RecognizerConfig
from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.recognizer import (
    MIN_DYNAMIC_WINDOW_FRAMES,
    SPLIT_SEARCH_S,
    WINDOW_MARGIN_S,
    Recognizer,
)
from hailo_whisper_ros.core.text import normalise
from hailo_whisper_ros.evaluation.scoring import word_errors

# Five consecutive LJSpeech sentences read by one speaker: 34.5 s of continuous reading.
LONG_CLIP_PARTS = [f"ljspeech_coqui/LJ001-000{i}.flac" for i in range(1, 6)]


def test_drafts_of_earlier_partials_change_no_token_on_the_dev_set(recognizer, dev_utterances, dev_audio, speech_dev):
    """The speculative path as the streaming transcribers run it: each clip's audio so far every 2 s, then the whole
    clip, each decoded with the previous decode's tokens as its draft, against plain greedy decoding of the same
    audio. Every token must be the same, with far fewer one-token steps."""
    assert recognizer.decoder.rows_independent, "the INT8 step decoder must be re-exported (export/writer.py)"
    differing, decodes, accepted, steps, plain_steps = [], 0, 0, 0, 0
    for utterance in dev_utterances:
        audio = dev_audio(utterance.audio_path.relative_to(speech_dev).as_posix())
        draft = ()
        for end in [*range(2 * SAMPLE_RATE, len(audio), 2 * SAMPLE_RATE), len(audio)]:
            plain, drafted = recognizer.transcribe(audio[:end]), recognizer.transcribe(audio[:end], draft=draft)
            decodes += 1
            if [s.tokens for s in drafted.segments] != [s.tokens for s in plain.segments]:
                differing.append((utterance.id, end, plain.text, drafted.text))
            accepted += drafted.timings.draft_accepted
            steps += drafted.timings.decoder_steps
            plain_steps += plain.timings.decoder_steps
            draft = drafted.segments[0].tokens
    print(f"\n{decodes} decodes of {len(dev_utterances)} dev clips: {accepted} tokens verified from drafts, "
          f"{steps} one-token steps instead of {plain_steps}")
    assert not differing
    assert steps < 0.7 * plain_steps  # measured 0.54 (1 s partials: 0.42)


def test_default_path_word_error_rate_on_a_dev_subset(recognizer, dev_utterances, dev_audio, speech_dev):
    """Every fifth dev clip (13 clips, all sets). The whole set is measured for the acceptance figures."""
    subset = dev_utterances[::5]
    paths = [u.audio_path.relative_to(speech_dev).as_posix() for u in subset]
    hypotheses = [recognizer.transcribe(dev_audio(path)).text for path in paths]
    errors = word_errors([u.reference for u in subset], hypotheses)
    print(f"\n10 s ONNX encoder + INT8 decoder, {len(subset)} dev clips: WER {100 * errors.wer:.1f} % ({errors})")
    assert errors.wer < 0.12  # faster-whisper int8 greedy: 9.9 % on this subset


def test_long_clip_is_split_at_quiet_points_and_fully_transcribed(recognizer, sample_audio, sample_clips):
    audio = np.concatenate([sample_audio(part) for part in LONG_CLIP_PARTS])
    reference = " ".join(sample_clips[part].reference for part in LONG_CLIP_PARTS)

    result = recognizer.transcribe(audio)

    window_s = recognizer.encoder.max_frames / 100
    spans = [(s.start_s, s.end_s) for s in result.segments]
    print(f"\n{len(audio) / SAMPLE_RATE:.1f} s clip -> segments {[(round(a, 2), round(b, 2)) for a, b in spans]}")
    print(result.text)
    assert spans[0][0] == 0 and spans[-1][1] == len(audio) / SAMPLE_RATE
    assert all(a_end == b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
    assert all(end - start <= window_s - WINDOW_MARGIN_S for start, end in spans)
    assert len(spans) >= math.ceil(len(audio) / SAMPLE_RATE / (window_s - WINDOW_MARGIN_S))
    errors = word_errors([reference], [result.text])
    assert errors.wer < 0.12, errors
    assert normalise(result.text).split()[-3:] == ["art", "of", "printing"]  # the end is not lost


def test_split_cuts_in_the_quietest_part_of_each_search_region():
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal(25 * SAMPLE_RATE)).astype(np.float32)
    gaps_s = [(8.2, 8.5), (16.0, 16.3)]  # pauses between "words"
    for start, end in gaps_s:
        audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)] *= 0.001
    spans = split_at_quiet_points(audio, max_samples=9 * SAMPLE_RATE, search_samples=int(SPLIT_SEARCH_S * SAMPLE_RATE))
    cuts_s = [end / SAMPLE_RATE for _, end in spans[:-1]]
    assert len(cuts_s) == 2
    for cut, (gap_start, gap_end) in zip(cuts_s, gaps_s):
        assert gap_start < cut < gap_end
    assert spans[-1][1] == len(audio) and all(end - start <= 9 * SAMPLE_RATE for start, end in spans)


def five_seconds(kind: str) -> np.ndarray:
    t = np.arange(5 * SAMPLE_RATE) / SAMPLE_RATE
    signals = {
        "silence": np.zeros_like(t),
        "white noise": 0.1 * np.random.default_rng(0).standard_normal(len(t)),
        "100 Hz hum": 0.3 * np.sin(2 * np.pi * 100 * t),
    }
    return signals[kind].astype(np.float32)


@pytest.mark.parametrize("kind", ["silence", "white noise", "100 Hz hum"])
def test_non_speech_gives_an_empty_transcript(recognizer, kind):
    result = recognizer.transcribe(five_seconds(kind))
    (segment,) = result.segments
    print(f"\n{kind}: p(no speech) {segment.no_speech_prob:.2f}, avg logprob {segment.avg_logprob:.2f}")
    assert result.text == "" and segment.no_speech and result.tokens == ()


def test_result_statistics(recognizer, sample_audio):
    result = recognizer.transcribe(sample_audio("jfk/jfk.flac"))
    timings = result.timings
    print(f"\njfk 11 s: {timings}")
    assert (result.encoder_backend, result.decoder_backend, result.fallback_reason) == ("onnx", "onnx", None)
    parts = math.ceil(11.0 / (recognizer.encoder.max_frames / 100 - WINDOW_MARGIN_S))  # 2 for a 10 s window
    assert result.segment_count == parts and result.tokens and -1.0 < result.avg_logprob < 0.0
    assert 0.0 <= result.no_speech_prob < 0.5
    for segment in result.segments:  # the dynamic encoder's window: the part from its speech onset to the talker's
        # end (decoding.background_trim_db), the margin, even
        assert segment.start_s <= segment.window_start_s < segment.start_s + 0.5
        window_s = segment.end_s - segment.background_removed_s - segment.window_start_s + WINDOW_MARGIN_S
        needed = max(round(window_s * 100), MIN_DYNAMIC_WINDOW_FRAMES)
        assert needed - 1 <= segment.frames <= needed + 1 and segment.frames % 2 == 0
    assert 0 < timings.features_ms and 0 < timings.encoder_ms and 0 < timings.per_token_ms < timings.decoder_ms
    assert timings.features_ms + timings.encoder_ms + timings.decoder_ms <= timings.total_ms


@pytest.mark.parametrize("encoder, fp32_decoder", [("30s", True), ("dynamic", False)])
def test_other_encoder_paths_transcribe(model_dir, sample_audio, encoder, fp32_decoder):
    decoder_dir = model_dir if fp32_decoder else None
    config = RecognizerConfig(model_dir, encoder=encoder, decoder_dir=decoder_dir, warmup=False)
    result = Recognizer(config).transcribe(sample_audio("jfk/jfk.flac"))
    reference = (
        "and so my fellow americans ask not what your country can do for you ask what you can do for your country"
    )
    assert word_errors([reference], [result.text]).wer <= 0.05, result.text
    assert result.segment_count == 1  # 11 s fits a 30 s window


def test_empty_audio_gives_no_segments(recognizer):
    result = recognizer.transcribe(np.zeros(0, dtype=np.float32))
    assert result.text == "" and result.segments == ()


@pytest.mark.parametrize(
    "audio, message",
    [
        (np.zeros((2, 16000), dtype=np.float32), "1-D"),
        (np.zeros(16000, dtype=np.int16), "1-D float"),
        (np.full(16000, np.nan, dtype=np.float32), "NaN"),
    ],
)
def test_bad_audio_is_rejected(recognizer, audio, message):
    with pytest.raises(HailoWhisperError, match=message):
        recognizer.transcribe(audio)


def linked_copy(model_dir, destination):
    """A model directory of symlinks to the real files: a damaged file is unlinked first, never written through."""
    for source in model_dir.rglob("*"):
        if source.is_file():
            target = destination / source.relative_to(model_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source)
    return destination


def corrupt(path, content="{"):
    path.unlink()
    path.write_text(content)


@pytest.mark.parametrize(
    "damage, named_file",
    [
        (lambda m: (m / "default_int8" / "decoder_with_past_model.onnx").unlink(), "decoder_with_past_model.onnx"),
        (lambda m: (m / "default_int8" / "token_table_int8.npy").unlink(), "token_table_int8.npy"),
        (lambda m: corrupt(m / "default_int8" / "token_table_int8.npy", "not a table"), "token_table_int8.npy"),
        (lambda m: corrupt(m / "decoder_cross_kv.onnx", "not an onnx model"), "decoder_cross_kv.onnx"),
        (lambda m: (m / "encoder_dynamic_int8.onnx").unlink(), "encoder_dynamic_int8.onnx"),
        (lambda m: [(d / "hailo_whisper_model.json").unlink() for d in (m, m / "default_int8")], "model.json"),
        (lambda m: [corrupt(d / "tokenizer.json") for d in (m, m / "default_int8")], "tokenizer.json"),
    ],
)
def test_missing_or_corrupt_model_files_are_named(model_dir, tmp_path, damage, named_file):
    model = linked_copy(model_dir, tmp_path / "tiny.en")
    damage(model)
    with pytest.raises(HailoWhisperError, match=named_file):
        Recognizer(RecognizerConfig(model, warmup=False))


def test_bad_configuration_is_rejected(model_dir, tmp_path):
    with pytest.raises(HailoWhisperError, match="encoder must be one of"):
        RecognizerConfig(model_dir, encoder="20s")
    with pytest.raises(HailoWhisperError, match="threads"):
        RecognizerConfig(model_dir, threads=0)
    with pytest.raises(HailoWhisperError, match="model directory not found"):
        Recognizer(RecognizerConfig(tmp_path / "nowhere"))
    with pytest.raises(HailoWhisperError, match="elsewhere.onnx"):
        Recognizer(RecognizerConfig(model_dir, encoder_file=tmp_path / "elsewhere.onnx", warmup=False))


def test_onnx_encoder_takes_the_four_d_layout_of_the_hailo_export(model_dir, tmp_path, sample_audio):
    """encoder_10s_hailo.onnx (export --hailo) takes NCHW [1, n_mels, 1, 1000]; the CPU encoder runs it too, so
    the graph given to the Hailo compiler can be checked. Built here by putting a Reshape before encoder_10s.onnx."""
    import onnx
    from onnx import TensorProto, helper

    from hailo_whisper_ros.core.backends.onnx import OnnxEncoder
    from hailo_whisper_ros.core.features import LogMelExtractor

    model = onnx.load(model_dir / "encoder_10s.onnx")
    graph = model.graph
    (three_d,) = graph.input
    for node in graph.node:
        node.input[:] = ["features_3d" if name == three_d.name else name for name in node.input]
    graph.initializer.append(helper.make_tensor("shape_3d", TensorProto.INT64, [3], [1, 80, 1000]))
    graph.node.insert(0, helper.make_node("Reshape", [three_d.name, "shape_3d"], ["features_3d"]))
    graph.input.remove(three_d)
    graph.input.append(helper.make_tensor_value_info(three_d.name, TensorProto.FLOAT, [1, 80, 1, 1000]))
    onnx.save(model, tmp_path / "encoder_10s_hailo.onnx")

    mel = LogMelExtractor().log_mel(sample_audio("jfk/jfk.flac")[: 9 * SAMPLE_RATE], n_frames=1000)
    four_d = OnnxEncoder(tmp_path / "encoder_10s_hailo.onnx", threads=2)
    assert (four_d.window_frames, four_d.output_positions) == (1000, 500)
    np.testing.assert_allclose(
        four_d.encode(mel), OnnxEncoder(model_dir / "encoder_10s.onnx", threads=2).encode(mel), atol=1e-5
    )
