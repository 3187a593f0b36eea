"""The partials' budget account and where a tail settles (core/partials.py), without the model."""

import numpy as np
import pytest

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.partials import BUDGET_BURST_S, PartialBudget, settle_point


def test_the_account_earns_on_the_stream_clock_and_a_partial_overdraws_it():
    budget = PartialBudget()
    budget.earn(0, 0.1)
    assert budget.affords and budget.credit_s == 0.0
    budget.spend(0.3, 0)  # the first partial may overdraw it
    budget.earn(SAMPLE_RATE, 0.1)
    assert not budget.affords and budget.credit_s == pytest.approx(-0.2)
    budget.earn(3 * SAMPLE_RATE, 0.1)  # paid back after 3 s of audio
    assert budget.affords
    budget.earn(100 * SAMPLE_RATE, 0.1)  # a long silence: only BUDGET_BURST_S of earnings are kept
    assert budget.credit_s == pytest.approx(0.1 * BUDGET_BURST_S)
    budget.spend(5.0, 100 * SAMPLE_RATE)
    budget.earn(101 * SAMPLE_RATE, 0.0)  # the budget turned off: its debt goes
    assert budget.affords and budget.spent_s == pytest.approx(5.3)


def test_the_share_is_over_the_latest_thirty_seconds_of_audio():
    budget = PartialBudget()
    budget.earn(0, 0.0)
    budget.spend(0.5, 10 * SAMPLE_RATE)
    budget.earn(20 * SAMPLE_RATE, 0.0)
    assert budget.recent_share() == pytest.approx(0.5 / 20)
    budget.earn(50 * SAMPLE_RATE, 0.0)
    assert budget.recent_share() == 0.0


def test_a_tail_settles_in_the_gap_between_words_before_its_last_second():
    rng = np.random.default_rng(0)
    audio = rng.normal(0.0, 0.1, 6 * SAMPLE_RATE).astype(np.float32)
    gap = slice(int(4.2 * SAMPLE_RATE), int(4.4 * SAMPLE_RATE))
    audio[gap] = 0.0
    assert gap.start <= settle_point(audio, 0) < gap.stop
    audio[int(5.5 * SAMPLE_RATE):] = 0.0  # quieter still, but within the last second the tail keeps
    assert gap.start <= settle_point(audio, 0) < gap.stop
