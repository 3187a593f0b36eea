"""The contracts between the nodes (ros/topics.py): every kind of `speech` message the audio subscriber sends
comes back as the same event with its stamp, and a result becomes a Transcript with every field filled in."""

import math

import numpy as np
import pytest
from hailo_whisper_msgs.msg import Speech
from rclpy.serialization import serialize_message

from hailo_whisper_ros.core.decoding import GUARDS, STOP_EOT
from hailo_whisper_ros.core.intake import SpeechEvent, SpeechPaused
from hailo_whisper_ros.core.recognizer import Segment, Timings, TranscriptionResult
from hailo_whisper_ros.core.transcripts import FINAL, PARTIAL, TranscriptEvent
from hailo_whisper_ros.core.vad import SpeechAudio, SpeechEnded, SpeechStarted
from hailo_whisper_ros.ros.topics import (
    SpeechReader,
    from_message,
    nanoseconds_of,
    split_audio,
    stamp_of,
    to_message,
    transcript_message,
)


def test_every_kind_of_speech_message_round_trips_with_its_stamp():
    audio = np.linspace(-1, 1, 480, dtype=np.float32)
    events = [SpeechStarted(1600), SpeechAudio(1600, audio), SpeechPaused(2080), SpeechEnded(1600, 2080, True, 1900)]
    starts = {}
    decoded = [from_message(to_message(SpeechEvent(7, event, 1_700_000_000_123_456_789)), starts) for event in events]
    assert [d.utterance_id for d in decoded] == [7] * 4
    assert decoded[0].event == events[0] and decoded[2].event == events[2] and decoded[3].event == events[3]
    np.testing.assert_array_equal(decoded[1].event.audio, audio)
    assert all(d.time_ns == 1_700_000_000_123_456_789 for d in decoded)
    assert starts == {}  # the end took its start back


def test_audio_is_split_into_pieces_that_tile_it_at_their_own_positions_and_stamps():
    audio = np.arange(1000, dtype=np.float32)
    pieces = split_audio(SpeechEvent(3, SpeechAudio(1600, audio), 1_000_000_000), 300)
    assert [(p.event.start, len(p.event.audio)) for p in pieces] == [(1600, 300), (1900, 300), (2200, 300), (2500, 100)]
    assert [p.time_ns for p in pieces] == [1_000_000_000 + offset * 62_500 for offset in (0, 300, 600, 900)]
    np.testing.assert_array_equal(np.concatenate([p.event.audio for p in pieces]), audio)
    assert {p.utterance_id for p in pieces} == {3}
    whole = SpeechEvent(3, SpeechAudio(1600, audio), 0)
    assert split_audio(whole, 0) == [whole] and split_audio(whole, 1000) == [whole]
    assert split_audio(SpeechEvent(3, SpeechStarted(1600), 0), 300)[0].event == SpeechStarted(1600)
    # Each piece is one datagram of a lossy link (config/two_hosts_fastdds.xml: at most 1400 bytes).
    serialized = len(serialize_message(to_message(pieces[0])))
    assert serialized < 1400 - 100, f"{serialized} bytes of CDR leave no room for the RTPS headers"


def test_a_speech_message_that_never_came_ends_its_utterance_at_the_gap_and_counts_the_rest(recognizer, sample_audio):
    """The recognizer joins audio by sample position: a lost piece is never glued over, its utterance's final ends
    where the gap begins and the audio after it is dropped and counted."""
    from hailo_whisper_ros.core.streaming import UtteranceTranscriber
    from hailo_whisper_ros.core.transcripts import StreamingOptions

    audio = sample_audio("jfk/jfk.flac")[: 4 * 16000]
    messages = [to_message(piece) for piece in split_audio(SpeechEvent(1, SpeechAudio(0, audio), 1), 300)]
    lost = messages.pop(len(messages) // 2)  # never arrives
    reader = SpeechReader()
    transcriber = UtteranceTranscriber(recognizer, streaming=StreamingOptions(partial_interval_ms=0))
    for message in [to_message(SpeechEvent(1, SpeechStarted(0), 1)), *messages,
                    to_message(SpeechEvent(1, SpeechEnded(0, len(audio), False, len(audio)), 1))]:
        transcriber.submit(1, reader.read(message).event)
    (final,) = [event for event in transcriber.process_pending() if event.kind == FINAL]
    assert final.end_sample == lost.sample and final.text.lower().startswith("and so")
    after_gap = len(audio) - lost.sample - len(lost.audio)
    assert round(transcriber.stats().audio_dropped_s * 16000) == after_gap


def test_the_reader_stamps_each_result_with_its_utterance_start_and_forgets_it_after_the_final():
    reader = SpeechReader()
    reader.read(to_message(SpeechEvent(5, SpeechStarted(100), 42_000_000_007)))
    result = TranscriptionResult(text="", segments=(), timings=None, encoder_backend="onnx", decoder_backend="onnx",
                                 fallback_reason=None, language="en", language_prob=math.nan)
    for kind in (PARTIAL, FINAL):
        event = TranscriptEvent(kind, 5, "", "", 100, 900, 100, 900, 1.0, result)
        assert nanoseconds_of(reader.stamp(event)) == 42_000_000_007
    assert nanoseconds_of(reader.stamp(event)) == 0  # the final forgot it
    ended = reader.read(to_message(SpeechEvent(5, SpeechEnded(100, 900, False, 700), 0)))
    assert ended.event == SpeechEnded(100, 900, False, 700)


def test_an_end_without_its_speech_end_is_taken_as_ending_where_the_utterance_does():
    """A sender that leaves speech_end unset (0) or outside the utterance: the final's wait counts from its end."""
    for speech_end in (0, 50, 901):
        message = Speech(event=Speech.END, utterance_id=4, sample=900, speech_end=speech_end)
        assert from_message(message, {4: 100}).event == SpeechEnded(100, 900, False, None)


@pytest.mark.parametrize("event", [4, 255])
def test_a_speech_event_the_contract_lacks_is_a_value_error(event):
    with pytest.raises(ValueError, match="not a speech segmenter event"):
        from_message(Speech(event=event, utterance_id=3), {})


@pytest.mark.parametrize("kind, language, language_prob", [(PARTIAL, "en", math.nan), (FINAL, "en", math.nan),
                                                           (FINAL, "de", 0.875)])
def test_a_result_becomes_a_transcript_with_its_stamp_times_quality_and_timings(kind, language, language_prob):
    segment = Segment(start_s=0.0, end_s=2.25, window_start_s=0.0, frames=225, text="He could wait no longer.",
                      tokens=(1, 2, 3), avg_logprob=-0.25, no_speech_prob=0.02, no_speech=False, stop=STOP_EOT,
                      end_prob=0.9, last_token_prob=0.9, guards=(GUARDS[0],), recovered=True)
    timings = Timings(features_ms=1.0, encoder_ms=40.5, decoder_ms=35.25, decoder_first_pass_ms=5.0,
                      per_token_ms=3.0, decoder_steps=10, total_ms=77.0)
    result = TranscriptionResult(text=segment.text, segments=(segment,), timings=timings, encoder_backend="onnx",
                                 decoder_backend="onnx-kv-int8", fallback_reason=None, language=language,
                                 language_prob=language_prob)
    event = TranscriptEvent(kind, 3, segment.text, "He could", 20000, 56000, 20000, 56000, 81.5, result)
    message = transcript_message(event, stamp_of(5_000_000_001))
    assert nanoseconds_of(message.header.stamp) == 5_000_000_001
    assert (message.utterance_id, message.final, message.text, message.stable_text) == (
        3, kind == FINAL, "He could wait no longer.", "He could")
    assert (message.start_s, message.end_s) == (1.25, 3.5)
    assert message.confidence == pytest.approx(math.exp(-0.25)) and message.avg_logprob == pytest.approx(-0.25)
    assert message.no_speech_prob == pytest.approx(0.02)
    assert message.language == language  # NaN (given) stays NaN; a detected probability comes through
    assert math.isnan(message.language_prob) if math.isnan(language_prob) else message.language_prob == language_prob
    assert list(message.guards) == [GUARDS[0]] and message.loops_recovered == 1 and message.loops == 0
    assert (message.latency_ms, message.encoder_ms, message.decoder_ms) == (81.5, 40.5, 35.25)
    assert (message.encoder_backend, message.decoder_backend) == ("onnx", "onnx-kv-int8")
