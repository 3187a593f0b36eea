"""Soak runs: a long stream of real speech and silence through the streaming recognizer, every utterance accounted
for, memory and exceptions watched.

The input cycles through real speech clips, each trimmed to its speech (``build_long_recording``) and followed by a
silence, now and then a long one; the stream positions of every clip's speech are known. After the run, each final
is matched to the clip whose speech it overlaps most, and each clip of the input lands in exactly one category:

- ``dropped``: some of its speech was dropped from a full queue (the recognizer fell behind);
- ``transcribed``: a final with text covers it;
- ``no speech``: only finals with empty text (judged speech-free) cover it;
- ``missing``: nothing covers it: an utterance the stream lost without saying so. A sound run has none.

``run_soak`` drives a StreamingTranscriber the way a live source does, from two threads: a feeder pushing 16 kHz
chunks (at a multiple of real time, or as fast as the worker takes them) and a worker transcribing. The ROS variant
(evaluation.ros_soak) reuses the input, the accounting and the report.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.recognizer import Recognizer
from hailo_whisper_ros.core.resources import resident_mb
from hailo_whisper_ros.core.streaming import StreamingTranscriber
from hailo_whisper_ros.core.transcripts import FINAL, StreamingOptions
from hailo_whisper_ros.evaluation.datasets import Clip
from hailo_whisper_ros.evaluation.long_recording import build_long_recording
from hailo_whisper_ros.evaluation.scoring import word_errors

# Silences after the clips, cycled: mostly the pauses between sentences, sometimes a stretch with nobody talking.
GAPS_S = (1.0, 1.5, 2.0, 1.0, 3.0, 12.0)
# A final belongs to a clip when it overlaps the clip's speech widened by this much: the VAD's pads and pre-roll
# (300 ms by default) reach before the speech, its trailing pad after; the gaps (>= 1 s) keep clips apart.
MATCH_TOLERANCE_S = 0.35
# As fast as possible: the feeder waits while the worker has this much audio queued, so nothing is dropped.
BACKPRESSURE_S = 1.0
IDLE_WAIT_S = 0.002  # how long the worker or the paced feeder sleeps when there is nothing to do yet
MAX_EXCEPTIONS_KEPT = 10


@dataclass(frozen=True)
class SoakClip:
    index: int  # position in the input, from 0
    pass_index: int  # how many times the clip list was gone through before it, from 0
    reference: str
    source: str
    speech_start: int  # stream samples
    speech_end: int


class SoakInput:
    """The clips' recording repeated until at least ``minutes`` of audio, ended in the silence after a clip."""

    def __init__(self, utterances: Sequence[Clip], minutes: float):
        if not math.isfinite(minutes) or minutes <= 0:
            raise HailoWhisperError(f"the soak needs a positive number of minutes, not {minutes!r}")
        speech = [u for u in utterances if u.reference.strip()]
        if not speech:
            raise HailoWhisperError("the soak needs speech clips with reference transcripts")
        self.recording = build_long_recording(speech, gaps_s=GAPS_S)
        pass_samples = len(self.recording.audio)
        wanted = int(round(minutes * 60 * SAMPLE_RATE))
        clips = []
        for pass_index in range(wanted // pass_samples + 1):
            offset = pass_index * pass_samples
            for placed in self.recording.clips:
                start, end = offset + placed.speech_start, offset + placed.speech_end
                if start >= wanted:
                    break
                clips.append(SoakClip(len(clips), pass_index, placed.reference, placed.source, start, end))
                # A clip is never cut: the input goes on to the silence after it.
                wanted = max(wanted, end + SAMPLE_RATE)
        self.clips = tuple(clips)
        self.total_samples = wanted

    @property
    def duration_s(self) -> float:
        return self.total_samples / SAMPLE_RATE

    def audio(self, start: int, end: int) -> np.ndarray:
        """Samples [start, end) of the input (float32, 16 kHz mono)."""
        pass_samples = len(self.recording.audio)
        pieces = []
        while start < end:
            within = start % pass_samples
            take = min(end - start, pass_samples - within)
            pieces.append(self.recording.audio[within : within + take])
            start += take
        return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)

    def chunks(self, chunk_samples: int):
        """(start sample, audio) of consecutive chunks covering the input."""
        for start in range(0, self.total_samples, chunk_samples):
            yield start, self.audio(start, min(start + chunk_samples, self.total_samples))


@dataclass(frozen=True)
class FinalSpan:
    start_sample: int  # what the final transcribed, pads included
    end_sample: int
    text: str
    delay_s: float | None = None  # from the feed of its last sample to the final's arrival


def result_delays(finals: Sequence[FinalSpan]) -> dict[str, float | None]:
    """p50, p95 and max of the finals' delays after their audio: what the queue limit keeps bounded."""
    delays = [final.delay_s for final in finals if final.delay_s is not None]
    if not delays:
        return {"p50": None, "p95": None, "max": None}
    return {"p50": float(np.percentile(delays, 50)), "p95": float(np.percentile(delays, 95)), "max": max(delays)}


@dataclass(frozen=True)
class Accounting:
    expected: int
    transcribed: int
    dropped: int
    dropped_heard: int  # of the dropped: still in a final with text (the audio before or after the gap)
    no_speech: int
    missing: tuple[SoakClip, ...]
    stray_finals: tuple[FinalSpan, ...]  # finals with text over no clip's speech: words heard in silence
    wer: float | None  # over the clips with text of their own (a clip heard in its neighbour's final has none)
    wer_per_pass: tuple[float, ...]

    @property
    def accounted(self) -> bool:
        return not self.missing and self.transcribed + self.dropped + self.no_speech == self.expected


def _overlap(a_start: int, a_end: int, b_start: int, b_end: int) -> int:
    return max(0, min(a_end, b_end) - max(a_start, b_start))


def account(
    clips: Sequence[SoakClip], finals: Sequence[FinalSpan], dropped: Sequence[tuple[int, int]]
) -> Accounting:
    """Puts every clip in one category (see the module docstring); ``dropped`` holds the stream ranges
    [start, end) dropped from the queue."""
    texts, covered, heard, stray = _match_finals(clips, finals)
    dropped_clips = [
        any(_overlap(clip.speech_start, clip.speech_end, start, end) for start, end in dropped) for clip in clips
    ]
    transcribed = [i for i in range(len(clips)) if not dropped_clips[i] and heard[i]]
    no_speech = [i for i in range(len(clips)) if not dropped_clips[i] and covered[i] and not heard[i]]
    missing = tuple(clip for i, clip in enumerate(clips) if not dropped_clips[i] and not covered[i])
    with_text = [i for i in transcribed if texts[i]]
    passes = sorted({clips[i].pass_index for i in with_text})
    return Accounting(
        expected=len(clips),
        transcribed=len(transcribed),
        dropped=sum(dropped_clips),
        dropped_heard=sum(dropped_clips[i] and heard[i] for i in range(len(clips))),
        no_speech=len(no_speech),
        missing=missing,
        stray_finals=tuple(stray),
        wer=_wer(clips, texts, with_text),
        wer_per_pass=tuple(_wer(clips, texts, [i for i in with_text if clips[i].pass_index == p]) for p in passes),
    )


def _match_finals(
    clips: Sequence[SoakClip], finals: Sequence[FinalSpan]
) -> tuple[list[list[str]], list[bool], list[bool], list[FinalSpan]]:
    """Each final matched to the clips whose speech (widened by MATCH_TOLERANCE_S) it overlaps. Returns per clip
    the texts of the finals that overlap it most, whether any final covers it and whether one with text does; and
    the finals with text that overlap no clip."""
    tolerance = int(MATCH_TOLERANCE_S * SAMPLE_RATE)
    starts = np.array([clip.speech_start for clip in clips], dtype=np.int64)
    ends = np.array([clip.speech_end for clip in clips], dtype=np.int64)
    texts: list[list[str]] = [[] for _ in clips]  # the finals' texts, each given to the clip it overlaps most
    covered = [False] * len(clips)  # by any final
    heard = [False] * len(clips)  # by a final with text (two clips in one final are both heard)
    stray = []
    for final in finals:
        first = int(np.searchsorted(ends, final.start_sample - tolerance, side="right"))
        last = int(np.searchsorted(starts, final.end_sample + tolerance))
        overlaps = {
            i: _overlap(final.start_sample, final.end_sample, starts[i] - tolerance, ends[i] + tolerance)
            for i in range(first, last)
        }
        overlaps = {i: overlap for i, overlap in overlaps.items() if overlap > 0}
        if not overlaps:
            if final.text:
                stray.append(final)
            continue
        for i in overlaps:
            covered[i] = True
            heard[i] = heard[i] or bool(final.text)
        if final.text:
            texts[max(overlaps, key=overlaps.get)].append(final.text)
    return texts, covered, heard, stray


def _wer(clips: Sequence[SoakClip], texts: list[list[str]], indices: list[int]) -> float | None:
    """The WER of the clips at ``indices`` against the texts matched to them; None for no clip."""
    if not indices:
        return None
    return word_errors([clips[i].reference for i in indices], [" ".join(texts[i]) for i in indices]).wer


@dataclass(frozen=True)
class SoakReport:
    mode: str  # how the stream was fed, for the heading
    audio_in_s: float
    audio_processed_s: float
    audio_dropped_s: float
    speech_in_finals_s: float  # audio covered by the finals with text
    max_queue_depth_s: float
    queue_limit_s: float | None  # None when the nodes' parameter is not known here
    accounting: Accounting
    rss_mb: dict[str, float | None]  # "start", "middle", "end"; None where it could not be measured
    exceptions: tuple[str, ...]  # the first MAX_EXCEPTIONS_KEPT
    exception_count: int
    inference_errors: int
    final_latency_p50_ms: float | None
    final_latency_p95_ms: float | None
    result_delay_s: dict[str, float | None]  # result_delays() of the finals
    wall_s: float
    extra: dict[str, object] = field(default_factory=dict)  # figures of one mode only

    @property
    def passed(self) -> bool:
        return self.exception_count == 0 and self.inference_errors == 0 and self.accounting.accounted

    def problems(self) -> list[str]:
        problems = []
        if self.exception_count:
            problems.append(f"{self.exception_count} exception(s)")
        if self.inference_errors:
            problems.append(f"{self.inference_errors} inference error(s)")
        if self.accounting.missing:
            problems.append(f"{len(self.accounting.missing)} utterance(s) missing")
        return problems


class Failures:
    """Exceptions of the soak's threads: counted, the first few kept with their traceback's last line."""

    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0
        self.kept: list[str] = []

    def record(self, where: str, error: BaseException) -> None:
        frame = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
        place = f" at {frame[0].filename}:{frame[0].lineno}" if frame else ""
        with self.lock:
            self.count += 1
            if len(self.kept) < MAX_EXCEPTIONS_KEPT:
                self.kept.append(f"{where}: {type(error).__name__}: {error}{place}")


def run_soak(
    recognizer: Recognizer,
    soak_input: SoakInput,
    speed: float | None = None,
    chunk_ms: int = 100,
    streaming: StreamingOptions = StreamingOptions(),
    progress: Callable[[float, object], None] | None = None,
    progress_interval_s: float = 30.0,
) -> SoakReport:
    """Stream the input through a StreamingTranscriber on a feeder and a worker thread (see the module docstring).

    ``speed``: feed at this multiple of real time, dropping what the worker cannot take in time; None: as fast as the
    worker takes it (the feeder waits while BACKPRESSURE_S is queued). ``progress(seconds fed, stats)`` is called
    every ``progress_interval_s`` of wall time from the calling thread."""
    if speed is not None and not (math.isfinite(speed) and speed > 0):
        raise HailoWhisperError(f"speed must be a positive multiple of real time, not {speed!r}")
    if not 5 <= chunk_ms <= 10000:
        raise HailoWhisperError(f"chunk_ms must be in [5, 10000], not {chunk_ms}")
    soak = InProcessSoak(recognizer, soak_input, speed, chunk_ms, streaming)
    wall_s = soak.run(progress, progress_interval_s)
    return soak.report(wall_s)


class InProcessSoak:
    """One soak through a StreamingTranscriber in this process: the feeder thread (feed) pushes the input's chunks,
    the worker thread (work) transcribes them, and both record what the report needs."""

    def __init__(self, recognizer: Recognizer, soak_input: SoakInput, speed: float | None, chunk_ms: int,
                 streaming: StreamingOptions):
        self.soak_input = soak_input
        self.speed = speed
        self.streaming = streaming
        self.decoding = DecodingOptions()
        self.transcriber = StreamingTranscriber(recognizer, decoding=self.decoding, streaming=streaming)
        self.chunk_samples = chunk_ms * SAMPLE_RATE // 1000
        self.queue_limit = int(round(streaming.max_queue_s * SAMPLE_RATE))
        self.failures = Failures()
        self.finals: list[FinalSpan] = []
        self.finals_at_token_limit = 0  # finals whose decode ran into max_new_tokens: repetition loops, mostly
        self.dropped_ranges: list[tuple[int, int]] = []  # stream ranges [start, end) the queue dropped
        self.rss: dict[str, float | None] = {"start": resident_mb(), "middle": None, "end": None}
        self.fed = 0  # samples fed so far, read by the progress loop
        self.fed_until: list[int] = []  # stream position after each feed ...
        self.fed_at: list[float] = []  # ... and when that feed happened
        self.feeding_done = threading.Event()

    def run(self, progress: Callable[[float, object], None] | None, progress_interval_s: float) -> float:
        """Feed and transcribe the whole input; returns the wall time it took."""
        started = time.perf_counter()
        # Daemons: Ctrl-C in the waiting thread ends the command without waiting for the rest of the input.
        feeder = threading.Thread(target=self.feed, name="soak-feeder", daemon=True)
        worker = threading.Thread(target=self.work, name="soak-worker", daemon=True)
        feeder.start()
        worker.start()
        next_progress = started + progress_interval_s
        while worker.is_alive():
            worker.join(timeout=0.5)
            if progress is not None and time.perf_counter() >= next_progress:
                next_progress += progress_interval_s
                progress(self.fed / SAMPLE_RATE, self.transcriber.stats())
        feeder.join()
        wall_s = time.perf_counter() - started
        self.rss["end"] = resident_mb()
        return wall_s

    def feed(self) -> None:
        """The feeder thread: every chunk of the input, paced by ``speed`` or by the worker."""
        started = time.perf_counter()
        for start, audio in self.soak_input.chunks(self.chunk_samples):
            end = start + len(audio)
            try:
                self._wait_to_feed(started, end)
                self._feed_chunk(start, audio)
            except Exception as error:  # a soak reports exceptions instead of stopping at the first
                self.failures.record("feeder", error)
            self.fed = end
            if self.rss["middle"] is None and end >= self.soak_input.total_samples // 2:
                self.rss["middle"] = resident_mb()
        self.feeding_done.set()

    def _wait_to_feed(self, started: float, chunk_end: int) -> None:
        """Until the chunk ending at ``chunk_end`` is due at ``speed``, or, as fast as possible, until the worker's
        queue is down to BACKPRESSURE_S."""
        if self.speed is not None:
            due = started + chunk_end / SAMPLE_RATE / self.speed
            time.sleep(max(due - time.perf_counter(), 0.0))
        else:
            while self.transcriber.stats().queue_depth_s > BACKPRESSURE_S:
                time.sleep(IDLE_WAIT_S)

    def _feed_chunk(self, start: int, audio: np.ndarray) -> None:
        end = start + len(audio)
        dropped_before = self.transcriber.stats().audio_dropped_s
        self.fed_at.append(time.perf_counter())  # before the audio is visible to the worker, fed_at first
        self.fed_until.append(end)
        self.transcriber.feed(audio)
        newly_dropped = int(round((self.transcriber.stats().audio_dropped_s - dropped_before) * SAMPLE_RATE))
        if newly_dropped:
            # Only feed() drops here, and then the queue holds exactly its limit of the newest audio: what went is
            # the oldest audio just before that.
            self._record_drop(end - self.queue_limit - newly_dropped, end - self.queue_limit)

    def _record_drop(self, start: int, end: int) -> None:
        """Adds [start, end) to the dropped ranges, extending the last one when it ends where this one starts."""
        if self.dropped_ranges and self.dropped_ranges[-1][1] == start:
            self.dropped_ranges[-1] = (self.dropped_ranges[-1][0], end)
        else:
            self.dropped_ranges.append((start, end))

    def work(self) -> None:
        """The worker thread: transcribe what is queued until the feeder is done, then flush."""
        while True:
            done = self.feeding_done.is_set()  # read before the last process_pending, so no audio is left behind
            try:
                events = self.transcriber.process_pending()
                self._collect(events)
            except Exception as error:
                self.failures.record("worker", error)
                events = []
            if done:
                break
            if not events and self.transcriber.stats().queue_depth_s == 0:
                time.sleep(IDLE_WAIT_S)
        try:
            self._collect(self.transcriber.flush())
        except Exception as error:
            self.failures.record("worker", error)

    def _collect(self, events) -> None:
        now = time.perf_counter()
        for event in events:
            if event.kind == FINAL:
                # A final's last sample came with the first feed reaching it.
                feed = bisect.bisect_left(self.fed_until, event.end_sample)
                delay = now - self.fed_at[feed] if feed < len(self.fed_at) else None
                self.finals.append(FinalSpan(event.start_sample, event.end_sample, event.text, delay))
                limit = self.decoding.max_new_tokens
                self.finals_at_token_limit += any(len(segment.tokens) >= limit for segment in event.result.segments)

    def report(self, wall_s: float) -> SoakReport:
        stats = self.transcriber.stats()
        finals = self.finals
        return SoakReport(
            mode="as fast as the worker takes it" if self.speed is None else f"{self.speed:g}x real time",
            audio_in_s=stats.audio_in_s,
            audio_processed_s=stats.audio_processed_s,
            audio_dropped_s=stats.audio_dropped_s,
            speech_in_finals_s=sum(f.end_sample - f.start_sample for f in finals if f.text) / SAMPLE_RATE,
            max_queue_depth_s=stats.max_queue_depth_s,
            queue_limit_s=self.streaming.max_queue_s,
            accounting=account(self.soak_input.clips, finals, self.dropped_ranges),
            rss_mb=self.rss,
            exceptions=tuple(self.failures.kept),
            exception_count=self.failures.count,
            inference_errors=stats.errors,
            final_latency_p50_ms=stats.final_latency_p50_ms,
            final_latency_p95_ms=stats.final_latency_p95_ms,
            result_delay_s=result_delays(finals),
            wall_s=wall_s,
            extra={
                "partial results": stats.partials,
                "partials skipped (behind)": stats.partials_skipped,
                "finals cut at max_new_tokens": self.finals_at_token_limit,
            },
        )


def format_report(report: SoakReport) -> str:
    """The soak's figures as the command prints them."""
    accounting = report.accounting

    def mb(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f}"

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    def percent(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.2f}%"

    rss = report.rss_mb
    growth = (
        f"{100 * (rss['end'] - rss['middle']) / rss['middle']:+.2f}%"
        if rss["end"] is not None and rss["middle"] is not None
        else "n/a"
    )
    lines = [
        f"soak figures ({report.mode}, {report.wall_s:.1f} s wall, "
        f"{report.audio_in_s / report.wall_s if report.wall_s else 0:.1f}x real time):",
        f"  audio in (s)                      {report.audio_in_s:.1f}",
        f"  audio processed (s)               {report.audio_processed_s:.1f}",
        f"  audio dropped (s)                 {report.audio_dropped_s:.1f}",
        f"  speech in finals with text (s)    {report.speech_in_finals_s:.1f}",
        f"  max queue depth (s)               {report.max_queue_depth_s:.2f}"
        + ("" if report.queue_limit_s is None else f" (limit {report.queue_limit_s:g})"),
        f"  utterances expected               {accounting.expected}",
        f"    transcribed                     {accounting.transcribed}",
        f"    dropped (audio lost to queue)   {accounting.dropped} "
        f"({accounting.dropped_heard} still in a final with text)",
        f"    judged no speech                {accounting.no_speech}",
        f"    missing (unaccounted)           {len(accounting.missing)}",
        f"  finals with text outside speech   {len(accounting.stray_finals)}",
        f"  WER of the transcribed            {percent(accounting.wer)}"
        f" (per pass: {' '.join(percent(w) for w in accounting.wer_per_pass) or '-'})",
        f"  final latency p50 / p95 (ms)      {ms(report.final_latency_p50_ms)} / {ms(report.final_latency_p95_ms)}",
        "  audio fed -> final p50/p95/max (s) "
        + " / ".join("-" if v is None else f"{v:.2f}" for v in report.result_delay_s.values()),
        f"  resident memory start (MB)        {mb(rss['start'])}",
        f"  resident memory middle (MB)       {mb(rss['middle'])}",
        f"  resident memory end (MB)          {mb(rss['end'])} ({growth} vs middle)",
        f"  inference errors                  {report.inference_errors}",
        f"  exceptions                        {report.exception_count}",
    ]
    lines += [f"  {key:<34}{value}" for key, value in report.extra.items()]
    lines += _details(report)
    problems = report.problems()
    lines.append("soak passed" if not problems else f"soak FAILED: {', '.join(problems)}")
    return "\n".join(lines)


def _details(report: SoakReport) -> list[str]:
    """What went wrong, one line each: the exceptions kept, then the first missing utterances and stray finals."""
    accounting = report.accounting
    lines = [f"    {text}" for text in report.exceptions]
    lines += [
        f"    missing: clip {clip.index} (pass {clip.pass_index}) {clip.source} at "
        f"{clip.speech_start / SAMPLE_RATE:.2f} s"
        for clip in accounting.missing[:MAX_EXCEPTIONS_KEPT]
    ]
    lines += [
        f"    outside speech: {final.start_sample / SAMPLE_RATE:.2f}-{final.end_sample / SAMPLE_RATE:.2f} s "
        f"{final.text!r}"
        for final in accounting.stray_finals[:MAX_EXCEPTIONS_KEPT]
    ]
    return lines
