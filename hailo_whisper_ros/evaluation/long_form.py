"""The long-form check of decoding.condition_on_previous: one continuous text, streamed sentence by sentence as the
live path cuts it, beside faster-whisper reading the same audio offline in 30 s windows.

The audio is LJSpeech's first 32 sentences (speech_dev's ljspeech_coqui LJ001-0001 ... LJ001-0032, one continuous
passage about printing), each trimmed to its speech plus 0.1 s of its own background (long_recording) and joined by
PAUSE_S of silence, resampled to 16 kHz. It is transcribed by:

- the caption path (StreamingTranscriber, as `hailo-whisper caption` runs it), without and with the context;
- the ROS nodes (a speech_recognition process fed 16 kHz S16LE over DDS), without and with the context;
- our recognizer offline on the whole audio (cut into encoder windows at quiet points), without and with;
- faster-whisper offline (the same tiny.en weights, int8, greedy), without and with its condition_on_previous_text.

WER is corpus WER of the joined finals against the joined references, after core.text.normalise. The dev clips'
check (``dev_stream``) streams the 61 unrelated dev clips one after another (bench's long recording), where a
context from the previous clip can only mislead: it must not make the WER worse.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.recognizer import Recognizer
from hailo_whisper_ros.evaluation.captioning import caption_stream
from hailo_whisper_ros.evaluation.datasets import load_dataset
from hailo_whisper_ros.evaluation.long_recording import LongRecording, build_long_recording
from hailo_whisper_ros.evaluation.memory import MemoryFigures
from hailo_whisper_ros.evaluation.scoring import word_errors

LONG_FORM_SET = "ljspeech_coqui"
LONG_FORM_IDS = tuple(f"LJ001-{number:04d}" for number in range(1, 33))
PAUSE_S = 0.5  # silence between the sentences (and at both ends)
MARGIN_S = 0.1  # of each sentence's own background kept around its speech
ROS_SPEED = 2.0  # the ROS run publishes at this multiple of real time; audio dropped on the way is reported
ROS_STARTUP_TIMEOUT_S = 180.0
ROS_SETTLE_S = 3.0  # after the last audio: no new result for this long, the queues empty
ROS_SETTLE_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class LongFormRow:
    path: str  # how the audio was transcribed
    context: str  # "off" / "on"
    wer: float  # fraction
    reference_words: int
    first_pass_ms_p50: float | None = None  # per final decode (the prompt pass), streamed rows only
    decoder_ms_p50: float | None = None
    hypothesis: str = ""


def long_form_recording(speech_dev: Path) -> LongRecording:
    """The 32 consecutive LJSpeech sentences joined by PAUSE_S of silence (see the module docstring)."""
    folder = Path(speech_dev) / LONG_FORM_SET
    clips = {clip.id: clip for clip in load_dataset(folder)} if folder.is_dir() else {}
    missing = [clip_id for clip_id in LONG_FORM_IDS if clip_id not in clips]
    if missing:
        raise HailoWhisperError(f"the long-form check needs {folder}/{missing[0]}.wav (and its transcripts.tsv line)")
    return build_long_recording([clips[i] for i in LONG_FORM_IDS], gaps_s=(PAUSE_S,), edge_silence_s=PAUSE_S,
                                margin_s=MARGIN_S)


def dev_recording(speech_dev: Path) -> LongRecording:
    """Every speech clip of the dev set, one after another (bench's captioning recording: gaps of 1 to 2 s)."""
    from hailo_whisper_ros.evaluation.datasets import list_clips

    speech = [clip for clip in list_clips(speech_dev).clips if clip.reference.strip()]
    return build_long_recording(speech)


def reference_text(recording: LongRecording) -> str:
    return " ".join(clip.reference for clip in recording.clips)


def _score(path: str, context: bool, reference: str, hypothesis: str, **timings) -> LongFormRow:
    errors = word_errors([reference], [hypothesis])
    return LongFormRow(path, "on" if context else "off", errors.wer, errors.reference_words, hypothesis=hypothesis,
                       **timings)


def streamed(recognizer: Recognizer, memory: MemoryFigures, recording: LongRecording, decoding: DecodingOptions,
             path: str = "caption (StreamingTranscriber)") -> LongFormRow:
    """The recording through the caption path, as fast as it is processed, partials every second (the default)."""
    run = caption_stream(recognizer, memory, recording.audio, decoding=decoding)
    first_pass = [event.result.timings.decoder_first_pass_ms for event in run.finals]
    decoder = [event.result.timings.decoder_ms for event in run.finals]
    return _score(
        path, decoding.condition_on_previous, reference_text(recording), " ".join(e.text for e in run.finals),
        first_pass_ms_p50=float(np.median(first_pass)) if first_pass else None,
        decoder_ms_p50=float(np.median(decoder)) if decoder else None,
    )


def offline(recognizer: Recognizer, recording: LongRecording, decoding: DecodingOptions) -> LongFormRow:
    result = recognizer.transcribe(recording.audio, decoding)
    return _score(f"ours offline ({result.segment_count} windows)", decoding.condition_on_previous,
                  reference_text(recording), result.text)


def faster_whisper_offline(recording: LongRecording, info, condition: bool,
                           threads: int = 2) -> LongFormRow | str:
    """faster-whisper int8 on the whole audio; the reason instead where it cannot run."""
    from hailo_whisper_ros.evaluation.engines import FasterWhisperEngine, ct2_model_dir

    ct2_dir, reason = ct2_model_dir(None, info)
    if ct2_dir is None:
        return reason
    engine = FasterWhisperEngine("fw-int8", ct2_dir, "int8", threads, "en", condition_on_previous_text=condition)
    text, _, _ = engine.transcribe(recording.audio)
    return _score("faster-whisper int8 offline", condition, reference_text(recording), text)


def ros_streamed(recording: LongRecording, condition: bool, speed: float = ROS_SPEED) -> LongFormRow:
    """The recording published as 16 kHz mono S16LE to a speech_recognition process of its own (declared defaults,
    decoding.condition_on_previous as given), over DDS on this machine; the finals on `transcript`."""
    from hailo_whisper_ros.evaluation.ros_bursts import fresh_status
    from hailo_whisper_ros.evaluation.ros_session import AudioDriver, Listener, NodeProcess, local_context, s16le
    from hailo_whisper_ros.ros.diagnostics import DROPPED_AUDIO_S

    with local_context() as context:
        node = NodeProcess("speech_recognition", "-p", f"decoding.condition_on_previous:={str(condition).lower()}")
        listener = driver = None
        try:
            if not node.wait_for_output("ready: encoder", ROS_STARTUP_TIMEOUT_S):
                raise HailoWhisperError(f"speech_recognition did not come up:\n{node.log}")
            listener = Listener(context, node_name="hailo_whisper_long_form")
            driver = AudioDriver(context, node_name="hailo_whisper_long_form_audio")
            driver.wait_for_subscriber(listener)
            driver.declare(listener, SAMPLE_RATE, 1)
            driver.stream(s16le(recording.audio), 2 * SAMPLE_RATE, speed=speed, chunk_s=0.1)
            if not listener.wait_until_caught_up(time.monotonic(), ROS_SETTLE_S, ROS_SETTLE_TIMEOUT_S):
                raise HailoWhisperError(f"the nodes did not catch up within {ROS_SETTLE_TIMEOUT_S:g} s")
            with listener.lock:
                hypothesis = " ".join(text for text in listener.finals if text)
            dropped_s = sum(float(fresh_status(listener, node).get(DROPPED_AUDIO_S, 0))
                            for node in ("audio_subscriber", "recognizer"))
        finally:
            for part in (driver, listener):
                if part is not None:
                    part.close()
            node.stop()
    return _score(f"ROS nodes ({speed:g}x real time, {dropped_s:.1f} s of audio dropped)", condition,
                  reference_text(recording), hypothesis)


def with_context(decoding: DecodingOptions, on: bool) -> DecodingOptions:
    return replace(decoding, condition_on_previous=on)


def format_table(title: str, rows: Sequence[LongFormRow]) -> str:
    lines = [title, "| Path | Context | WER | First pass ms p50 | Decoder ms p50 |", "|---|---|---:|---:|---:|"]
    for row in rows:
        first = "–" if row.first_pass_ms_p50 is None else f"{row.first_pass_ms_p50:.1f}"
        decoder = "–" if row.decoder_ms_p50 is None else f"{row.decoder_ms_p50:.1f}"
        lines.append(f"| {row.path} | {row.context} | {100 * row.wer:.2f}% | {first} | {decoder} |")
    return "\n".join(lines)
