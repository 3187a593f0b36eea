"""The names, QoS profiles and message contracts of every topic and service of the package, each written and
read here and nowhere else.

``speech`` (between the audio subscriber and the recognizer): AudioDataStamped messages holding 16 kHz mono F32LE
samples; ``header.frame_id`` says what a message is, in the words of the core's segmenter events
(hailo_whisper_ros.core.vad)::

    start/<utterance>/<start sample>          an utterance begins (no audio)
    audio/<utterance>/<first sample>          the next audio of the utterance
    pause/<utterance>/<end sample>            its audio so far ends there and it is in a pause that may end it
                                              (core.streaming.SpeechPaused): its final can be decoded now
    end/<utterance>/<end sample>/<forced>     the utterance is over (no audio); forced=1 when cut at max length

Sample positions count from the first sample of the 16 kHz stream the audio subscriber produced, so the
recognizer can report start and end times; ``header.stamp`` is when the message was sent.

``transcript/events``: every result of the recognizer as JSON in a std_msgs/String (``TranscriptRecord``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

import numpy as np
from audio_common_msgs.msg import AudioData, AudioDataStamped
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.streaming import SpeechPaused
from hailo_whisper_ros.core.transcripts import TranscriptEvent
from hailo_whisper_ros.core.vad import SegmenterEvent, SpeechAudio, SpeechEnded, SpeechStarted

AUDIO = "audio"  # audio_common_msgs/AudioData from the microphone driver
AUDIO_STAMPED = "audio_stamped"  # audio_common_msgs/AudioDataStamped, with audio.stamped: true
AUDIO_INFO = "audio_info"  # audio_common_msgs/AudioInfo, latched by the driver
SPEECH = "speech"  # the segmented utterances (above)
TRANSCRIPT = "transcript"  # std_msgs/String: one message per final utterance
TRANSCRIPT_PARTIAL = "transcript/partial"  # std_msgs/String: growing text while a person speaks
TRANSCRIPT_EVENTS = "transcript/events"  # std_msgs/String: TranscriptRecord as JSON
DIAGNOSTICS = "/diagnostics"  # absolute: diagnostics aggregate per robot, whatever namespace a node runs in
LISTEN = "listen"  # std_srvs/SetBool: pause (false) and resume (true) listening

# Best effort (audio.reliability's default) accepts reliable and best-effort publishers alike; a reliable subscription
# matches no best-effort one, but has a reliable driver resend what DDS lost (at 100x, a tenth of a burst of 192 kB
# messages was lost to a best-effort subscription on a loaded machine). The history holds what arrives while the
# executor cannot take it. Audio was lost at 4x because rclpy's MultiThreadedExecutor, sharing the GIL with decoding,
# took only about 150 messages a second, and a KEEP_LAST reader silently overwrites the oldest (reliable publishers do
# not help: it acknowledged what it then overwrote): 8 clips of 20 ms 48 kHz stereo chunks through a history of 200 kept
# 1709 of 2965 messages at 4x, 689 at 10x; the single-threaded executor of ros/runner.py keeps all 2965 at 10x even with
# a history of 50 (2026-12-01, 2-core EPYC). The depth is kept as the margin for a stall (a long callback, a driver
# flushing its buffer): 6000 messages are 60 s of audio in 10 ms chunks, twice the subscriber's own queue
# (queue.max_input_s, 30 s), so the node's queue, which counts what it drops, is where a backlog overflows; a slot costs
# memory only once filled.
AUDIO_HISTORY_DEPTH = 6000
AUDIO_RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}


def audio_qos(reliability: str) -> QoSProfile:
    """The audio subscription's QoS for a key of AUDIO_RELIABILITY."""
    return QoSProfile(depth=AUDIO_HISTORY_DEPTH, reliability=AUDIO_RELIABILITY[reliability])
# How drivers publish audio (ros-drivers' audio_capture: reliable), and so do wav_source and the test drivers.
AUDIO_PUBLISHER_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
# Drivers latch AudioInfo (transient local) so late subscribers still learn the format.
AUDIO_INFO_QOS = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
SPEECH_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
# Results are few and each matters: reliable, with room for a burst of finals.
RESULTS_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
# A partial is superseded by the next one: a short history is enough.
PARTIAL_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


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


@dataclass(frozen=True)
class TranscriptRecord:
    """One result on ``transcript/events``: what the recognizer knew of it, in seconds of the audio stream."""

    kind: str  # "partial" or "final"
    utterance_id: int
    text: str
    stable_text: str  # the leading words a partial shares with the previous one; a final's whole text
    start_s: float
    end_s: float
    latency_ms: float  # final: end-of-utterance decision -> result; partial: its inference time
    encoder_backend: str  # "hailo" or "onnx"
    avg_logprob: float
    no_speech_prob: float
    encoder_ms: float
    decoder_ms: float
    guards: list[str] = field(default_factory=list)  # loop guards that fired in this result's decode, in order
    recovered: int = 0  # segments whose loop the re-decode recovered
    loops: int = 0  # segments whose kept text a guard cut or max_new_tokens ended


def transcript_record(event: TranscriptEvent) -> TranscriptRecord:
    result = event.result
    return TranscriptRecord(
        kind=event.kind,
        utterance_id=event.utterance_id,
        text=event.text,
        stable_text=event.stable_text,
        start_s=event.start_sample / SAMPLE_RATE,
        end_s=event.end_sample / SAMPLE_RATE,
        latency_ms=round(event.latency_ms, 3),
        encoder_backend=result.encoder_backend,
        avg_logprob=round(result.avg_logprob, 4),
        no_speech_prob=round(result.no_speech_prob, 4),
        encoder_ms=round(result.timings.encoder_ms, 3),
        decoder_ms=round(result.timings.decoder_ms, 3),
        guards=list(result.guards),
        recovered=result.recoveries,
        loops=result.loops,
    )


def to_event_message(record: TranscriptRecord) -> String:
    return String(data=json.dumps(asdict(record)))


def from_event_message(message: String) -> TranscriptRecord:
    """Raises ValueError when the message is not a TranscriptRecord."""
    try:
        data = json.loads(message.data)
        return TranscriptRecord(**{f.name: data[f.name] for f in fields(TranscriptRecord)})
    except (TypeError, KeyError, json.JSONDecodeError) as error:
        raise ValueError(f"not a transcript event: {message.data[:80]!r} ({error!r})") from None
