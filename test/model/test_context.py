"""The decoder's prompt on the real model: the no-speech probability read at the start of transcript after a
prompt, and decoding.condition_on_previous through both streaming transcribers: on, off, changed at run time, and
the context dropped after a loop guard, after a long silence and at a reset."""

import dataclasses
import math

import numpy as np
import pytest

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.decoding import DecodingOptions, build_logit_filters, greedy_decode
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.streaming import StreamingTranscriber, UtteranceTranscriber
from hailo_whisper_ros.core.transcripts import FINAL, StreamingOptions
from hailo_whisper_ros.core.vad import SpeechAudio, SpeechEnded, SpeechStarted

# Three short clips of two speakers (1.9 to 2.6 s): each becomes one utterance.
CLIPS = ["ljspeech_coqui/LJ001-0002.flac", "librispeech_testclean_kw/1089-134691-0000.flac",
         "ljspeech_coqui/LJ001-0013.flac"]
ON = DecodingOptions(condition_on_previous=True)
NO_PARTIALS = StreamingOptions(partial_interval_ms=0)


def test_no_speech_probability_is_read_at_the_start_of_transcript_after_the_prompt(recognizer, sample_audio):
    audio = sample_audio(CLIPS[1])
    options = DecodingOptions(initial_prompt="Okonkwo, Haverbrook.")
    prefix = recognizer.prefix(options, context=(1770, 1110))
    info = recognizer.info
    assert prefix[0] == info.sot_prev and prefix[-2:] == [info.sot, info.no_timestamps]
    assert prefix[1:-4] == recognizer.tokenizer.encode(" Okonkwo, Haverbrook.") and prefix[-4:-2] == [1770, 1110]
    states = recognizer.encoder.encode(recognizer.features.log_mel(audio, n_frames=600))
    logits = recognizer.decoder.start(states, prefix, options.pad_encoder_output_to)

    def p_no_speech(position):
        row = logits[position] - logits[position].max()
        return math.exp(row[info.no_speech] - math.log(np.exp(row).sum()))

    decoded = greedy_decode(recognizer.decoder, states, prefix, info, options, build_logit_filters(options, info), 2.1)
    assert decoded.no_speech_prob == pytest.approx(p_no_speech(prefix.index(info.sot)), rel=1e-4)
    assert decoded.no_speech_prob != pytest.approx(p_no_speech(0), rel=1e-2)  # not at <|startofprev|>
    assert decoded.no_speech_prob < 0.1 and "could wait" in recognizer.tokenizer.decode(decoded.tokens).lower()


def test_an_initial_prompt_too_long_is_refused_before_any_decode(recognizer):
    with pytest.raises(HailoWhisperError, match="initial_prompt is .* tokens"):
        recognizer.check_options(DecodingOptions(initial_prompt="robot " * 300))
    with pytest.raises(HailoWhisperError, match="initial_prompt"):
        StreamingTranscriber(recognizer, decoding=DecodingOptions(initial_prompt="robot " * 300))


def joined(sample_audio, gaps_s):
    """The clips with silence of gaps_s[i] after clip i (1 s at both ends)."""
    pieces = [np.zeros(SAMPLE_RATE, np.float32)]
    for clip, gap_s in zip(CLIPS, gaps_s):
        pieces += [sample_audio(clip), np.zeros(int(gap_s * SAMPLE_RATE), np.float32)]
    return np.concatenate(pieces)


def finals(transcriber, audio, between=None):
    """Feed ``audio`` in 0.5 s chunks; between(finals_so_far) runs after each chunk's work."""
    events = []
    for start in range(0, len(audio), SAMPLE_RATE // 2):
        transcriber.feed(audio[start : start + SAMPLE_RATE // 2])
        events += [e for e in transcriber.process_pending() if e.kind == FINAL]
        if between is not None:
            between(events)
    return events + [e for e in transcriber.flush() if e.kind == FINAL]


def test_context_on_off_and_changed_at_run_time(recognizer, sample_audio):
    audio = joined(sample_audio, (1.0, 1.0, 1.0))
    on = finals(StreamingTranscriber(recognizer, decoding=ON, streaming=NO_PARTIALS), audio)
    assert [e.result.context_tokens for e in on] == [(), on[0].result.tokens, on[0].result.tokens + on[1].result.tokens]

    def switched(first, after_finals, then):
        transcriber = StreamingTranscriber(recognizer, decoding=first, streaming=NO_PARTIALS)
        done = []

        def switch(events):
            if len(events) == after_finals and not done:
                done.append(transcriber.update_options(decoding=then))

        return finals(transcriber, audio, switch)

    # Off, switched on after the first final: the second utterance has no context yet (the first kept none), the
    # third has the second's. On, switched off after the second final: the third has none.
    later_on = switched(DecodingOptions(), 1, ON)
    assert [e.result.context_tokens for e in later_on] == [(), (), later_on[1].result.tokens]
    later_off = switched(ON, 2, DecodingOptions())
    assert [e.result.context_tokens for e in later_off] == [(), later_off[0].result.tokens, ()]


def test_context_is_bounded_in_tokens(recognizer, sample_audio):
    options = dataclasses.replace(ON, context_max_tokens=3)
    events = finals(StreamingTranscriber(recognizer, decoding=options, streaming=NO_PARTIALS),
                    joined(sample_audio, (1.0, 1.0, 1.0)))
    assert events[2].result.context_tokens == (events[0].result.tokens + events[1].result.tokens)[-3:]


def test_context_is_dropped_after_a_long_silence_on_the_audio_clock(recognizer, sample_audio):
    audio = joined(sample_audio, (3.0, 1.0, 1.0))  # 3 s of silence after the first clip, 1 s after the others
    for reset_s, expected in ((2.0, [False, False, True]), (5.0, [False, True, True]), (0.0, [False, True, True])):
        streaming = dataclasses.replace(NO_PARTIALS, context_reset_silence_s=reset_s)
        events = finals(StreamingTranscriber(recognizer, decoding=ON, streaming=streaming), audio)
        assert [bool(e.result.context_tokens) for e in events] == expected, reset_s


def test_context_is_dropped_after_a_loop_guard_and_at_a_reset(recognizer, sample_audio):
    audio = joined(sample_audio, (1.0, 1.0, 1.0))
    # A token budget of 1 + 1 token a second cuts the first clip's decode short (the guard fires); the later
    # utterances start after the options are back to the guard's defaults.
    guarded = dataclasses.replace(ON, max_tokens_per_s=1.0, min_token_budget=1, loop_recovery=False)
    transcriber = StreamingTranscriber(recognizer, decoding=guarded, streaming=NO_PARTIALS)
    events = finals(transcriber, audio, lambda events: len(events) == 1 and transcriber.update_options(decoding=ON))
    assert events[0].result.guards and not events[1].result.guards
    assert [bool(e.result.context_tokens) for e in events] == [False, False, True]

    transcriber = StreamingTranscriber(recognizer, decoding=ON, streaming=NO_PARTIALS)
    resets = []

    def reset_once(events):
        if len(events) == 1 and not resets:  # between the first and the second utterance: no audio is lost
            resets.append(transcriber.reset())

    events = finals(transcriber, audio, reset_once)
    assert [bool(e.result.context_tokens) for e in events] == [False, False, True]


def test_the_utterance_transcriber_carries_the_context_on_the_senders_clock(recognizer, sample_audio):
    for silence_s, carried in ((1.0, True), (12.0, False)):  # streaming.context_reset_silence_s: 10 s
        transcriber = UtteranceTranscriber(recognizer, ON, NO_PARTIALS)
        start, events = 0, []
        for utterance_id, clip in enumerate(CLIPS[:2], start=1):
            audio = sample_audio(clip)
            utterance = (SpeechStarted(start), SpeechAudio(start, audio), SpeechEnded(start, start + len(audio), False))
            for event in utterance:
                transcriber.submit(utterance_id, event)
            events += [e for e in transcriber.process_pending() if e.kind == FINAL]
            start += len(audio) + int(silence_s * SAMPLE_RATE)
        assert len(events) == 2 and events[0].result.context_tokens == ()
        assert events[1].result.context_tokens == (events[0].result.tokens if carried else ())
