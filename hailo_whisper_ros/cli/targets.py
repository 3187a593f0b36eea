"""The performance targets of the default set-up (tiny.en, CPU, INT8 decoder) as one table, and a measured figure
beside its target. ``hailo-whisper bench`` measures them; its docstring says how each is measured."""

from __future__ import annotations

from dataclasses import dataclass
from string import ascii_lowercase

from hailo_whisper_ros.core.vad import VadOptions

SHORT_UTTERANCE_S = 5.0  # target 3 counts utterances up to this long


@dataclass(frozen=True)
class Target:
    id: str  # "1" ... "6" as issue 14 numbers them, and a letter where one target has parts ("3a", "3b")
    name: str
    goal: float
    higher_is_better: bool
    unit: str

    @property
    def number(self) -> str:
        """What `bench --targets` selects: the target, all its variants."""
        return self.id.rstrip(ascii_lowercase)


# Issue 14's numbers and goals.
ROS_REAL_TIME_FACTOR = Target("1", "live ROS at 1x, partials 1 s: recognizer real-time factor", 0.10, False, "")
ROS_FINAL_LATENCY_P50 = Target(
    "2a", f"live ROS end of utterance -> final p50, <= {SHORT_UTTERANCE_S:g} s", 45.0, False, "ms")
ROS_FINAL_LATENCY_P95 = Target(
    "2b", f"live ROS end of utterance -> final p95, <= {SHORT_UTTERANCE_S:g} s", 150.0, False, "ms")
# What a person waits: the VAD's silence that ends the utterance, then at most 100 ms.
ROS_WAITS_P50 = Target("2c", "live ROS last speech sample published -> final p50", VadOptions().min_silence_ms + 100,
                       False, "ms")
FINAL_LATENCY = Target(
    "2d", f"in-process end of utterance -> final p50, <= {SHORT_UTTERANCE_S:g} s", 45.0, False, "ms"
)
CAPTIONING_RTFX_WITH_PARTIALS = Target("3a", "captioning RTFx, partials every 1.0 s", 20.0, True, "x")
CAPTIONING_RTFX_NO_PARTIALS = Target("3b", "captioning RTFx, no partials", 40.0, True, "x")
STREAMING_MS_PER_TOKEN = Target(
    "4a", "decoder ms per token captioning, partials 1.0 s (drafts included)", 1.0, False, "ms")
DECODER_MS_PER_TOKEN = Target("4b", "decoder ms per generated token cold (1500 padded positions)", 2.0, False, "ms")
LATENCY_VS_FASTER_WHISPER = Target("5", "median latency per clip, faster-whisper int8 / ours", 6.0, True, "x")
LATENCY_VS_WHISPER_CPP = Target("5", "median latency per clip, whisper.cpp f16 / ours", 15.0, True, "x")
WER_VS_FASTER_WHISPER = Target("5", "WER ours - faster-whisper int8", 0.5, False, "points")
ROS_PEAK_MEMORY = Target("6", "peak RSS of the composed ROS process (speech_recognition)", 200.0, False, "MB")
# Issue 29's: continuous speech (the dev set with 0.1-0.3 s gaps) captioned with partials every 1.0 s.
CONTINUOUS_RTFX = Target("7a", "continuous speech captioning RTFx, partials 1.0 s", 12.0, True, "x")
CONTINUOUS_TRANSCRIBED = Target("7b", "continuous: audio transcribed per audio received", 1.5, False, "x")
CONTINUOUS_WER = Target("7c", "continuous: WER ours - whole-utterance partials", 0.0, False, "points")
PARTIAL_FRESHNESS = Target("7d", "continuous: partial freshness p95 (last sample -> partial)", 1000.0, False, "ms")
CONTINUOUS_FINAL_LATENCY = Target("7e", "continuous: final latency p95, ours / whole-utterance partials", 1.0, False,
                                  "x")

TARGETS = (
    ROS_REAL_TIME_FACTOR,
    ROS_FINAL_LATENCY_P50,
    ROS_FINAL_LATENCY_P95,
    ROS_WAITS_P50,
    FINAL_LATENCY,
    CAPTIONING_RTFX_WITH_PARTIALS,
    CAPTIONING_RTFX_NO_PARTIALS,
    STREAMING_MS_PER_TOKEN,
    DECODER_MS_PER_TOKEN,
    LATENCY_VS_FASTER_WHISPER,
    LATENCY_VS_WHISPER_CPP,
    WER_VS_FASTER_WHISPER,
    ROS_PEAK_MEMORY,
    CONTINUOUS_RTFX,
    CONTINUOUS_TRANSCRIBED,
    CONTINUOUS_WER,
    PARTIAL_FRESHNESS,
    CONTINUOUS_FINAL_LATENCY,
)
TARGET_NUMBERS = tuple(dict.fromkeys(target.number for target in TARGETS))


@dataclass(frozen=True)
class Figure:
    target: Target
    value: float | None  # None: not measured (the reason in note)
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        goal = self.target.goal
        return self.value >= goal if self.target.higher_is_better else self.value <= goal

    def line(self) -> str:
        target = self.target
        value = "n/a" if self.value is None else f"{self.value:.2f}"
        goal = f"{'>=' if target.higher_is_better else '<='} {target.goal:g}"
        verdict = {True: "met", False: "NOT met", None: "-"}[self.met]
        return (f"  {target.id:<3} {target.name:<54} {value:>9} {target.unit:<8} target {goal:<8} {verdict:<8} "
                f"{self.note}")

    def as_json(self) -> dict:
        target = self.target
        return {
            "target": target.id,
            "name": target.name,
            "value": self.value,
            "goal": target.goal,
            "higher_is_better": target.higher_is_better,
            "unit": target.unit,
            "note": self.note,
            "met": self.met,
        }
