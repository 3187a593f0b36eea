"""Word timings and word confidence (decoding.word_timestamps) measured on a speech folder: `hailo-whisper
word-timings`.

- Timings: our words against faster-whisper's ``word_timestamps=True`` on the same weights (float32, greedy, no
  timestamps, no VAD, as evaluation/engines.FasterWhisperEngine decodes). The two word sequences are aligned by
  their normalised text (difflib's longest matching blocks); over the matched words, the median and 90th
  percentile of |start difference| and |end difference|; the words of either side left unmatched are counted.
- Confidence: on noisy variants of the clips (evaluation/noise.py), each of our words is labelled right when the
  alignment of the hypothesis to the reference (jiwer, after core.text.normalise) keeps it, wrong otherwise; the
  AUROC of the word probability separating right from wrong words (0.5: no better than chance).
- Cost: each clean clip decoded with word timestamps on and off, interleaved; the decoder time of each, the
  alignment passes' share, and the alignment passes run while off (0 is the contract).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.recognizer import Recognizer
from hailo_whisper_ros.core.text import normalise
from hailo_whisper_ros.core.word_timing import Word
from hailo_whisper_ros.evaluation.datasets import Clip
from hailo_whisper_ros.evaluation.engines import progress
from hailo_whisper_ros.evaluation.noise import noisy_set

TARGET_MEDIAN_MS = 20.0  # issue 30: median |start| and |end| difference from faster-whisper
TARGET_P90_MS = 80.0  # and their 90th percentile
TARGET_AUROC = 0.8


@dataclass(frozen=True)
class TimingFigures:
    matched: int  # words of ours matched to one of faster-whisper's by text
    unmatched_ours: int
    unmatched_reference: int  # faster-whisper's words left unmatched
    start_median_ms: float
    start_p90_ms: float
    end_median_ms: float
    end_p90_ms: float


@dataclass(frozen=True)
class ConfidenceFigures:
    condition: str  # NOISE:SNR_DB, or "pooled" over the conditions
    words: int
    wrong: int
    auroc: float
    right_mean_probability: float
    wrong_mean_probability: float


@dataclass(frozen=True)
class CostFigures:
    clips: int
    decoder_ms_off: float  # median per clip
    decoder_ms_on: float
    word_timing_ms: float  # median per clip of the alignment passes (of decoder_ms_on)
    alignment_runs_off: int  # alignment passes while word_timestamps was off: must be 0


def words_as_json(words: Sequence[Word]) -> list[dict]:
    """Words as `pipeline --json`, `caption --json` and this command write them: times in seconds to the ms."""
    return [{"text": word.text, "start_s": round(word.start_s, 3), "end_s": round(word.end_s, 3),
             "probability": round(word.probability, 4)} for word in words]


def faster_whisper_words(model, audio: np.ndarray) -> list[Word]:
    """faster-whisper's words of ``audio``, decoded as our recognizer decodes, with word_timestamps=True."""
    segments, _ = model.transcribe(
        audio, language="en", beam_size=1, temperature=0.0, without_timestamps=True, vad_filter=False,
        condition_on_previous_text=False, word_timestamps=True,
    )
    return [Word(w.word.strip(), w.start, w.end, w.probability) for segment in segments for w in segment.words]


def matched_words(ours: Sequence[Word], theirs: Sequence[Word]) -> list[tuple[Word, Word]]:
    """The pairs of words that the two sequences share, aligned by normalised text (difflib's matching blocks)."""
    keys = [normalise(word.text) for word in ours], [normalise(word.text) for word in theirs]
    matcher = difflib.SequenceMatcher(None, *keys, autojunk=False)
    return [(ours[a + k], theirs[b + k]) for a, b, size in matcher.get_matching_blocks() for k in range(size)]


def timing_figures(clip_pairs: Sequence[tuple[Sequence[Word], Sequence[Word]]]) -> TimingFigures:
    """The differences over every clip's (ours, faster-whisper's) words."""
    starts, ends, matched, ours_total, theirs_total = [], [], 0, 0, 0
    for ours, theirs in clip_pairs:
        pairs = matched_words(ours, theirs)
        starts += [abs(a.start_s - b.start_s) for a, b in pairs]
        ends += [abs(a.end_s - b.end_s) for a, b in pairs]
        matched, ours_total, theirs_total = matched + len(pairs), ours_total + len(ours), theirs_total + len(theirs)
    starts_ms, ends_ms = np.asarray(starts or [np.nan]) * 1e3, np.asarray(ends or [np.nan]) * 1e3
    return TimingFigures(
        matched, ours_total - matched, theirs_total - matched,
        float(np.median(starts_ms)), float(np.percentile(starts_ms, 90)),
        float(np.median(ends_ms)), float(np.percentile(ends_ms, 90)),
    )


def right_words(words: Sequence[Word], reference: str) -> list[bool]:
    """For each word of a hypothesis: whether the alignment of the hypothesis to ``reference`` (jiwer, after
    normalising both) keeps it, every one of its normalised parts an exact match."""
    import jiwer

    parts, owners = [], []
    for index, word in enumerate(words):
        for part in normalise(word.text).split():
            parts.append(part)
            owners.append(index)
    kept = np.zeros(len(parts), dtype=bool)
    if parts and normalise(reference):
        for chunk in jiwer.process_words(normalise(reference), " ".join(parts)).alignments[0]:
            if chunk.type == "equal":
                kept[chunk.hyp_start_idx:chunk.hyp_end_idx] = True
    right = [True] * len(words)
    for owner, part_kept in zip(owners, kept):
        right[owner] = right[owner] and bool(part_kept)
    return right


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Probability that a positive scores above a negative (ties count half); NaN without both kinds."""
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, dtype=bool)
    high, low = scores[positive], scores[~positive]
    if not len(high) or not len(low):
        return float("nan")
    above = (high[:, None] > low[None, :]).sum() + 0.5 * (high[:, None] == low[None, :]).sum()
    return float(above / (len(high) * len(low)))


def confidence_figures(condition: str, probabilities: Sequence[float], right: Sequence[bool]) -> ConfidenceFigures:
    probabilities, right = np.asarray(probabilities), np.asarray(right, dtype=bool)
    return ConfidenceFigures(
        condition, len(right), int((~right).sum()), auroc(probabilities, right),
        float(probabilities[right].mean()) if right.any() else float("nan"),
        float(probabilities[~right].mean()) if (~right).any() else float("nan"),
    )


def measure_timings(
    recognizer: Recognizer, reference_model, clips: Sequence[Clip], audio: Sequence[np.ndarray],
    options: DecodingOptions,
) -> tuple[TimingFigures, CostFigures, list[dict]]:
    """Timings against faster-whisper and the cost of word timestamps, clip by clip (on and off interleaved, their
    order alternating); also each clip's words, for --json."""
    on, off = replace(options, word_timestamps=True), replace(options, word_timestamps=False)
    aligner = recognizer.word_aligner()
    recognizer.transcribe(audio[0], on)  # warm-up, untimed
    pairs, decoder_on, decoder_off, word_ms, runs_off, clip_words = [], [], [], [], 0, []
    for index in progress(range(len(clips)), len(clips), "clips"):
        for setting in ((on, off) if index % 2 == 0 else (off, on)):
            runs_before = aligner.runs
            result = recognizer.transcribe(audio[index], setting)
            if setting.word_timestamps:
                decoder_on.append(result.timings.decoder_ms)
                word_ms.append(result.timings.word_timing_ms)
                ours = result.words
            else:
                decoder_off.append(result.timings.decoder_ms)
                runs_off += aligner.runs - runs_before
        theirs = faster_whisper_words(reference_model, audio[index])
        pairs.append((ours, theirs))
        clip_words.append({"id": clips[index].id, "ours": words_as_json(ours),
                           "faster_whisper": words_as_json(theirs)})
    cost = CostFigures(len(clips), float(np.median(decoder_off)), float(np.median(decoder_on)),
                       float(np.median(word_ms)), runs_off)
    return timing_figures(pairs), cost, clip_words


def measure_confidence(
    recognizer: Recognizer, clips: Sequence[Clip], audio: Sequence[np.ndarray], conditions: Sequence[str],
    options: DecodingOptions,
) -> list[ConfidenceFigures]:
    """Per noisy condition (NOISE:SNR_DB) and pooled: how well the word probability tells right from wrong."""
    on = replace(options, word_timestamps=True)
    figures, pooled_probabilities, pooled_right = [], [], []
    for condition in conditions:
        noise, snr = condition.split(":")
        probabilities, right = [], []
        mixed = noisy_set(audio, noise, float(snr))
        for index in progress(range(len(clips)), len(clips), condition):
            if not normalise(clips[index].reference):
                continue
            words = recognizer.transcribe(mixed[index], on).words
            probabilities += [word.probability for word in words]
            right += right_words(words, clips[index].reference)
        figures.append(confidence_figures(condition, probabilities, right))
        pooled_probabilities += probabilities
        pooled_right += right
    figures.append(confidence_figures("pooled", pooled_probabilities, pooled_right))
    return figures


def timings_met(timing: TimingFigures) -> bool:
    return (max(timing.start_median_ms, timing.end_median_ms) <= TARGET_MEDIAN_MS
            and max(timing.start_p90_ms, timing.end_p90_ms) <= TARGET_P90_MS)


def format_report(timing: TimingFigures, cost: CostFigures, confidence: Sequence[ConfidenceFigures]) -> list[str]:
    """The figures as the command prints them, each beside its target."""
    return [
        f"timings vs faster-whisper word_timestamps=True: {timing.matched} words matched, "
        f"{timing.unmatched_ours} of ours and {timing.unmatched_reference} of faster-whisper's unmatched",
        f"  |start| median {timing.start_median_ms:.0f} ms, p90 {timing.start_p90_ms:.0f} ms; "
        f"|end| median {timing.end_median_ms:.0f} ms, p90 {timing.end_p90_ms:.0f} ms  (targets: median <= "
        f"{TARGET_MEDIAN_MS:.0f}, p90 <= {TARGET_P90_MS:.0f}: {'met' if timings_met(timing) else 'NOT met'})",
        "word confidence (word probability, right vs wrong words against the reference):",
        *(f"  {figure.condition:<10} AUROC {figure.auroc:.3f}  ({figure.wrong} wrong of {figure.words} words; mean "
          f"p right {figure.right_mean_probability:.2f}, wrong {figure.wrong_mean_probability:.2f})"
          for figure in confidence),
        f"  target: pooled AUROC >= {TARGET_AUROC}: {'met' if confidence[-1].auroc >= TARGET_AUROC else 'NOT met'}",
        f"cost per clip (median of {cost.clips}, on and off interleaved): decoder {cost.decoder_ms_off:.0f} ms off, "
        f"{cost.decoder_ms_on:.0f} ms on ({cost.decoder_ms_on / cost.decoder_ms_off:.2f}x), of which the alignment "
        f"pass {cost.word_timing_ms:.0f} ms; alignment passes run while off: {cost.alignment_runs_off}",
    ]
