"""The `speech` topic's messages: every kind the audio subscriber sends comes back as the same event."""

import numpy as np
import pytest
from audio_common_msgs.msg import AudioDataStamped

from hailo_whisper_ros.core.streaming import SpeechPaused
from hailo_whisper_ros.core.vad import SpeechAudio, SpeechEnded, SpeechStarted
from hailo_whisper_ros.ros.speech_topic import from_message, to_message


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
