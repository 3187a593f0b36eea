"""The `speech` topic between the audio subscriber and the recognizer: segmented utterances as audio_common_msgs.

Each message is an AudioDataStamped holding 16 kHz mono F32LE samples. Its ``header.frame_id`` says what the
message is, in the words of the core's segmenter events (hailo_whisper_ros.core.vad):

    start/<utterance>/<start sample>          an utterance begins (no audio)
    audio/<utterance>/<first sample>          the next audio of the utterance
    pause/<utterance>/<end sample>            its audio so far ends there and it is in a pause that may end it
                                              (core.streaming.SpeechPaused): its final can be decoded now
    end/<utterance>/<end sample>/<forced>     the utterance is over (no audio); forced=1 when cut at max length

Sample positions count from the first sample of the 16 kHz stream the audio subscriber produced, so the
recognizer can report start and end times; ``header.stamp`` is when the message was sent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from audio_common_msgs.msg import AudioData, AudioDataStamped

from hailo_whisper_ros.core.streaming import SpeechPaused
from hailo_whisper_ros.core.vad import SegmenterEvent, SpeechAudio, SpeechEnded, SpeechStarted


@dataclass(frozen=True)
class UtteranceEvent:
    utterance_id: int
    event: SegmenterEvent | SpeechPaused


def to_message(utterance_id: int, event: SegmenterEvent | SpeechPaused) -> AudioDataStamped:
    message = AudioDataStamped()
    if isinstance(event, SpeechStarted):
        message.header.frame_id = f"start/{utterance_id}/{event.start}"
    elif isinstance(event, SpeechAudio):
        message.header.frame_id = f"audio/{utterance_id}/{event.start}"
        message.audio = AudioData(data=np.asarray(event.audio, dtype="<f4").tobytes())
    elif isinstance(event, SpeechPaused):
        message.header.frame_id = f"pause/{utterance_id}/{event.end}"
    else:
        message.header.frame_id = f"end/{utterance_id}/{event.end}/{int(event.forced)}"
    return message


def from_message(message: AudioDataStamped, utterance_starts: dict[int, int]) -> UtteranceEvent:
    """Decodes one message; ``utterance_starts`` (utterance -> start sample) is kept by the caller so that an end
    event carries its start as the segmenter's does. Raises ValueError on a malformed frame_id."""
    kind, utterance, position, *rest = message.header.frame_id.split("/")
    utterance_id, position = int(utterance), int(position)
    if kind == "start":
        utterance_starts[utterance_id] = position
        return UtteranceEvent(utterance_id, SpeechStarted(position))
    if kind == "audio":
        return UtteranceEvent(utterance_id, SpeechAudio(position, np.frombuffer(bytes(message.audio.data), "<f4")))
    if kind == "pause" and not rest:
        return UtteranceEvent(utterance_id, SpeechPaused(position))
    if kind == "end" and len(rest) == 1:
        start = utterance_starts.pop(utterance_id, position)
        return UtteranceEvent(utterance_id, SpeechEnded(start, position, rest[0] == "1"))
    raise ValueError(f"not a speech segment message: frame_id {message.header.frame_id!r}")
