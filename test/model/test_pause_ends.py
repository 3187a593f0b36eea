"""`hailo-whisper pause-ends` (issue 28's question: can a decode at a short pause tell a finished sentence from a
pause inside one?): its pause finder and rules on made-up decodes, then the command on shipped speech."""

import numpy as np
import pytest

from hailo_whisper_ros.cli.main import main
from hailo_whisper_ros.core.vad import VadOptions
from hailo_whisper_ros.evaluation.pause_ends import (
    DecodeRule,
    FixedRule,
    PauseDecode,
    pauses_of,
    score,
    sentence_ends_after,
)

WINDOW = 512  # 32 ms


def decode(text, pause_ms, last_token_prob=0.97, clip_end=False, inside=True, decode_ms=100.0):
    return PauseDecode("clip", pause_ms, clip_end, inside and not clip_end, text, 0.8, last_token_prob, decode_ms)


def test_pauses_are_the_silences_of_200_ms_or_more_between_the_first_and_last_speech_then_the_end():
    speech, silence = [0.9] * 10, [0.1]
    probabilities = np.array([0.1] * 5 + speech + silence * 7 + speech + silence * 4 + speech + silence * 3)
    pauses = pauses_of(probabilities, WINDOW, VadOptions())
    assert pauses == [(15 * WINDOW, 7 * 32.0), (46 * WINDOW, 0.0)]  # the 4-window (128 ms) pause is too short


def test_a_pause_inside_a_sentence_is_where_the_reference_has_no_sentence_end_near_the_decoded_words():
    reference = "And so, my fellow Americans: ask not. What your country can do for you?"
    assert not sentence_ends_after(reference, 3)
    assert sentence_ends_after(reference, 7)
    assert not sentence_ends_after("HE HOPED THERE WOULD BE STEW FOR DINNER", 4)


def test_the_rule_ends_a_complete_decode_early_waits_long_on_an_unfinished_one_and_as_today_when_unsure():
    rule = DecodeRule(complete_prob=0.9, unfinished_prob=0.5)
    assert rule.wait_ms(decode("Stop right there.", 200)) == (200.0, True)
    assert rule.wait_ms(decode("Ask what you can do for the", 200)) == (1200.0, False)  # no full stop
    assert rule.wait_ms(decode("Ask what you can do for.", 200)) == (1200.0, False)  # a preposition
    assert rule.wait_ms(decode("Ask not.", 200, last_token_prob=0.3)) == (1200.0, False)
    assert rule.wait_ms(decode("Ask not.", 200, last_token_prob=0.7)) == (600.0, False)


def test_splits_count_pauses_inside_sentences_the_rule_ends_and_waits_add_the_early_decode():
    pauses = [decode("Ask not.", 700, last_token_prob=0.7), decode("Ask not.", 300),
              decode("Ask what you can do for your country.", 0, clip_end=True, decode_ms=150.0),
              decode("Go on", 0, clip_end=True)]
    today, decoder = score(FixedRule(), pauses), score(DecodeRule(0.9), pauses)
    assert (today.splits, today.ends_early, today.wait_p50_ms) == (1, 0, 600.0)
    assert (decoder.splits, decoder.ends_early) == (2, 1)
    assert decoder.wait_p50_ms == pytest.approx((350.0 + 1200.0) / 2)


def test_the_command_decodes_the_pauses_of_shipped_speech_and_scores_every_rule(model_dir, capsys):
    assert main(["pause-ends", "--model_dir", str(model_dir), "--limit", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("2 clip ends, ")
    table = lines[3:]
    assert table[0].startswith("today: 600 ms of silence") and len(table) == 7
