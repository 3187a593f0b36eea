"""Partials of bounded cost, and the compute budget that paces them.

A partial decodes the tail of the open utterance, not all of it: the audio since the last settled point, prompted
with the settled text's tokens (Whisper's prompt, as condition_on_previous prompts an utterance with the previous
finals). When the tail outgrows ``streaming.partial_window_s``, its audio up to the quietest point SETTLE_KEEP_S
before its end is decoded once on its own and that text settles; the tail starts again there. So a partial costs at
most two decodes of one window (7.5 s for the default 6.5 s, the encoder's 1 s margin included), however long the
utterance, and it still reads as the whole utterance so far: the settled text, then the tail's. The final is a full
decode of the utterance as before; the settled and tail tokens are its draft, which greedy decoding verifies
exactly.

The budget: each second of stream audio (silence included) earns ``streaming.partial_budget`` seconds of decode
time for partials; a partial is decoded only when the account is not in debt, and its decode time is charged to it.
So partial work stays within that share of real time, give or take one partial and the BUDGET_BURST_S of savings
an account keeps, and the partials' cadence stretches to what the machine affords.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from hailo_whisper_ros.core.audio import quietest_point
from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.decoding import DecodingOptions

if TYPE_CHECKING:
    from hailo_whisper_ros.core.recognizer import TranscriptionResult

# A settled point is the quietest 20 ms in [end - SETTLE_KEEP_S[1], end - SETTLE_KEEP_S[0]) of the tail: the tail
# keeps at least a second of the latest audio (a word still being said), and settles most of what came before.
SETTLE_KEEP_S = (1.0, 2.5)
BUDGET_BURST_S = 4.0  # seconds of stream audio whose earnings the budget keeps unspent (a partial after a silence)
SHARE_HORIZON_S = 30.0  # the measured share of partial work is over this much of the latest stream audio

# (audio, decoding options, context, draft) -> its transcription; None after an inference error.
Infer = Callable[[np.ndarray, DecodingOptions, Sequence[int], Sequence[int]], "TranscriptionResult | None"]


@dataclass
class PartialTail:
    """Where an open utterance's partials decode from: the audio before ``start`` has settled text."""

    start: int = 0  # sample of the utterance
    text: str = ""  # the settled text of audio[:start]
    tokens: tuple[int, ...] = ()  # its tokens, the prompt of the tail's decodes (none after a loop or no speech)
    latest: tuple[int, ...] = ()  # the latest decode's tokens: the next decode's draft

    @property
    def draft(self) -> tuple[int, ...]:
        """What a decode of the whole utterance probably gives: the settled tokens, then the tail's."""
        return (*self.tokens, *self.latest)


def settle_point(audio: np.ndarray, start: int) -> int:
    """Where the tail starting at ``start`` settles: the quietest point of the SETTLE_KEEP_S span before its end."""
    end = len(audio)
    earliest = max(start + 1, end - int(SETTLE_KEEP_S[1] * SAMPLE_RATE))
    return quietest_point(audio, earliest, max(earliest + 1, end - int(SETTLE_KEEP_S[0] * SAMPLE_RATE)))


def tail_partial(
    audio: np.ndarray, tail: PartialTail, window: int, decoding: DecodingOptions, context: Sequence[int],
    infer: Infer,
) -> tuple[str, TranscriptionResult] | None:
    """The partial of ``audio`` (the utterance so far): its text (settled + tail) and the tail's decode, settling
    first when the tail is longer than ``window`` samples. ``context``: the utterance's own prompt tokens (the
    previous finals, with condition_on_previous). None after an inference error."""
    # The settled tokens are the tail's prompt. A loop guard's cut stands: re-decoding with the encoder's longest
    # window (loop_recovery) would cost five windows for a provisional text; the final still recovers.
    prompted = replace(decoding, condition_on_previous=True, loop_recovery=False)
    prior = tuple(context) if decoding.condition_on_previous else ()
    if len(audio) - tail.start > window:
        cut = settle_point(audio, tail.start)
        settled = infer(audio[tail.start : cut], prompted, (*prior, *tail.tokens), tail.latest)
        if settled is None:
            return None
        tail.start, tail.text = cut, " ".join(t for t in (tail.text, settled.text) if t)
        # After a loop or no speech the prompt starts afresh (a loop is never carried forward).
        tail.tokens = settled.context_after(tail.tokens, decoding.context_max_tokens)
        tail.latest = ()
    result = infer(audio[tail.start :], prompted, (*prior, *tail.tokens), tail.latest)
    if result is None:
        return None
    tail.latest = result.tokens
    return " ".join(t for t in (tail.text, result.text) if t), result


class PartialBudget:
    """The account of decode time for partials (see the module docstring), on the stream's own sample clock, and
    the share of the latest SHARE_HORIZON_S of audio that partials took."""

    def __init__(self):
        self.credit_s = 0.0
        self.position: int | None = None  # the stream sample up to which the account was credited
        self.spent_s = 0.0  # all partial decode time, over the stream
        self.recent: deque[tuple[int, float]] = deque()  # (stream position, decode seconds) of recent partials

    def earn(self, position: int, share: float) -> None:
        """Credit the stream audio up to ``position`` at ``share`` seconds of decode per second."""
        if self.position is not None and position > self.position:
            gained = share * (position - self.position) / SAMPLE_RATE
            self.credit_s = min(self.credit_s + gained, share * BUDGET_BURST_S)
        if not share:
            self.credit_s = 0.0  # no budget: no debt is carried into a budget set later
        self.position = position if self.position is None else max(self.position, position)

    @property
    def affords(self) -> bool:
        return self.credit_s >= 0.0

    def spend(self, seconds: float, position: int) -> None:
        self.credit_s -= seconds
        self.spent_s += seconds
        self.recent.append((position, seconds))
        while self.recent[0][0] < position - SHARE_HORIZON_S * SAMPLE_RATE:
            self.recent.popleft()

    def recent_share(self) -> float:
        """Partial decode time per second of the latest SHARE_HORIZON_S of stream audio. Any thread: it reads a
        snapshot, the worker alone changes the account."""
        position, recent = self.position, tuple(self.recent)
        if position is None:
            return 0.0
        horizon = int(SHARE_HORIZON_S * SAMPLE_RATE)
        span_s = min(position, horizon) / SAMPLE_RATE
        spent = sum(seconds for at, seconds in recent if at >= position - horizon)
        return spent / span_s if span_s else 0.0
