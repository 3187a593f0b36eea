"""Live captioning of a recording: the audio fed chunk by chunk to a StreamingTranscriber, as a microphone would,
and the Pi 5 Hailo-8L study's captioning figures (inference calls, segments, frames, speech time, RTFx...).

Shared by the ``caption`` command, which prints the events as they come, and ``bench``, which reads the figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.recognizer import Recognizer
from hailo_whisper_ros.core.streaming import StreamingTranscriber
from hailo_whisper_ros.core.transcripts import FINAL, StreamingOptions, StreamingStats, TranscriptEvent
from hailo_whisper_ros.evaluation.memory import MemoryFigures


@dataclass(frozen=True)
class CaptionFigures:
    """The figures of one captioning run, in the order the caption command prints them."""

    audio_s: float
    model_memory_mb: float  # the recognizer's load and warm-up (MemoryFigures.model_mb)
    inference_calls: int
    partial_segments: int  # decodes of part of an utterance: a partial, or a pause that went on
    full_segments: int  # decodes of a whole utterance: one per final
    finals_decoded_in_pause: int  # of the full segments: decoded in the pause before the utterance ended
    frames_transcribed: int
    speech_s_transcribed: float
    inference_s: float
    processing_s: float
    rtfx: float  # audio / processing wall time
    final_latency_p50_ms: float | None
    final_latency_p95_ms: float | None
    partial_events: int
    partials_skipped: int
    no_speech_rejections: int
    errors: int
    audio_dropped_s: float
    decoder_steps: int = 0  # one-token decoder passes, partials and finals
    draft_tokens_accepted: int = 0  # tokens verified from the previous decode's draft, without a pass of their own
    decoder_ms_per_token: float = 0.0  # decoder time (first passes, steps) per token decoded, drafts included
    # Fed in real time only (None otherwise): what a listener waits for, the VAD's min_silence_ms then the latency.
    final_delay_after_speech_p50_ms: float | None = None
    final_delay_after_speech_p95_ms: float | None = None

    def as_json(self) -> dict:
        """The figures by name, the real-time ones only where measured."""
        return {
            name: value for name, value in asdict(self).items() if value is not None or name not in REAL_TIME_ONLY
        }


REAL_TIME_ONLY = ("final_delay_after_speech_p50_ms", "final_delay_after_speech_p95_ms")


@dataclass(frozen=True)
class CaptionRun:
    finals: tuple[TranscriptEvent, ...]  # with text, in order
    stats: StreamingStats
    figures: CaptionFigures


def caption_stream(
    recognizer: Recognizer,
    memory: MemoryFigures,
    audio: np.ndarray,
    streaming: StreamingOptions = StreamingOptions(),
    chunk_ms: int = 100,
    realtime: bool = False,
    on_event: Callable[[TranscriptEvent], None] | None = None,
    decoding: DecodingOptions = DecodingOptions(),
) -> CaptionRun:
    """Feed 16 kHz mono ``audio`` in ``chunk_ms`` chunks, at real-time pace or as fast as it is processed, and
    transcribe it as it comes; ``on_event`` sees every partial and final. ``memory``: the recognizer's, from
    evaluation.memory.load_recognizer."""
    if not 5 <= chunk_ms <= 10000:
        raise HailoWhisperError(f"chunk_ms must be in [5, 10000], not {chunk_ms}")
    transcriber = StreamingTranscriber(recognizer, decoding=decoding, streaming=streaming)
    finals, delays_after_speech_ms, processing_s = _feed(
        transcriber, audio, chunk_ms * SAMPLE_RATE // 1000, realtime, on_event
    )
    stats = transcriber.stats()
    # The delays after speech are a listener's wait only when the audio came at a microphone's pace.
    figures = _figures(stats, memory, len(audio) / SAMPLE_RATE, processing_s,
                       delays_after_speech_ms if realtime else [])
    return CaptionRun(tuple(finals), stats, figures)


def _feed(
    transcriber: StreamingTranscriber,
    audio: np.ndarray,
    chunk: int,
    realtime: bool,
    on_event: Callable[[TranscriptEvent], None] | None,
) -> tuple[list[TranscriptEvent], list[float], float]:
    """Feeds ``audio`` in chunks of ``chunk`` samples and transcribes what is due after each feed, flushing after
    the last. Returns the finals with text, each one's delay after the end of its speech (ms), and the seconds
    spent feeding and transcribing."""
    chunk_s = chunk / SAMPLE_RATE
    n_chunks = -(-len(audio) // chunk)
    finals = []
    delays_after_speech_ms = []  # from the end of the speech to its final
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
    return finals, delays_after_speech_ms, processing_s


def _figures(stats: StreamingStats, memory: MemoryFigures, audio_s: float, processing_s: float,
             delays_after_speech_ms: list[float]) -> CaptionFigures:
    full_segments = stats.utterances + stats.no_speech_rejections  # one decode per final
    delays = bool(delays_after_speech_ms)
    return CaptionFigures(
        audio_s=audio_s,
        model_memory_mb=memory.model_mb,
        inference_calls=stats.inference_calls,
        # Every other successful decode was of a part of an utterance (a partial, or a pause that went on).
        partial_segments=stats.inference_calls - stats.errors - full_segments,
        full_segments=full_segments,
        finals_decoded_in_pause=stats.finals_precomputed,
        frames_transcribed=stats.frames_transcribed,
        speech_s_transcribed=stats.speech_s_transcribed,
        inference_s=stats.inference_s,
        processing_s=processing_s,
        rtfx=audio_s / processing_s if processing_s else 0.0,
        final_latency_p50_ms=stats.final_latency_p50_ms,
        final_latency_p95_ms=stats.final_latency_p95_ms,
        partial_events=stats.partials,
        partials_skipped=stats.partials_skipped,
        no_speech_rejections=stats.no_speech_rejections,
        errors=stats.errors,
        audio_dropped_s=stats.audio_dropped_s,
        decoder_steps=stats.decoder_steps,
        draft_tokens_accepted=stats.draft_tokens_accepted,
        decoder_ms_per_token=1e3 * stats.decoder_s / max(stats.decoder_steps + stats.draft_tokens_accepted, 1),
        final_delay_after_speech_p50_ms=float(np.percentile(delays_after_speech_ms, 50)) if delays else None,
        final_delay_after_speech_p95_ms=float(np.percentile(delays_after_speech_ms, 95)) if delays else None,
    )
