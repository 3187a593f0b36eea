"""The contracts between the nodes (ros/topics.py): every kind of `speech` message the audio subscriber sends
comes back as the same event, and every result on `transcript/events` as the same record."""

import numpy as np
import pytest
from audio_common_msgs.msg import AudioDataStamped
from std_msgs.msg import String

from hailo_whisper_ros.core.streaming import SpeechPaused
from hailo_whisper_ros.core.vad import SpeechAudio, SpeechEnded, SpeechStarted
from hailo_whisper_ros.ros.topics import (
    TranscriptRecord,
    from_event_message,
    from_message,
    to_event_message,
    to_message,
)


def test_every_kind_of_speech_message_round_trips():
    audio = np.linspace(-1, 1, 480, dtype=np.float32)
    events = [SpeechStarted(1600), SpeechAudio(1600, audio), SpeechPaused(2080), SpeechEnded(1600, 2080, False)]
    starts = {}
    decoded = [from_message(to_message(7, event), starts) for event in events]
    assert [d.utterance_id for d in decoded] == [7] * 4
    assert decoded[0].event == events[0] and decoded[2].event == events[2] and decoded[3].event == events[3]
    np.testing.assert_array_equal(decoded[1].event.audio, audio)
    assert starts == {}  # the end took its start back


@pytest.mark.parametrize("frame_id", ["pause/3", "pause/3/100/1", "stop/3/100", "audio/x/1"])
def test_malformed_speech_messages_are_value_errors(frame_id):
    message = AudioDataStamped()
    message.header.frame_id = frame_id
    with pytest.raises(ValueError):
        from_message(message, {})


def test_a_transcript_record_round_trips():
    record = TranscriptRecord(
        kind="final", utterance_id=3, text="He could wait no longer.", stable_text="He could wait no longer.",
        start_s=1.25, end_s=3.5, latency_ms=81.5, encoder_backend="onnx", avg_logprob=-0.21, no_speech_prob=0.01,
        encoder_ms=40.2, decoder_ms=35.0,
    )
    assert from_event_message(to_event_message(record)) == record


@pytest.mark.parametrize("data", ["not json", "[]", '{"kind": "final", "text": "a field is missing"}'])
def test_malformed_transcript_events_are_value_errors(data):
    with pytest.raises(ValueError, match="not a transcript event"):
        from_event_message(String(data=data))
