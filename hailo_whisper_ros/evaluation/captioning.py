"""Live captioning of a recording: the audio fed chunk by chunk to a StreamingTranscriber, as a microphone would,
and the reference study's captioning figures (inference calls, segments, frames, speech time, RTFx...).

Shared by the ``caption`` command, which prints the events as they come, and ``bench``, which reads the figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from hailo_whisper_ros.core import HailoWhisperError
from hailo_whisper_ros.core.audio import SAMPLE_RATE
from hailo_whisper_ros.core.streaming import FINAL, StreamingOptions, StreamingStats, StreamingTranscriber, TranscriptEvent

if TYPE_CHECKING:
    from hailo_whisper_ros.core.recognizer import Recognizer


@dataclass(frozen=True)
class CaptionRun:
    finals: tuple[TranscriptEvent, ...]  # with text, in order
    stats: StreamingStats
    figures: dict  # name -> number, in the order the caption command prints them


def caption_stream(
    recognizer: "Recognizer",
    audio: np.ndarray,
    streaming: StreamingOptions = StreamingOptions(),
    chunk_ms: int = 100,
    realtime: bool = False,
    on_event: Callable[[TranscriptEvent], None] | None = None,
) -> CaptionRun:
    """Feed 16 kHz mono ``audio`` in ``chunk_ms`` chunks, at real-time pace or as fast as it is processed, and
    transcribe it as it comes; ``on_event`` sees every partial and final."""
    if not 5 <= chunk_ms <= 10000:
        raise HailoWhisperError(f"chunk_ms must be in [5, 10000], not {chunk_ms}")
    transcriber = StreamingTranscriber(recognizer, streaming=streaming)
    chunk = chunk_ms * SAMPLE_RATE // 1000
    chunk_s = chunk / SAMPLE_RATE
    n_chunks = -(-len(audio) // chunk)
    finals = []
    delays_after_speech_ms = []  # real time only: from the end of the speech to its final
    processing_s = 0.0
    fed = 0
    started = time.perf_counter()
    while fed < n_chunks:
        # Real time: a chunk can be fed once its last sample was "recorded"; everything due is fed before the
        # worker runs, so a slow worker finds a backlog, as it would behind a microphone.
        due = min(int((time.perf_counter() - started) / chunk_s), n_chunks) if realtime else fed + 1
        if due <= fed:
            time.sleep(max(started + (fed + 1) * chunk_s - time.perf_counter(), 0.0))
            continue
        work_started = time.perf_counter()
        for index in range(fed, due):
            transcriber.feed(audio[index * chunk : (index + 1) * chunk])
        fed = due
        events = transcriber.process_pending() if fed < n_chunks else transcriber.flush()
        processing_s += time.perf_counter() - work_started
        for event in events:
            if on_event is not None:
                on_event(event)
            if event.kind == FINAL and event.text:  # an empty final held no speech
                finals.append(event)
                delays_after_speech_ms.append((time.perf_counter() - started - event.speech_end_s) * 1e3)

    stats = transcriber.stats()
    audio_s = len(audio) / SAMPLE_RATE
    memory = recognizer.memory
    full_segments = stats.utterances + stats.no_speech_rejections  # one decode per final
    figures = {
        "audio_s": audio_s,
        "model_memory_mb": memory.after_warmup_mb - memory.before_load_mb,
        "inference_calls": stats.inference_calls,
        # Every other successful decode was of a part of an utterance (a partial, or a pause that went on).
        "partial_segments": stats.inference_calls - stats.errors - full_segments,
        "full_segments": full_segments,
        "finals_decoded_in_pause": stats.finals_precomputed,
        "frames_transcribed": stats.frames_transcribed,
        "speech_s_transcribed": stats.speech_s_transcribed,
        "inference_s": stats.inference_s,
        "processing_s": processing_s,
        "rtfx": audio_s / processing_s if processing_s else 0.0,
        "final_latency_p50_ms": stats.final_latency_p50_ms,
        "final_latency_p95_ms": stats.final_latency_p95_ms,
        "partial_events": stats.partials,
        "partials_skipped": stats.partials_skipped,
        "no_speech_rejections": stats.no_speech_rejections,
        "errors": stats.errors,
        "audio_dropped_s": stats.audio_dropped_s,
    }
    if realtime and finals:
        # What a listener waits for: the VAD's min_silence_ms, then the latency above.
        figures["final_delay_after_speech_p50_ms"] = float(np.percentile(delays_after_speech_ms, 50))
        figures["final_delay_after_speech_p95_ms"] = float(np.percentile(delays_after_speech_ms, 95))
    return CaptionRun(tuple(finals), stats, figures)
