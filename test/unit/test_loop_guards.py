"""The loop guards of decoding.greedy_decode: the repeated-n-gram stop and the token budget (no model needed)."""

import pytest

from hailo_whisper_ros.core.decoding import DecodingOptions, RepetitionDetector, token_budget
from hailo_whisper_ros.core.errors import HailoWhisperError


def first_stop(tokens, copies=4, max_ngram=32):
    """(tokens pushed when the detector fired, its period), or (None, 0) when it never fires."""
    detector = RepetitionDetector(copies, max_ngram)
    for count in range(1, len(tokens) + 1):
        period = detector.push(tokens[:count])
        if period:
            return count, period
    return None, 0


def test_a_looped_sentence_is_stopped_at_its_fourth_copy():
    sentence = list(range(100, 116))  # a 16-token sentence, as "Also, there was a stripling page ..."
    assert first_stop(sentence * 6) == (64, 16)


def test_a_looped_short_ngram_is_stopped_at_its_fourth_copy():
    five_dot = [20, 13]  # " 5" "." as in "5, 5. 5. 5. ..."
    assert first_stop([20, 11] + five_dot * 10) == (2 + 8, 2)
    assert first_stop([7] * 10) == (4, 1)


def test_correct_transcripts_with_repetitions_are_left_alone():
    # "5 5" (cards_004), "Fail again. Fail again." (moonshine_beckett): at most two copies in a row on the dev set.
    assert first_stop([20, 20, 50256 - 1]) == (None, 0)
    assert first_stop([1, 2, 3, 9, 4, 5, 6, 4, 5, 6, 8]) == (None, 0)
    assert first_stop([7, 7, 7]) == (None, 0)  # three copies: below the default of four


def test_ngrams_longer_than_the_longest_looked_for_are_not_detected():
    sentence = list(range(100, 140))  # 40 tokens
    assert first_stop(sentence * 5, max_ngram=32) == (None, 0)
    assert first_stop(sentence * 5, max_ngram=40) == (160, 40)


def test_a_broken_run_starts_counting_again():
    assert first_stop([5, 5, 5, 6, 5, 5, 5]) == (None, 0)
    assert first_stop([5, 5, 5, 6, 5, 5, 5, 5]) == (8, 1)


def test_token_budget_grows_with_the_audio_and_is_bounded_by_max_new_tokens():
    options = DecodingOptions()
    assert token_budget(options, 0.0) == options.min_token_budget
    assert token_budget(options, 1.0) == options.min_token_budget + 8
    assert token_budget(options, 4.2) == options.min_token_budget + 34  # ceil(8 * 4.2)
    assert token_budget(options, 30.0) == options.max_new_tokens
    assert token_budget(DecodingOptions(max_tokens_per_s=0.0), 1.0) == options.max_new_tokens  # off


def test_the_budget_leaves_room_for_the_fastest_measured_speech():
    # 4.12 tokens per second of audio at most on the dev set and the speech samples (silence included).
    options = DecodingOptions()
    for seconds in (0.5, 1.0, 2.0, 5.0, 10.0, 30.0):
        assert token_budget(options, seconds) >= min(2 * 4.12 * seconds, options.max_new_tokens)


@pytest.mark.parametrize("field, value", [("max_tokens_per_s", 0.5), ("repetition_stop_copies", 1),
                                          ("repetition_stop_max_ngram", 0), ("window_lead_trim_db", -1.0)])
def test_guard_options_out_of_range_are_refused(field, value):
    with pytest.raises(HailoWhisperError, match=field):
        DecodingOptions(**{field: value})
