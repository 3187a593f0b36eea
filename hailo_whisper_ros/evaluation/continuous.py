"""Continuous speech captioned live: the dev set's clips joined by short gaps (0.1 to 0.3 s, seeded), shorter than
the VAD's min_silence_ms, so that a talker who hardly pauses makes utterances up to vad.max_speech_s, cut at quiet
points. Captioned with partials every second as fast as it is processed, under several partial schemes in turn
(interleaved rounds on a shared machine): the RTFx, the audio transcribed per audio received (partials and finals),
the finals' WER, the partials' freshness (arrival of a partial's last sample -> the partial) and the finals'
latency (end-of-utterance decision -> final).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hailo_whisper_ros.core.recognizer import Recognizer
from hailo_whisper_ros.core.transcripts import StreamingOptions
from hailo_whisper_ros.evaluation.captioning import caption_stream
from hailo_whisper_ros.evaluation.long_recording import LongRecording, build_long_recording
from hailo_whisper_ros.evaluation.memory import MemoryFigures
from hailo_whisper_ros.evaluation.scoring import word_errors

GAPS_S = (0.1, 0.3)  # between clips, drawn uniformly
SEED = 29
PARTIAL_INTERVAL_MS = 1000
# The schemes compared: partials as before this module (the whole utterance every second, no budget), the declared
# defaults (bounded tails under the budget), the budget alone (what the tails add), and none.
SCHEMES = {
    "partials, whole utterance (before)": StreamingOptions(
        partial_interval_ms=PARTIAL_INTERVAL_MS, partial_window_s=0.0, partial_budget=0.0),
    "partials, bounded (defaults)": StreamingOptions(partial_interval_ms=PARTIAL_INTERVAL_MS),
    "partials, whole utterance, budget": StreamingOptions(partial_interval_ms=PARTIAL_INTERVAL_MS,
                                                          partial_window_s=0.0),
    "no partials": StreamingOptions(partial_interval_ms=0),
}


@dataclass(frozen=True)
class ContinuousFigures:
    scheme: str
    audio_s: float
    rtfx: float  # audio / processing wall time
    transcribed_per_received: float  # audio passed to the recognizer per second of audio fed
    wer: float  # fraction, the finals joined against the references joined
    partials: int
    partials_deferred: int  # waited for streaming.partial_budget
    partials_skipped: int  # late
    partial_share: float  # partial decode time per second of audio, over the whole recording
    partial_freshness_p95_ms: float | None
    final_latency_p50_ms: float | None
    final_latency_p95_ms: float | None
    inference_calls: int
    frames_transcribed: int

    def as_json(self) -> dict:
        return asdict(self)


def continuous_recording(speech_dev: Path, seed: int = SEED, limit: int | None = None) -> LongRecording:
    """The dev set's speech clips (the first ``limit``) joined by seeded gaps of GAPS_S."""
    from hailo_whisper_ros.evaluation.datasets import list_clips

    speech = [clip for clip in list_clips(speech_dev).clips if clip.reference.strip()][:limit]
    gaps = np.random.default_rng(seed).uniform(*GAPS_S, size=len(speech))
    return build_long_recording(speech, gaps_s=tuple(float(gap) for gap in gaps))


def caption_continuous(recognizer: Recognizer, memory: MemoryFigures, recording: LongRecording, scheme: str,
                       ) -> ContinuousFigures:
    """``recording`` captioned with SCHEMES[scheme], as fast as it is processed."""
    run = caption_stream(recognizer, memory, recording.audio, SCHEMES[scheme])
    stats, figures = run.stats, run.figures
    reference = " ".join(clip.reference for clip in recording.clips)
    hypothesis = " ".join(event.text for event in run.finals)
    return ContinuousFigures(
        scheme=scheme,
        audio_s=figures.audio_s,
        rtfx=figures.rtfx,
        transcribed_per_received=stats.speech_s_transcribed / figures.audio_s,
        wer=word_errors([reference], [hypothesis]).wer,
        partials=stats.partials,
        partials_deferred=stats.partials_deferred,
        partials_skipped=stats.partials_skipped,
        partial_share=stats.partial_inference_s / figures.audio_s,
        partial_freshness_p95_ms=stats.partial_freshness_p95_ms,
        final_latency_p50_ms=stats.final_latency_p50_ms,
        final_latency_p95_ms=stats.final_latency_p95_ms,
        inference_calls=stats.inference_calls,
        frames_transcribed=stats.frames_transcribed,
    )


def median_figures(runs: list[ContinuousFigures]) -> ContinuousFigures:
    """One scheme's rounds as one row: the median of each timing, the counts and WER of the first round (they
    vary only with the timing of the budget)."""
    first = runs[0]

    def median(name: str) -> float | None:
        values = [getattr(run, name) for run in runs if getattr(run, name) is not None]
        return float(np.median(values)) if values else None

    timed = ("rtfx", "partial_share", "partial_freshness_p95_ms", "final_latency_p50_ms", "final_latency_p95_ms")
    return ContinuousFigures(**{**asdict(first), **{name: median(name) for name in timed}})
