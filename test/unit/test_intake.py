"""The core's live input pipeline (core/intake.py) without ROS: PCM messages in, speech events out, at stream
positions that tile the audio segmented; the gate, listening, the queue bound, stamps and the pause hint, each
counted."""

import time

import numpy as np
import pytest
from vad_stand_in import EnergyVad

from hailo_whisper_ros.core.audio_input import AudioFormat
from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.intake import AudioIntake, IntakeOptions, SpeechPaused, final_decode_pause
from hailo_whisper_ros.core.vad import SpeechAudio, SpeechEnded, SpeechStarted, VadOptions

VAD = VadOptions(min_silence_ms=300, speech_pad_ms=100, min_speech_ms=100, pre_roll_ms=0)


def seconds(s: float) -> int:
    return int(round(s * SAMPLE_RATE))


def tone(s: float) -> np.ndarray:
    return (0.5 * np.sin(np.arange(seconds(s)) * 0.3)).astype(np.float32)


def silence(s: float) -> np.ndarray:
    return np.zeros(seconds(s), np.float32)


def s16(audio: np.ndarray) -> bytes:
    return (audio * 32767).astype("<i2").tobytes()


def intake(**kwargs) -> AudioIntake:
    return AudioIntake(vad=VAD, vad_model=EnergyVad(), **kwargs)


def utterances(events):
    """[(utterance id, start, end, samples of audio)] of the ended utterances, checking each one's audio tiles it."""
    found, audio = [], {}
    for speech in events:
        event = speech.event
        if isinstance(event, SpeechStarted):
            audio[speech.utterance_id] = [event.start, event.start]
        elif isinstance(event, SpeechAudio):
            assert event.start == audio[speech.utterance_id][1]
            audio[speech.utterance_id][1] += len(event.audio)
        elif isinstance(event, SpeechEnded):
            assert (event.start, event.end) == tuple(audio[speech.utterance_id])
            found.append((speech.utterance_id, event.start, event.end))
    return found


def pcm_events(pipeline: AudioIntake, audio: np.ndarray, chunk_s: float = 0.02, start_ns: int = 0):
    events, chunk = [], seconds(chunk_s)
    for index, first in enumerate(range(0, len(audio), chunk)):
        events += pipeline.pcm(s16(audio[first : first + chunk]), start_ns + int(index * chunk_s * 1e9))
    return events


def test_positions_go_on_across_an_end_and_ids_count_from_one():
    pipeline = intake()
    audio = np.concatenate([silence(0.5), tone(1.0), silence(1.0)])
    events = pcm_events(pipeline, audio)
    events += pipeline.set_listening(False) + pipeline.set_listening(True)  # nothing open: nothing ends
    events += pcm_events(pipeline, audio)
    found = utterances(events)
    assert [utterance_id for utterance_id, _, _ in found] == [1, 2]
    (_, start1, end1), (_, start2, end2) = found
    assert start2 - start1 == len(audio)  # the second stretch continues the stream's positions
    assert abs(start1 - seconds(0.5 - 0.1)) <= 512 and end1 - start1 < seconds(1.4)
    assert pipeline.counts.utterances == 2


def test_pausing_listening_ends_the_open_utterance_there_and_ignores_the_audio():
    pipeline = intake()
    events = pcm_events(pipeline, np.concatenate([silence(0.3), tone(1.0)]))
    ended = pipeline.set_listening(False)
    assert [type(e.event) for e in ended][-1] is SpeechEnded
    assert pcm_events(pipeline, tone(1.0)) == []  # paused: not converted, not segmented
    pipeline.set_listening(True)
    assert len(utterances(events + ended)) == 1


def test_the_robot_speaking_gates_its_audio_and_the_tail_and_ends_the_person_first():
    pipeline = intake(options=IntakeOptions(gate_tail_ms=300))
    before = pcm_events(pipeline, np.concatenate([silence(0.3), tone(0.8)]))
    ended = pipeline.set_robot_speaking(True)  # the person's utterance ends when the robot starts
    assert len(utterances(before + ended)) == 1
    assert pcm_events(pipeline, tone(1.0)) == []  # the robot's own voice
    pipeline.set_robot_speaking(False)
    assert pcm_events(pipeline, tone(0.3)) == []  # its echo, within gate.tail_ms
    after = pcm_events(pipeline, np.concatenate([silence(0.2), tone(0.8), silence(0.8)]))
    assert len(utterances(after)) == 1
    assert pipeline.counts.gate_closings == 1
    assert pipeline.counts.gated_s == pytest.approx(1.3, abs=0.001)


def test_a_pause_is_announced_once_when_its_final_decode_is_due():
    pipeline = intake()
    events = []
    for first in range(0, seconds(2.0), 320):
        audio = np.concatenate([silence(0.2), tone(0.6), silence(1.2)])[first : first + 320]
        events += pipeline.segment(audio)
    paused = [e for e in events if isinstance(e.event, SpeechPaused)]
    (_, start, end), = utterances(events)
    assert len(paused) == 1 and paused[0].event.end == end  # the utterance's audio was complete at the hint
    hint_index, end_index = events.index(paused[0]), next(
        i for i, e in enumerate(events) if isinstance(e.event, SpeechEnded))
    assert hint_index < end_index
    assert final_decode_pause(VAD, None) < seconds(VAD.min_silence_ms / 1000)


def test_the_queue_drops_the_oldest_audio_beyond_its_bound_and_keeps_the_other_inputs():
    woken = []
    pipeline = intake(options=IntakeOptions(max_input_s=1.0), wake=lambda: woken.append(1))
    chunk = s16(tone(0.25))
    for index in range(4):
        pipeline.put_audio(chunk, arrival_ns=index)
    pipeline.put_listening(False)  # a control input among the audio: never dropped
    for index in range(4):
        pipeline.put_audio(chunk, arrival_ns=10 + index)
    counts = pipeline.counts
    assert (counts.messages_received, counts.dropped_messages) == (8, 4)
    assert counts.dropped_s == pytest.approx(1.0) and pipeline.status().queued_s == pytest.approx(1.0)
    assert len(woken) == 9
    pipeline.process_pending()
    assert pipeline.listening is False  # the pause came through, in order after the audio before it
    assert pipeline.status().messages_converted == 0  # the audio after it was ignored


def test_stamps_that_go_back_or_leave_a_gap_are_counted():
    pipeline = intake()
    chunk = s16(silence(0.02))
    for stamp_ms in (0, 20, 40, 100, 120, 60):  # 40 ms missing before 100; 60 goes back
        pipeline.put_audio(chunk, arrival_ns=0, stamp_ns=stamp_ms * 1_000_000)
    counts = pipeline.counts
    assert counts.missing_by_stamps_messages == 2 and counts.missing_by_stamps_s == pytest.approx(0.04)
    assert counts.stamps_backwards == 1


def test_a_format_set_at_run_time_converts_the_audio_after_it():
    pipeline = intake()
    pipeline.put_default_format(AudioFormat(48000, 2, "S16LE"))
    stereo = np.repeat(tone(0.5), 2)  # 8000 frames: 1/6 s at 48 kHz stereo, 1 s as 16 kHz mono
    pipeline.put_audio(s16(stereo), arrival_ns=0)
    pipeline.process_pending()
    status = pipeline.status()
    assert status.audio_format == "48000 Hz, 2 ch, S16LE"
    assert status.received_s == pytest.approx(8000 / 48000, abs=1e-6)


def test_an_utterance_ends_when_the_audio_stops_for_the_timeout():
    pipeline = intake(options=IntakeOptions(timeout_s=0.1))
    pipeline.put_audio(s16(np.concatenate([silence(0.3), tone(1.0)])), arrival_ns=0)
    events = pipeline.process_pending()
    assert not any(isinstance(e.event, SpeechEnded) for e in events)
    deadline = time.monotonic() + 5
    while not any(isinstance(e.event, SpeechEnded) for e in events) and time.monotonic() < deadline:
        events += pipeline.process_pending()
    assert len(utterances(events)) == 1


def test_each_event_is_stamped_on_the_audio_clock():
    pipeline = intake()
    events = pcm_events(pipeline, np.concatenate([silence(0.5), tone(0.8), silence(1.0)]), start_ns=10**12)
    start = next(e for e in events if isinstance(e.event, SpeechStarted))
    assert start.time_ns == 10**12 + start.event.start * 10**9 // SAMPLE_RATE
