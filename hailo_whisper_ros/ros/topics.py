"""The names, QoS profiles and message contracts of every topic and service of the package, each written and
read here and nowhere else.

``speech`` (between the audio subscriber and the recognizer): hailo_whisper_msgs/Speech, one speech event of the
core's AudioIntake (core/intake.py) per message, with its utterance id, its stream sample and, for audio, 16 kHz
mono samples. Sample positions count from the first sample of the 16 kHz stream the
audio subscriber produced, so the recognizer can report start and end times; ``header.stamp`` is that sample's time
on the audio's clock, so the recognizer can stamp a transcript with its utterance's first sample.

``transcript/events``: every result of the recognizer as a hailo_whisper_msgs/Transcript (partials, then one final
per utterance id; see the message's definition for the contract).
"""

from __future__ import annotations

import array
import math
from dataclasses import replace

import numpy as np
from builtin_interfaces.msg import Time
from hailo_whisper_msgs.msg import Speech, Transcript, Word
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.intake import SpeechEvent, SpeechPaused, event_position
from hailo_whisper_ros.core.transcripts import FINAL, TranscriptEvent
from hailo_whisper_ros.core.vad import SpeechAudio, SpeechEnded, SpeechStarted

AUDIO = "audio"  # audio_common_msgs/AudioData from the microphone driver
AUDIO_STAMPED = "audio_stamped"  # audio_common_msgs/AudioDataStamped, with audio.stamped: true
AUDIO_INFO = "audio_info"  # audio_common_msgs/AudioInfo, latched by the driver
SPEECH = "speech"  # hailo_whisper_msgs/Speech: the segmented utterances (above)
TRANSCRIPT = "transcript"  # std_msgs/String: one message per final utterance
TRANSCRIPT_PARTIAL = "transcript/partial"  # std_msgs/String: growing text while a person speaks
TRANSCRIPT_EVENTS = "transcript/events"  # hailo_whisper_msgs/Transcript: every partial and final
COMMAND = "command"  # std_msgs/String: a final that began with a wake phrase (gate.wake_phrases), phrase stripped
DIAGNOSTICS = "/diagnostics"  # absolute: diagnostics aggregate per robot, whatever namespace a node runs in
LISTEN = "listen"  # std_srvs/SetBool: pause (false) and resume (true) listening
ROBOT_SPEAKING = "robot_speaking"  # std_msgs/Bool: true while the robot speaks; its audio is not recognized

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
# 5000 messages of speech.max_message_samples (300) are 94 s of speech, the margin 1000 whole releases gave: a reliable
# KEEP_LAST writer overwrites what a reader has not acknowledged beyond it (a link down that long), and the recognizer
# then counts the gap.
SPEECH_QOS = QoSProfile(depth=5000, reliability=ReliabilityPolicy.RELIABLE)
# Results are few and each matters: reliable, with room for a burst of finals.
RESULTS_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
# A state whose every change matters; volatile so that it matches volatile and latching publishers alike.
ROBOT_SPEAKING_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# A partial is superseded by the next one: a short history is enough.
PARTIAL_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def to_message(speech: SpeechEvent) -> Speech:
    """The `speech` message of one of the intake's events, stamped with its time on the audio's clock."""
    event = speech.event
    message = Speech(utterance_id=speech.utterance_id, sample=event_position(event))
    message.header.stamp = stamp_of(speech.time_ns)
    if isinstance(event, SpeechStarted):
        message.event = Speech.START
    elif isinstance(event, SpeechAudio):
        message.event = Speech.AUDIO
        message.audio = array.array("f", np.asarray(event.audio, dtype=np.float32).tobytes())
    elif isinstance(event, SpeechPaused):
        message.event = Speech.PAUSE
    else:
        message.event, message.forced = Speech.END, event.forced
        message.speech_end = event.end if event.speech_end is None else event.speech_end
    return message


def split_audio(speech: SpeechEvent, max_samples: int) -> list[SpeechEvent]:
    """An audio event as consecutive pieces of at most ``max_samples`` (0: whole), each at its own stream position,
    so that the recognizer joins them again by position; other events as they are."""
    event = speech.event
    if not isinstance(event, SpeechAudio) or max_samples <= 0 or len(event.audio) <= max_samples:
        return [speech]
    return [replace(speech, event=SpeechAudio(event.start + offset, event.audio[offset : offset + max_samples]),
                    time_ns=speech.time_ns and speech.time_ns + offset * 10**9 // SAMPLE_RATE)  # 0: no clock yet
            for offset in range(0, len(event.audio), max_samples)]


def from_message(message: Speech, utterance_starts: dict[int, int]) -> SpeechEvent:
    """Decodes one message; ``utterance_starts`` (utterance -> start sample) is kept by the caller so that an end
    event carries its start as the segmenter's does. Raises ValueError on an event the contract has not."""
    utterance_id, position, time_ns = message.utterance_id, message.sample, nanoseconds_of(message.header.stamp)
    if message.event == Speech.START:
        utterance_starts[utterance_id] = position
        event = SpeechStarted(position)
    elif message.event == Speech.AUDIO:
        event = SpeechAudio(position, np.frombuffer(message.audio, np.float32))
    elif message.event == Speech.PAUSE:
        event = SpeechPaused(position)
    elif message.event == Speech.END:
        start = utterance_starts.pop(utterance_id, position)
        speech_end = message.speech_end if start < message.speech_end <= position else None  # 0: a sender without it
        event = SpeechEnded(start, position, message.forced, speech_end)
    else:
        raise ValueError(f"not a speech segmenter event: event {message.event} of utterance {utterance_id}")
    return SpeechEvent(utterance_id, event, time_ns)


class SpeechReader:
    """Reads `speech` messages (from_message), remembering each open utterance's start: an end event carries its
    start, and each result is stamped with its utterance's first sample on the audio's clock."""

    def __init__(self):
        self._starts: dict[int, int] = {}
        self._times_ns: dict[int, int] = {}

    def read(self, message: Speech) -> SpeechEvent:
        """The message's event; ValueError on an event the contract has not."""
        speech = from_message(message, self._starts)
        if isinstance(speech.event, SpeechStarted):
            self._times_ns[speech.utterance_id] = speech.time_ns
        return speech

    def stamp(self, event: TranscriptEvent) -> Time:
        """The stamp of a result: its utterance's first sample (forgotten after the final)."""
        take = self._times_ns.pop if event.kind == FINAL else self._times_ns.get
        return stamp_of(take(event.utterance_id, 0))

    def clear(self) -> None:
        self._starts.clear()
        self._times_ns.clear()

def transcript_message(event: TranscriptEvent, stamp: Time) -> Transcript:
    """The Transcript of one result; ``stamp``: the utterance's first sample on the audio's clock."""
    result = event.result
    message = Transcript(
        utterance_id=event.utterance_id,
        final=event.kind == FINAL,
        text=event.text,
        stable_text=event.stable_text,
        start_s=event.start_sample / SAMPLE_RATE,
        end_s=event.end_sample / SAMPLE_RATE,
        confidence=math.exp(result.avg_logprob),
        avg_logprob=result.avg_logprob,
        no_speech_prob=result.no_speech_prob,
        words=[Word(text=word.text, start_s=word.start_s, end_s=word.end_s, probability=word.probability)
               for word in event.words],
        language=result.language,
        language_prob=result.language_prob,  # NaN when given, as the message says
        guards=list(result.guards),
        loops_recovered=result.recoveries,
        loops=result.loops,
        background_removed_s=result.background_removed_s,
        latency_ms=event.latency_ms,
        encoder_ms=result.timings.encoder_ms,
        decoder_ms=result.timings.decoder_ms,
        encoder_backend=result.encoder_backend,
        decoder_backend=result.decoder_backend,
    )
    message.header.stamp = stamp
    return message


def stamp_of(nanoseconds: int) -> Time:
    return Time(sec=nanoseconds // 10**9, nanosec=nanoseconds % 10**9)


def nanoseconds_of(stamp: Time) -> int:
    return stamp.sec * 10**9 + stamp.nanosec
