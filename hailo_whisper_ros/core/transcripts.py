"""What streaming recognition reports: the partial and final transcript events, the counters, and the options
of the stream (the ``streaming.*`` and ``queue.max_audio_s`` parameters)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.options import Options, option

if TYPE_CHECKING:
    from hailo_whisper_ros.core.recognizer import TranscriptionResult
    from hailo_whisper_ros.core.word_timing import Word

PARTIAL = "partial"
FINAL = "final"


@dataclass(frozen=True)
class StreamingOptions(Options):
    """How the stream is worked through. Validated on construction."""

    PARAMETER_GROUP = "streaming"

    partial_interval_ms: int = option(
        1000, "Audio an open utterance must gain before its next partial transcript.", unit="ms",
        range=(200, 10000), off=0)
    partial_window_s: float = option(
        6.5, "Audio a partial decodes at most: the open utterance's tail since its last settled point, prompted with "
        "the settled text (core/partials.py), so that a partial's cost does not grow with the utterance; the final "
        "still decodes the whole utterance.", unit="s", range=(2.0, 30.0), off=0.0)
    partial_budget: float = option(
        0.05, "Share of real time (of the stream's audio) the partials' decodes may take: past it the next partial "
        "waits until the account is paid back, so partials come less often than partial_interval_ms.",
        unit="s/s", range=(0.01, 1.0), off=0.0)
    context_reset_silence_s: float = option(
        10.0, "With decoding.condition_on_previous: an utterance that starts after this much silence since the end "
        "of the previous one (on the audio's own sample clock) starts without context, as a new conversation.",
        unit="s", range=(0.1, 3600.0), off=0.0)
    max_queue_s: float = option(
        30.0, "Audio waiting for the worker that is kept; beyond it the oldest audio is dropped and counted.",
        unit="s", range=(1.0, 600.0), parameter="queue.max_audio_s")


@dataclass(frozen=True)
class TranscriptEvent:
    kind: str
    """PARTIAL or FINAL."""
    utterance_id: int
    """The same for the partials and the final of one utterance, and increasing: StreamingTranscriber counts from 1,
    UtteranceTranscriber keeps the sender's ids. Utterances that get no final (an inference error, a reset) leave
    gaps."""
    text: str
    """The transcript; empty for a final in which the recognizer found no speech."""
    stable_text: str
    """Partial: the words this partial shares with the previous partial of the utterance, from the start (compared
    without case and punctuation; empty for the first partial), for displays that should not flicker. Final: text."""
    start_sample: int
    """First sample of the audio transcribed (the VAD's pads included), in the input stream counted from the first
    sample fed. The utterances' [start_sample, end_sample) and the silences between them tile the stream."""
    end_sample: int
    """After the last sample transcribed: the utterance end for a final, the audio so far for a partial."""
    speech_start_sample: int
    """Where the VAD heard speech begin: the first window at or above its threshold (pads excluded)."""
    speech_end_sample: int
    """Where the VAD last heard speech: the end of the last window at or above its threshold."""
    latency_ms: float
    """Final: from the segmenter's end-of-utterance decision to the result. Partial: the inference time."""
    result: TranscriptionResult
    """The decode behind it; a partial's is of the utterance's tail only (streaming.partial_window_s), its segment
    times counted from the tail's start."""
    result_offset: int = 0
    """Samples from start_sample to the audio ``result`` decoded: a partial's settled audio before its tail."""

    @property
    def background_removed_s(self) -> float:
        """Audio at the end left out of the decode as background speech (decoding.background_trim_db)."""
        return self.result.background_removed_s

    @property
    def language(self) -> str:
        """The language decoded in: detected (decoding.language auto) or given."""
        return self.result.language

    @property
    def language_prob(self) -> float:
        """The detector's probability of ``language``; NaN when it was given."""
        return self.result.language_prob

    @property
    def speech_start_s(self) -> float:
        return self.speech_start_sample / SAMPLE_RATE

    @property
    def words(self) -> tuple[Word, ...]:
        """With decoding.word_timestamps: the words of ``result`` (a final's: all of ``text``; a partial's: those of
        its tail, after the settled text), their times in seconds of the stream (as start_sample / SAMPLE_RATE);
        empty otherwise."""
        offset_s = (self.start_sample + self.result_offset) / SAMPLE_RATE
        return tuple(word.shifted(offset_s) for word in self.result.words)

    @property
    def speech_end_s(self) -> float:
        return self.speech_end_sample / SAMPLE_RATE


@dataclass
class LoopGuardTally:
    """The loop guards fired over many transcriptions and how their loops ended: the one running count behind
    the streaming stats, `pipeline --json` and `hailo-whisper variants`."""

    fired: Counter = field(default_factory=Counter)  # by decoding.GUARDS name
    recovered: int = 0  # segments whose re-decode ended at EOT
    unrecovered: int = 0  # segments whose kept decode did not end at EOT (a guard's cut, or max_new_tokens)

    def add(self, result: TranscriptionResult) -> None:
        self.fired.update(result.guards)
        self.recovered += result.recoveries
        self.unrecovered += result.loops


@dataclass(frozen=True)
class StreamingStats:
    """A snapshot of the counters, cumulative since construction (reset() does not clear them)."""

    audio_in_s: float  # fed
    audio_dropped_s: float  # removed from the queue unprocessed: beyond max_queue_s, or by reset()
    queue_depth_s: float  # waiting for the worker now
    max_queue_depth_s: float
    audio_processed_s: float  # taken by the worker; audio_in_s = processed + dropped + queue depth
    utterances: int  # finals with text
    partials: int  # partials emitted
    partials_skipped: int  # partials due while the worker was more than one interval behind, or the end was queued
    no_speech_rejections: int  # finals with empty text: the recognizer found no speech in the utterance
    inference_calls: int  # recognizer calls, partial and final, failed ones included
    inference_s: float  # their wall time
    speech_s_transcribed: float  # audio passed to the recognizer, summed over the successful calls
    frames_transcribed: int  # mel frames the encoder ran on, over the successful calls
    errors: int  # inference calls that raised; their utterances were skipped
    finals_precomputed: int  # finals and no-speech rejections decoded during the pause that ended the utterance
    final_latencies_ms: tuple[float, ...]  # of the last FINAL_LATENCY_HISTORY finals, oldest first
    guards_fired: dict[str, int] = field(default_factory=dict)  # loop guards fired in decodes, by decoding.GUARDS name
    loop_recoveries: int = 0  # of those, decodes whose re-decode ended at EOT
    unrecovered_loops: int = 0  # decodes whose kept text did not end at EOT (a guard's cut, or max_new_tokens)
    # From the arrival of each final's last speech sample (StreamingTranscriber: where the VAD last heard speech;
    # UtteranceTranscriber: the end of the utterance's audio, its trailing pad included) to the final.
    speech_end_latencies_ms: tuple[float, ...] = ()
    decoder_s: float = 0.0  # of inference_s: the decoder's time (first passes and steps)
    decoder_steps: int = 0  # one-token decoder passes over the successful calls
    draft_tokens_accepted: int = 0  # tokens verified from the previous decode's draft instead (no pass of their own)
    partial_inference_s: float = 0.0  # of inference_s: the partials' decodes (not the pause's, which a final reuses)
    partial_share: float = 0.0  # partial_inference_s per second of the latest stream audio (partials.SHARE_HORIZON_S)
    partials_deferred: int = 0  # partials due that waited for streaming.partial_budget
    # From the arrival of a partial's last sample to the partial, of the last FINAL_LATENCY_HISTORY partials.
    partial_freshness_ms: tuple[float, ...] = ()
    background_removed_s: float = 0.0  # audio the finals left out as background after the talker (background_trim_db)
    background_removals: int = 0  # finals that left some out

    @property
    def real_time_factor(self) -> float:
        """Inference time per second of audio processed (below 1 keeps up with real time)."""
        return self.inference_s / self.audio_processed_s if self.audio_processed_s else 0.0

    @property
    def final_latency_p50_ms(self) -> float | None:
        return _percentile(self.final_latencies_ms, 50)

    @property
    def final_latency_p95_ms(self) -> float | None:
        return _percentile(self.final_latencies_ms, 95)

    @property
    def partial_freshness_p95_ms(self) -> float | None:
        return _percentile(self.partial_freshness_ms, 95)

    @property
    def speech_end_latency_p50_ms(self) -> float | None:
        return _percentile(self.speech_end_latencies_ms, 50)

    @property
    def speech_end_latency_p95_ms(self) -> float | None:
        return _percentile(self.speech_end_latencies_ms, 95)


def _percentile(values, q: float) -> float | None:
    """The q-th percentile of the latencies recorded so far; None before the first."""
    return float(np.percentile(values, q)) if values else None


def stable_prefix(previous: str, current: str) -> str:
    """The leading words of ``current`` that ``previous`` has too, compared without case and edge punctuation."""
    def key(word: str) -> str:
        return word.strip(".,!?;:\"'()").lower()

    current_words = current.split()
    shared = 0
    for before, now in zip(previous.split(), current_words):
        if key(before) != key(now):
            break
        shared += 1
    return " ".join(current_words[:shared])
