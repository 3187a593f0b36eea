"""Could the decoder tell a finished sentence from a pause inside one (issue 28)? Each pause of at least
``MIN_PAUSE_MS`` inside a clip, and each clip's end, is decoded as a pause decode would decode it: the audio from
the clip's speech onset (less the segmenter's lead) to the pause's first silent window plus the speech pad. A rule
that ends the utterance at a short pause when that decode looks complete, waits longer when it looks unfinished and
as long as today when unsure, is then scored against today's fixed wait on the same pauses:

- splits: pauses inside a sentence (the reference has no sentence end there) as long as the wait the rule chose;
- what a person waits after a clip's end: the rule's wait, plus the decode when it ended the utterance early (today's
  final is decoded during the pause: no decode is added). Simulated, not measured over DDS.

Where a pause falls in the reference is found by counting the decoded words; a reference without punctuation
(LibriSpeech's) has no sentence end inside it, which counts its clause pauses as inside a sentence.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.recognizer import Recognizer
from hailo_whisper_ros.core.vad import SileroVad, VadOptions
from hailo_whisper_ros.evaluation.datasets import Clip

MIN_PAUSE_MS = 200.0
SENTENCE_END = ".?!"
# Words after which an English sentence cannot end: articles, conjunctions, prepositions, auxiliaries.
UNFINISHED_LAST_WORDS = frozenset(
    "a an the and or but nor so if because that which who whose than as of to in on at for with from by into onto "
    "about over under is are was were be been being has have had will would can could should may might must my your "
    "his her its our their".split())


@dataclass(frozen=True)
class PauseDecode:
    clip_id: str
    pause_ms: float  # the silence there (0: the clip's end)
    clip_end: bool
    inside_sentence: bool  # a pause inside the clip where the reference has no sentence end
    text: str
    end_prob: float  # p(EOT) where the decode stopped
    last_token_prob: float  # p of its last token (the full stop, say)
    decode_ms: float


@dataclass(frozen=True)
class DecodeRule:
    """End at ``complete_pause_ms`` when the decode looks complete (a sentence end, not after a function word, its
    last token at least ``complete_prob`` likely); wait ``max_silence_ms`` when it looks unfinished (no sentence end,
    a function word, or its last token under ``unfinished_prob``); else ``min_silence_ms`` as today."""

    complete_prob: float
    unfinished_prob: float = 0.0
    complete_pause_ms: float = 200.0
    min_silence_ms: float = 600.0
    max_silence_ms: float = 1200.0

    @property
    def name(self) -> str:
        return f"decode >= {self.complete_prob:g}, unfinished < {self.unfinished_prob:g}"

    def wait_ms(self, pause: PauseDecode) -> tuple[float, bool]:
        """The silence the rule waits at this pause, and whether it ended the utterance early (a decode to wait for)."""
        text = pause.text.strip()
        last_word = re.sub(r"[^a-z']", "", text.split()[-1].lower()) if text else ""
        sentence_end = bool(text) and text[-1] in SENTENCE_END and last_word not in UNFINISHED_LAST_WORDS
        if sentence_end and pause.last_token_prob >= self.complete_prob:
            return self.complete_pause_ms, True
        if not sentence_end or pause.last_token_prob < self.unfinished_prob:
            return self.max_silence_ms, False
        return self.min_silence_ms, False


@dataclass(frozen=True)
class FixedRule:
    min_silence_ms: float = VadOptions().min_silence_ms

    @property
    def name(self) -> str:
        return f"today: {self.min_silence_ms:g} ms of silence"

    def wait_ms(self, pause: PauseDecode) -> tuple[float, bool]:
        return self.min_silence_ms, False


def pauses_of(probabilities: np.ndarray, window: int, vad: VadOptions) -> list[tuple[int, float]]:
    """(first silent sample, pause ms) of each pause of at least MIN_PAUSE_MS between the first and the last speech
    window, then (end of the last speech window, 0)."""
    speech = np.flatnonzero(probabilities >= vad.threshold)
    if len(speech) == 0:
        return []
    found, index, last = [], int(speech[0]), int(speech[-1])
    while index < last:
        if probabilities[index] < vad.silence_threshold:
            resumed = index + int(np.argmax(probabilities[index : last + 1] >= vad.threshold))
            pause_ms = (resumed - index) * window * 1000.0 / SAMPLE_RATE
            if pause_ms >= MIN_PAUSE_MS:
                found.append((index * window, pause_ms))
            index = resumed
        index += 1
    return found + [((last + 1) * window, 0.0)]


def sentence_ends_after(reference: str, words: int) -> bool:
    """Whether the reference has a sentence end within a word of its ``words``-th word."""
    tokens = reference.split()
    at = min(max(words - 1, 0), len(tokens) - 1)
    return any(token[-1] in SENTENCE_END for token in tokens[max(at - 1, 0) : at + 2])


def decode_pauses(recognizer: Recognizer, vad: SileroVad, clip: Clip, audio: np.ndarray,
                  vad_options: VadOptions) -> list[PauseDecode]:
    """Every pause of the clip and its end, each decoded from the speech onset as a pause decode would."""
    vad.reset()
    probabilities = vad.process(audio)
    pad = int(vad_options.speech_pad_ms * SAMPLE_RATE / 1000)
    lead = int((vad_options.speech_pad_ms + vad_options.pre_roll_ms) * SAMPLE_RATE / 1000)
    onset = int(np.argmax(probabilities >= vad_options.threshold)) * vad.window_samples
    max_samples = int(vad_options.max_speech_s * SAMPLE_RATE)
    decoded = []
    for silence_start, pause_ms in pauses_of(probabilities, vad.window_samples, vad_options):
        end = silence_start + pad
        piece = audio[max(onset - lead, end - max_samples, 0) : end]
        started = time.perf_counter()
        result = recognizer.transcribe(piece)
        decode_ms = (time.perf_counter() - started) * 1e3
        last = result.segments[-1] if result.segments else None
        clip_end = pause_ms == 0.0
        inside = not clip_end and not sentence_ends_after(clip.reference, len(result.text.split()))
        decoded.append(PauseDecode(clip.id, pause_ms, clip_end, inside, result.text,
                                   last.end_prob if last else 0.0, last.last_token_prob if last else 0.0, decode_ms))
    return decoded


@dataclass(frozen=True)
class RuleScore:
    name: str
    splits: int  # pauses inside a sentence that the rule ends
    ends_early: int  # clip ends the rule ended at its short pause
    wait_p50_ms: float  # what a person waits after a clip's end (simulated)
    wait_p95_ms: float


def score(rule: FixedRule | DecodeRule, pauses: Sequence[PauseDecode]) -> RuleScore:
    splits = sum(1 for pause in pauses if pause.inside_sentence and pause.pause_ms >= rule.wait_ms(pause)[0])
    waits, early = [], 0
    for pause in (pause for pause in pauses if pause.clip_end):
        wait, ended_early = rule.wait_ms(pause)
        waits.append(wait + (pause.decode_ms if ended_early else 0.0))
        early += ended_early
    p50, p95 = np.percentile(waits, [50, 95]) if waits else (float("nan"), float("nan"))
    return RuleScore(rule.name, splits, early, float(p50), float(p95))


# The rules the command compares: today's, and the decoder's rule from lenient to strict.
RULES = (FixedRule(), *(DecodeRule(prob) for prob in (0.5, 0.8, 0.9, 0.95)),
         *(DecodeRule(0.95, unfinished) for unfinished in (0.5, 0.8)))


def format_table(pauses: Sequence[PauseDecode], rules=RULES) -> list[str]:
    ends = sum(pause.clip_end for pause in pauses)
    inside = sum(pause.inside_sentence for pause in pauses)
    lines = [f"{ends} clip ends, {inside} pauses inside a sentence (of {len(pauses) - ends} pauses >= "
             f"{MIN_PAUSE_MS:g} ms)",
             f"{'rule':40} {'splits':>6} {'ends early':>10} {'wait p50':>9} {'wait p95':>9}"]
    for rule in rules:
        result = score(rule, pauses)
        lines.append(f"{result.name:40} {result.splits:6d} {result.ends_early:6d}/{ends:<3d} "
                     f"{result.wait_p50_ms:7.0f}ms {result.wait_p95_ms:7.0f}ms")
    return lines
