"""Partials of bounded cost (core/partials.py) through the real model: a partial's encoder frames and decoder tokens
stay flat as an utterance grows, the budget defers partials instead of queueing them, and finals are unchanged."""

import numpy as np
import pytest

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.recognizer import MIN_DYNAMIC_WINDOW_FRAMES, window_frames
from hailo_whisper_ros.core.streaming import StreamingTranscriber
from hailo_whisper_ros.core.transcripts import FINAL, PARTIAL, StreamingOptions
from hailo_whisper_ros.core.utterance_recognition import UtteranceRecognition
from hailo_whisper_ros.core.vad import VadOptions
from hailo_whisper_ros.evaluation.long_recording import build_long_recording

# LibriSpeech sentences joined by 0.2 s: about 18 s of speech for a talker who hardly pauses.
SENTENCES = [
    "librispeech_testclean_kw/1089-134691-0001.flac",
    "librispeech_testclean_fakebob61/61-70968-0016.flac",
    "librispeech_testclean_fakebob61/61-70968-0060.flac",
    "librispeech_testclean_fakebob61/61-70968-0004.flac",
    "librispeech_testclean_fakebob61/61-70968-0040.flac",
]
CHUNK = SAMPLE_RATE // 10
UNBUDGETED = {"partial_interval_ms": 1000, "partial_budget": 0.0}


@pytest.fixture(scope="module")
def talk(sample_clips):
    """One continuous stretch of speech: the sentences, trimmed, 0.2 s apart."""
    recording = build_long_recording([sample_clips[path] for path in SENTENCES], gaps_s=(0.2,), edge_silence_s=0.0)
    return recording.audio


def partial_costs(recognizer, audio, streaming):
    """Per partial of one open utterance growing by 1 s: (its length in s, encoder frames, decoder tokens)."""
    recognition = UtteranceRecognition(recognizer, arrival_of=lambda position: None)
    recognition.start(1, 0, DecodingOptions(), streaming)
    costs = []
    for end in range(CHUNK, len(audio) + 1, CHUNK):
        recognition.utterance.append(audio[end - CHUNK : end])
        frames, tokens = recognition.frames_transcribed, recognition.decoder_steps + recognition.draft_tokens_accepted
        if recognition.decode_if_due(backlog=0, in_pause=False) is not None:
            costs.append((end / SAMPLE_RATE, recognition.frames_transcribed - frames,
                          recognition.decoder_steps + recognition.draft_tokens_accepted - tokens))
    return costs


def test_a_partials_cost_stays_flat_as_the_utterance_grows(recognizer, talk):
    bounded = partial_costs(recognizer, talk, StreamingOptions(**UNBUDGETED))
    whole = partial_costs(recognizer, talk, StreamingOptions(**UNBUDGETED, partial_window_s=0.0))
    assert len(bounded) == len(whole) >= 15
    # At most two decodes of the window (a settling and the tail), however long the utterance.
    window = window_frames(recognizer.encoder, int(StreamingOptions().partial_window_s * SAMPLE_RATE))
    assert max(frames for _, frames, _ in bounded) <= 2 * window < 3 * MIN_DYNAMIC_WINDOW_FRAMES
    late = [cost for cost in bounded if cost[0] > 10.0]
    early = [cost for cost in bounded if cost[0] <= 5.0]
    assert np.mean([tokens for *_, tokens in late]) <= 2 * np.mean([tokens for *_, tokens in early]) + 5
    # Decoding the whole utterance grows: its late partials run on windows past two of the tail's.
    assert max(frames for length, frames, _ in whole if length > 15.0) > 2 * window
    assert sum(f for _, f, _ in bounded) < sum(f for _, f, _ in whole)


def caption(recognizer, audio, **streaming):
    transcriber = StreamingTranscriber(recognizer, vad=VadOptions(max_speech_s=30.0),
                                       streaming=StreamingOptions(**streaming))
    events, fed = [], 0
    for start in range(0, len(audio), CHUNK):
        transcriber.feed(audio[start : start + CHUNK])
        fed = min(start + CHUNK, len(audio))
        events += [(fed, event) for event in transcriber.process_pending()]
    events += [(fed, event) for event in transcriber.flush()]
    return events, transcriber.stats()


def test_the_budget_defers_partials_instead_of_queueing_them_and_finals_stay(recognizer, talk):
    budget = 0.02
    events, stats = caption(recognizer, talk, partial_interval_ms=1000, partial_budget=budget)
    free_events, free_stats = caption(recognizer, talk, **UNBUDGETED)
    audio_s = len(talk) / SAMPLE_RATE
    partials = [(fed, event) for fed, event in events if event.kind == PARTIAL]
    assert stats.partials_deferred > 0 and 0 < len(partials) < free_stats.partials
    # Within the budget, give or take the one partial that may overdraw it and the savings an account keeps.
    longest = max(event.latency_ms for _, event in partials) / 1e3
    assert stats.partial_inference_s <= budget * audio_s + longest + budget * 4.0
    # A deferred partial is never queued: every partial published covers the audio fed up to then, but for what
    # the VAD holds back (its last window, a pause's pad).
    assert all(fed - event.end_sample < SAMPLE_RATE // 2 for fed, event in partials)
    # Every partial reads as the utterance so far, and the finals are those of the unbudgeted run.
    assert all(event.text.startswith(event.stable_text) for _, event in partials)
    finals = [event.text for _, event in events if event.kind == FINAL]
    assert finals == [event.text for _, event in free_events if event.kind == FINAL]


def test_finals_are_those_of_partials_off_on_a_shipped_clip(recognizer, sample_audio):
    audio = sample_audio("lhotse_fixtures/2412-153948-0000.flac")  # 11.7 s: one settling for the partials
    bounded, _ = caption(recognizer, audio, partial_interval_ms=1000, partial_budget=0.0)
    off, _ = caption(recognizer, audio, partial_interval_ms=0)
    finals = [(event.text, event.end_sample) for _, event in bounded if event.kind == FINAL]
    assert finals == [(event.text, event.end_sample) for _, event in off if event.kind == FINAL]
    partials = [event for _, event in bounded if event.kind == PARTIAL]
    assert len(partials) >= 8 and len(partials[-1].text.split()) >= len(finals[0][0].split()) - 3
