"""Word timing's arithmetic without a model (core/word_timing.py): the DTW against openai/whisper's recurrence and a
hand-made attention matrix, the median filter, the merging of punctuation, the length limits; and the measuring
command's matching and AUROC (evaluation/word_timings.py)."""

import numpy as np
import pytest
from scipy.ndimage import median_filter as scipy_median_filter

from hailo_whisper_ros.core.word_timing import (
    Word,
    WordTiming,
    alignment_matrix,
    dtw,
    limit_long_words,
    median_filter,
    merge_punctuations,
    token_start_positions,
)
from hailo_whisper_ros.evaluation.word_timings import auroc, matched_words, right_words, timing_figures


def reference_dtw(cost: np.ndarray) -> tuple[list[int], list[int]]:
    """openai/whisper's dtw_cpu as written there: a cell at a time, then the backtrace."""
    rows, columns = cost.shape
    total = np.full((rows + 1, columns + 1), np.inf)
    total[0, 0] = 0
    trace = -np.ones((rows + 1, columns + 1))
    for j in range(1, columns + 1):
        for i in range(1, rows + 1):
            c0, c1, c2 = total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]
            if c0 < c1 and c0 < c2:
                c, t = c0, 0
            elif c1 < c0 and c1 < c2:
                c, t = c1, 1
            else:
                c, t = c2, 2
            total[i, j] = cost[i - 1, j - 1] + c
            trace[i, j] = t
    trace[0, :], trace[:, 0] = 2, 1
    i, j, path = rows, columns, []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        i, j = {0: (i - 1, j - 1), 1: (i - 1, j), 2: (i, j - 1)}[trace[i, j]]
    text, time = zip(*path[::-1])
    return list(text), list(time)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (7, 1), (5, 40), (23, 300)])
def test_dtw_takes_openai_whispers_path(shape):
    cost = np.random.default_rng(sum(shape)).normal(size=shape)
    text, time = dtw(cost)
    assert (list(text), list(time)) == reference_dtw(cost)


def test_tokens_start_where_a_hand_made_attention_moves_on():
    """Three heads, five tokens (the first row is the no-timestamps position, the last EOT's), 100 frames: token k
    looks at frames [20 k, 20 k + 20) of the audio, with noise; 40 frames of padding after the audio draw attention
    that must be ignored."""
    starts = [0, 20, 40, 60, 80]
    rng = np.random.default_rng(0)
    scores = rng.normal(0.0, 0.3, size=(3, 6, 140))
    for token, start in enumerate(starts):
        scores[:, token, start : start + 20] += 4.0
    scores[:, :, 100:] += 8.0  # padding, beyond the audio's frames
    matrix = alignment_matrix(scores, frames=100, first_row=0)
    assert matrix.shape == (5, 100)
    found = token_start_positions(matrix)
    assert np.all(np.abs(found - starts) <= 1), found


def test_median_filter_mirrors_the_edges_as_openai_whisper_pads():
    x = np.random.default_rng(1).normal(size=(2, 3, 50))
    expected = scipy_median_filter(x, size=(1, 1, 7), mode="mirror")  # mirror: the edge value is not repeated
    assert np.array_equal(median_filter(x, 7), expected)
    assert np.array_equal(median_filter(x[..., :3], 7), x[..., :3])  # shorter than the half width: as it is


def timings(*words: tuple[str, float, float]) -> list[WordTiming]:
    return [WordTiming(text, [index], start, end, 0.9) for index, (text, start, end) in enumerate(words)]


def test_punctuation_joins_its_word():
    words = timings((" \"", 0.0, 0.1), ("Hello", 0.1, 0.5), (",", 0.5, 0.6), (" world", 0.6, 1.0), (".", 1.0, 1.1),
                    ("\"", 1.1, 1.2))
    merge_punctuations(words)
    assert [word.text for word in words if word.text] == [" \"Hello,", " world.\""]
    assert [word.tokens for word in words if word.text] == [[0, 1, 2], [3, 4, 5]]


def test_a_word_after_a_sentence_end_is_kept_to_twice_the_median():
    words = timings((" One", 0.0, 0.3), (".", 0.3, 0.3), (" Two", 0.3, 2.3), (" three", 2.3, 2.6), (" four", 2.6, 2.9))
    limit_long_words(words, previous_speech_end=0.0)
    two = next(word for word in words if word.text == " Two")
    assert (two.start, two.end) == pytest.approx((1.7, 2.3))  # median 0.3 s: at most 0.6 s, its end kept


def test_matching_by_text_and_the_auroc():
    ours = [Word("Ask", 1.00, 1.20, 0.9), Word("not,", 1.20, 1.50, 0.8), Word("what", 1.50, 1.60, 0.3)]
    theirs = [Word("ask", 1.02, 1.22, 0.9), Word("not", 1.26, 1.40, 0.8), Word("who", 1.5, 1.6, 0.5)]
    assert [(a.text, b.text) for a, b in matched_words(ours, theirs)] == [("Ask", "ask"), ("not,", "not")]
    figures = timing_figures([(ours, theirs)])
    assert (figures.matched, figures.unmatched_ours, figures.unmatched_reference) == (2, 1, 1)
    assert figures.start_median_ms == pytest.approx(40.0)  # |0.02| and |0.06|
    assert right_words(ours, "ask not who") == [True, True, False]
    assert auroc([0.9, 0.8, 0.3], [True, True, False]) == 1.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5
