"""Clips under segmentation variants: where a VAD might cut them (silence added before or after, the tail trimmed),
decoded with one or more decoding set-ups, counting the loops, the loop guards that fired, WER and decode times.

A loop is a decode that ran to max_new_tokens or that a loop guard ended (recovered or not: the recovery's count is
given beside it). Every set-up decodes every variant of a clip before the next clip, the set-up order rotating by
one each clip, so machine noise hits all alike (as evaluation.engines.run_interleaved).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.decoding import GUARDS, DecodingOptions
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.recognizer import Recognizer
from hailo_whisper_ros.core.transcripts import LoopGuardTally
from hailo_whisper_ros.evaluation.datasets import Clip
from hailo_whisper_ros.evaluation.scoring import word_errors

LEAD_RANGE_S = (0.0, 0.5)
TRAIL_RANGE_S = (0.0, 1.0)
TRIM_RANGE_S = (0.0, 0.2)


@dataclass(frozen=True)
class Cut:
    """One segmentation variant: silence before and after the clip, and audio trimmed from its end first."""

    lead_s: float = 0.0
    trail_s: float = 0.0
    trim_s: float = 0.0

    def __post_init__(self) -> None:
        for name, value, (low, high) in (("lead", self.lead_s, LEAD_RANGE_S), ("trail", self.trail_s, TRAIL_RANGE_S),
                                         ("trim", self.trim_s, TRIM_RANGE_S)):
            if not low <= value <= high:
                raise HailoWhisperError(f"cut {name} must be in [{low:g}, {high:g}] s, not {value:g}")

    @property
    def name(self) -> str:
        parts = [f"{label} {value:g} s" for label, value in
                 (("lead", self.lead_s), ("trail", self.trail_s), ("trim", self.trim_s)) if value]
        return ", ".join(parts) or "as is"

    def apply(self, audio: np.ndarray) -> np.ndarray:
        kept = audio[: max(len(audio) - int(round(self.trim_s * SAMPLE_RATE)), 0)]
        lead = np.zeros(int(round(self.lead_s * SAMPLE_RATE)), dtype=np.float32)
        trail = np.zeros(int(round(self.trail_s * SAMPLE_RATE)), dtype=np.float32)
        return np.concatenate([lead, kept.astype(np.float32, copy=False), trail])


# The six cuts of issue 13: as is; 0.3 s leading silence; 0.2 and 0.6 s trailing; 0.15 s trimmed; 0.3 + 0.6 s.
DEFAULT_CUTS = (Cut(), Cut(lead_s=0.3), Cut(trail_s=0.2), Cut(trail_s=0.6), Cut(trim_s=0.15),
                Cut(lead_s=0.3, trail_s=0.6))


def parse_cuts(text: str) -> tuple[Cut, ...]:
    """'LEAD,TRAIL,TRIM;...' in seconds, e.g. '0,0,0;0.3,0.6,0'."""
    cuts = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        try:
            lead, trail, trim = (float(value) for value in item.split(","))
        except ValueError:
            raise HailoWhisperError(f"a cut is LEAD,TRAIL,TRIM in seconds, not {item!r}") from None
        cuts.append(Cut(lead, trail, trim))
    if not cuts:
        raise HailoWhisperError("no cut given")
    return tuple(cuts)


@dataclass
class VariantRuns:
    """One decoding set-up under one cut, over the clips."""

    setup: str
    cut: Cut
    references: list[str] = field(default_factory=list)
    hypotheses: list[str] = field(default_factory=list)
    decode_ms: list[float] = field(default_factory=list)  # each clip's whole transcribe call
    looped: list[str] = field(default_factory=list)  # clip ids
    loop_guards: LoopGuardTally = field(default_factory=LoopGuardTally)

    @property
    def wer(self) -> float:
        return word_errors(self.references, self.hypotheses).wer

    @property
    def median_decode_ms(self) -> float:
        return float(np.median(self.decode_ms)) if self.decode_ms else 0.0

    def as_json(self) -> dict:
        return {"setup": self.setup, "cut": self.cut.name, "clips": len(self.references), "loops": len(self.looped),
                "looped_clips": self.looped, "guards": dict(self.loop_guards.fired),
                "recovered": self.loop_guards.recovered, "unrecovered": self.loop_guards.unrecovered,
                "wer": self.wer, "median_decode_ms": round(self.median_decode_ms, 3)}


def run_variants(
    recognizer: Recognizer,
    setups: dict[str, DecodingOptions],
    clips: Sequence[Clip],
    audio: Sequence[np.ndarray],
    cuts: Sequence[Cut] = DEFAULT_CUTS,
) -> list[VariantRuns]:
    """Every clip under every cut with every decoding set-up (see the module docstring); the runs by set-up, then
    cut. The recognizer is warmed up on the first clip with each set-up, untimed."""
    names = list(setups)
    for name in names:
        recognizer.transcribe(audio[0], setups[name])
    runs = {(name, cut): VariantRuns(name, cut) for name in names for cut in cuts}
    for index, (clip, clip_audio) in enumerate(zip(clips, audio)):
        rotation = index % len(names)
        for name in names[rotation:] + names[:rotation]:
            for cut in cuts:
                result = recognizer.transcribe(cut.apply(clip_audio), setups[name])
                run = runs[(name, cut)]
                run.references.append(clip.reference)
                run.hypotheses.append(result.text)
                run.decode_ms.append(result.timings.total_ms)
                run.loop_guards.add(result)
                if result.loops or result.guards:
                    run.looped.append(clip.id)
    return [runs[(name, cut)] for name in names for cut in cuts]


def guards_off(options: DecodingOptions) -> DecodingOptions:
    """The same options with the loop guards and their recovery off (the window's lead trim stays as it is)."""
    return replace(options, max_tokens_per_s=0.0, repetition_stop_copies=0, loop_recovery=False)


def format_table(runs: Sequence[VariantRuns]) -> list[str]:
    width = max(len(run.cut.name) for run in runs)
    lines = [f"{'set-up':<12} {'cut':<{width}} {'loops':>7} {'recovered':>9} "
             f"{' '.join(f'{guard:>12}' for guard in GUARDS)} {'WER':>7} {'median ms':>9}"]
    for run in runs:
        guards = " ".join(f"{run.loop_guards.fired[guard]:>12}" for guard in GUARDS)
        lines.append(f"{run.setup:<12} {run.cut.name:<{width}} {len(run.looped):>3}/{len(run.references):<3} "
                     f"{run.loop_guards.recovered:>9} {guards} {run.wer:>7.2%} {run.median_decode_ms:>9.1f}")
    return lines
