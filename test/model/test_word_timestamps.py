"""decoding.word_timestamps on the real model: the word contract on real speech (one window, a clip decoded in two
parts, a stream), and nothing run when it is off. How close the times come to faster-whisper's is measured on the
dev set by `hailo-whisper word-timings` (too slow for the suite)."""

import dataclasses

import numpy as np
import pytest

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.model_dir import DECODER_ALIGNMENT
from hailo_whisper_ros.core.streaming import StreamingTranscriber
from hailo_whisper_ros.core.text import normalise
from hailo_whisper_ros.core.transcripts import FINAL, PARTIAL, StreamingOptions
from hailo_whisper_ros.core.word_timing import WordAligner

ON = DecodingOptions(word_timestamps=True)
# Four LJSpeech sentences, 38.5 s: longer than the encoder's 30 s, so decoded in two parts.
LONG_PARTS = [f"ljspeech_coqui/LJ001-00{n}.flac" for n in ("01", "03", "14", "15")]


def check_word_contract(words, text: str, start_s: float, end_s: float) -> None:
    """Every word of the text, in order, each inside [start_s, end_s], none before the one before it, each with a
    probability in (0, 1]."""
    assert words, text
    assert normalise(" ".join(word.text for word in words)) == normalise(text)
    for before, word in zip([None, *words], words):
        assert start_s - 1e-6 <= word.start_s <= word.end_s <= end_s + 1e-6, (word, start_s, end_s)
        assert 0.0 < word.probability <= 1.0, word
        if before is not None:
            assert before.start_s <= word.start_s and before.end_s <= word.end_s + 1e-6, (before, word)


def test_words_of_one_window_and_of_a_clip_in_two_parts(recognizer, sample_audio):
    jfk = sample_audio("jfk/jfk.flac")
    result = recognizer.transcribe(jfk, ON)
    check_word_contract(result.words, result.text, 0.0, len(jfk) / SAMPLE_RATE)
    long = np.concatenate([sample_audio(part) for part in LONG_PARTS])
    result = recognizer.transcribe(long, ON)
    assert len(result.segments) == 2
    check_word_contract(result.words, result.text, 0.0, len(long) / SAMPLE_RATE)
    # The second part's words are in seconds of the whole clip: after its start.
    second = result.segments[1]
    assert second.words and all(word.start_s >= second.start_s for word in second.words)
    assert result.timings.word_timing_ms > 0


def test_streamed_finals_have_their_words_in_seconds_of_the_stream(recognizer, sample_audio):
    clip = sample_audio("librispeech_testclean_fakebob61/61-70968-0004.flac")
    silence = np.zeros(3 * SAMPLE_RATE, dtype=np.float32)
    transcriber = StreamingTranscriber(recognizer, decoding=ON, streaming=StreamingOptions(partial_interval_ms=0))
    transcriber.feed(np.concatenate([silence, clip, silence]))
    finals = [event for event in transcriber.flush() if event.kind == FINAL and event.text]
    assert finals
    for final in finals:
        check_word_contract(final.words, final.text, final.start_sample / SAMPLE_RATE, final.end_sample / SAMPLE_RATE)
    assert finals[0].words[0].start_s >= 2.5  # after the leading silence, not from the utterance's own start


def test_a_tail_partials_words_are_those_after_its_settled_text(recognizer, sample_audio):
    """streaming.partial_window_s: a partial decodes the tail after its settled audio; its words are the tail's, in
    seconds of the stream (after the settled point, not from the utterance's start)."""
    clip = sample_audio("lhotse_fixtures/2412-153948-0000.flac")  # 11.7 s: partials settle at a 4 s window
    silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
    streaming = StreamingOptions(partial_interval_ms=1000, partial_window_s=4.0, partial_budget=0.0)
    transcriber = StreamingTranscriber(recognizer, decoding=ON, streaming=streaming)
    audio, events = np.concatenate([silence, clip, silence]), []
    for start in range(0, len(audio), SAMPLE_RATE):  # as it arrives: a partial behind the audio would be skipped
        transcriber.feed(audio[start : start + SAMPLE_RATE])
        events += transcriber.process_pending()
    tails = [event for event in events + transcriber.flush()
             if event.kind == PARTIAL and event.result_offset and event.words]
    assert tails
    for partial in tails:
        tail_start_s = (partial.start_sample + partial.result_offset) / SAMPLE_RATE
        check_word_contract(partial.words, partial.result.text, tail_start_s, partial.end_sample / SAMPLE_RATE)
        assert normalise(partial.text).endswith(normalise(partial.result.text))


def test_word_timestamps_off_runs_no_alignment_pass(recognizer, sample_audio):
    aligner = recognizer.word_aligner()
    audio = sample_audio("jfk/jfk.flac")
    runs = aligner.runs
    recognizer.transcribe(audio, ON)
    assert aligner.runs == runs + 1  # one part, one pass
    result = recognizer.transcribe(audio, DecodingOptions())
    assert aligner.runs == runs + 1
    assert result.words == () and result.timings.word_timing_ms == 0.0
    assert result.text == recognizer.transcribe(audio, ON).text  # the words change no token


def test_an_export_without_the_alignment_pass_says_to_export_again(recognizer, tmp_path):
    """An export older than word timings (exporter 12): the decoders' folder and its parent lack the pass."""
    decoders = tmp_path / "old_export" / "default_int8"
    decoders.mkdir(parents=True)
    with pytest.raises(HailoWhisperError, match=f"export the model again.*{DECODER_ALIGNMENT}"):
        WordAligner.beside(decoders, recognizer.info, recognizer.tokenizer, threads=1)
    with pytest.raises(HailoWhisperError, match="export the model again.*names no alignment heads"):
        WordAligner.beside(recognizer.config.model_dir, dataclasses.replace(recognizer.info, alignment_heads=()),
                           recognizer.tokenizer, threads=1)
