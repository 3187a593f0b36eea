"""Word timings and word probabilities of a decoded segment, computed as openai/whisper's timing.py does.

One pass of the alignment heads (export/graphs.build_alignment: the decoder over the forced prefix, the text tokens
and EOT, cut after the last layer that holds an alignment head) gives their cross-attention scores. Over the frames
of the actual audio only (the encoder window may run on past it, and its output is zero-padded further), they are
softmaxed, normalised per head (mean and standard deviation over the tokens), median-filtered along time (width 7)
and averaged over the heads; dynamic time warping on the negated matrix finds the monotonic path of tokens through
the encoder positions (20 ms each), and where the path reaches a token is where that token starts. Tokens are
grouped into words (split at spaces and punctuation, or at every character for the languages written without
spaces), punctuation is merged into its word, and words at sentence boundaries and after a pause are kept from
growing longer than twice the median word. A word's probability is the mean of its tokens' probabilities, which the
greedy loop already has (faster-whisper's way). numpy only: the DTW is a loop over the tokens, each row a
cumulative minimum over the frames.
"""

from __future__ import annotations

import string
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hailo_whisper_ros.core.backends.onnx import create_ort_session, padded_encoder_inputs
from hailo_whisper_ros.core.constants import HOP_LENGTH, SAMPLE_RATE
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.model_dir import (
    ALIGNMENT_SCORES,
    DECODER_ALIGNMENT,
    ENCODER_ATTENTION_BIAS,
    ENCODER_HIDDEN_STATES,
    INPUT_IDS,
    ModelInfo,
    find_beside,
)
from hailo_whisper_ros.core.tokenizer import WhisperTokenizer

POSITION_S = 2 * HOP_LENGTH / SAMPLE_RATE  # one encoder position: 20 ms (the second convolution has stride 2)
MEDIAN_FILTER_WIDTH = 7
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
SENTENCE_END_MARKS = ".。!！?？"
MAX_MEDIAN_WORD_S = 0.7  # the median word duration the length limits use is at most this
# Languages written without spaces between words: each group of tokens that decodes to whole characters is a word.
CHARACTER_LANGUAGES = ("zh", "ja", "th", "lo", "my", "yue")


@dataclass(frozen=True)
class Word:
    text: str  # as decoded, its punctuation attached, without the leading space
    start_s: float  # seconds from the start of the audio transcribed (TranscriptEvent.words: of the stream)
    end_s: float
    probability: float  # mean probability of its tokens when greedy decoding chose them, in (0, 1]

    def shifted(self, offset_s: float) -> Word:
        return replace(self, start_s=self.start_s + offset_s, end_s=self.end_s + offset_s)


@dataclass
class WordTiming:
    """A word while timings are worked out: times in seconds from the start of the encoder window."""

    text: str  # with its leading space
    tokens: list[int]
    start: float
    end: float
    probability: float


def median_filter(x: np.ndarray, width: int) -> np.ndarray:
    """The median of each ``width`` values along the last axis, mirrored at the edges without repeating them
    (PyTorch's reflect padding, as openai/whisper pads)."""
    pad = width // 2
    if x.shape[-1] <= pad:
        return x
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=-1)
    return np.partition(windows, pad, axis=-1)[..., pad]


def alignment_matrix(scores: np.ndarray, frames: int, first_row: int) -> np.ndarray:
    """The alignment heads' scores [heads, tokens, positions] -> the matrix [rows, frames] that DTW walks: softmax
    over the first ``frames`` positions, per-head normalisation over the tokens, median filter, mean over heads;
    rows from ``first_row`` (the position that predicts the first text token) to the one before EOT's."""
    weights = scores[:, :, :frames].astype(np.float64)
    weights = np.exp(weights - weights.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    weights = (weights - weights.mean(axis=-2, keepdims=True)) / weights.std(axis=-2, keepdims=True)
    weights = median_filter(weights, MEDIAN_FILTER_WIDTH)
    return weights.mean(axis=0)[first_row:-1]


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cheapest path through ``cost`` [N, M] from its first to its last cell, each move one row, one column or
    both on: (row indices, column indices) along it, as openai/whisper's dtw_cpu (ties broken as it does: the
    diagonal when strictly cheapest, else the row move when strictly cheapest, else the column move). A row's
    totals depend on the cell before them in the row, so each row is a cumulative minimum: with S the row's running
    sum of costs, total[j] - S[j] = min(best from the row above at j - S[j-1], total[j-1] - S[j-1])."""
    rows, columns = cost.shape
    total = np.full((rows + 1, columns + 1), np.inf)
    total[0, 0] = 0.0
    trace = np.zeros((rows + 1, columns + 1), dtype=np.int8)
    for i in range(1, rows + 1):
        diagonal, above = total[i - 1, :-1], total[i - 1, 1:]
        from_above = np.minimum(diagonal, above)
        sums = np.cumsum(cost[i - 1])
        before = np.concatenate(([0.0], sums[:-1]))
        total[i, 1:] = np.minimum.accumulate(from_above - before) + sums
        left = total[i, :-1]
        trace[i, 1:] = np.where((diagonal < above) & (diagonal < left), 0,
                                np.where((above < diagonal) & (above < left), 1, 2))
    return _backtrace(trace)


def token_start_positions(matrix: np.ndarray) -> np.ndarray:
    """Where the DTW path through ``matrix`` reaches each of its rows: the encoder position each token starts at."""
    text_indices, time_indices = dtw(-matrix)
    jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)
    return time_indices[jumps]


def _backtrace(trace: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The path that ``trace`` (0 diagonal, 1 row, 2 column move into each cell) leads back from its last cell."""
    trace[0, :] = 2
    trace[:, 0] = 1
    i, j = trace.shape[0] - 1, trace.shape[1] - 1
    path = []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        move = trace[i, j]
        i, j = (i - 1, j - 1) if move == 0 else (i - 1, j) if move == 1 else (i, j - 1)
    rows, columns = np.array(path[::-1]).T
    return rows, columns


def split_on_characters(tokenizer: WhisperTokenizer, tokens: Sequence[int]) -> tuple[list[str], list[list[int]]]:
    """Groups of tokens that decode to whole characters (a character may take several byte tokens)."""
    full = tokenizer.decode(tokens)
    words, word_tokens, current, offset = [], [], [], 0
    for token in tokens:
        current.append(token)
        decoded = tokenizer.decode(current)
        if "\ufffd" not in decoded or full[offset + decoded.index("\ufffd")] == "\ufffd":
            words.append(decoded)
            word_tokens.append(current)
            current = []
            offset += len(decoded)
    return words, word_tokens


def split_to_word_tokens(
    tokenizer: WhisperTokenizer, tokens: Sequence[int], language: str
) -> tuple[list[str], list[list[int]]]:
    """Words and their tokens: a word starts at a leading space, a punctuation mark or a special token (EOT);
    for CHARACTER_LANGUAGES at every whole character."""
    subwords, subword_tokens = split_on_characters(tokenizer, tokens)
    if language in CHARACTER_LANGUAGES:
        return subwords, subword_tokens
    words: list[str] = []
    word_tokens: list[list[int]] = []
    for subword, group in zip(subwords, subword_tokens):
        # "" is in string.punctuation: a special token, decoded to nothing, starts a word of its own.
        if group[0] >= tokenizer.eot or subword.startswith(" ") or subword.strip() in string.punctuation or not words:
            words.append(subword)
            word_tokens.append(list(group))
        else:
            words[-1] += subword
            word_tokens[-1].extend(group)
    return words, word_tokens


def merge_punctuations(words: list[WordTiming]) -> None:
    """Opening punctuation joins the word after it and closing punctuation the word before it; the marks' own
    entries are left empty (their tokens moved)."""
    following = len(words) - 1
    for index in range(len(words) - 2, -1, -1):
        previous = words[index]
        if previous.text.startswith(" ") and previous.text.strip() in PREPEND_PUNCTUATIONS:
            words[following].text = previous.text + words[following].text
            words[following].tokens = previous.tokens + words[following].tokens
            previous.text, previous.tokens = "", []
        else:
            following = index
    previous_index = 0
    for index in range(1, len(words)):
        previous, current = words[previous_index], words[index]
        if not previous.text.endswith(" ") and current.text in APPEND_PUNCTUATIONS:
            previous.text += current.text
            previous.tokens = previous.tokens + current.tokens
            current.text, current.tokens = "", []
        else:
            previous_index = index


def word_timings(
    tokenizer: WhisperTokenizer, text_tokens: Sequence[int], token_probs: Sequence[float], matrix: np.ndarray,
    language: str,
) -> list[WordTiming]:
    """openai/whisper's find_alignment from the alignment matrix [len(text_tokens) + 1, frames]: each word's
    start and end (where the DTW path reaches its first token and the next word's), and its probability."""
    words, word_tokens = split_to_word_tokens(tokenizer, [*text_tokens, tokenizer.eot], language)
    if len(word_tokens) <= 1:
        return []
    boundaries = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    jump_times = token_start_positions(matrix) * POSITION_S
    return [
        WordTiming(word, tokens, float(jump_times[first]), float(jump_times[after]),
                   float(np.mean(token_probs[first:after])))
        for word, tokens, first, after in zip(words, word_tokens, boundaries[:-1], boundaries[1:])
    ]


def limit_long_words(words: list[WordTiming], previous_speech_end: float) -> None:
    """openai/whisper's add_word_timestamps adjustments, in place: a sentence-end mark, the word after one, and the
    first word after a pause (``previous_speech_end``, in the same seconds) may last at most twice the median word
    (at most MAX_MEDIAN_WORD_S); then punctuation is merged into its words."""
    durations = np.array([word.end - word.start for word in words])
    durations = durations[durations.nonzero()]
    median = min(MAX_MEDIAN_WORD_S, float(np.median(durations))) if len(durations) else 0.0
    longest = 2 * median
    if len(durations):
        for index in range(1, len(words)):
            word = words[index]
            if word.end - word.start > longest:
                if word.text in SENTENCE_END_MARKS:
                    word.end = word.start + longest
                elif words[index - 1].text in SENTENCE_END_MARKS:
                    word.start = word.end - longest
    merge_punctuations(words)
    kept = [word for word in words if word.text]
    if not kept or kept[0].end - previous_speech_end <= 4 * median:
        return
    first = kept[0]
    second_long = len(kept) > 1 and kept[1].end - first.start > 2 * longest
    if first.end - first.start > longest or second_long:
        if len(kept) > 1 and kept[1].end - kept[1].start > longest:
            first.end = kept[1].start = max(kept[1].end / 2, kept[1].end - longest)
        first.start = max(0.0, first.end - longest)


class WordAligner:
    """The alignment heads' session (decoder_alignment_heads.onnx) and what turns its scores into words."""

    def __init__(self, path: Path, info: ModelInfo, tokenizer: WhisperTokenizer, threads: int):
        if not Path(path).is_file() or not info.alignment_heads:
            missing = (f"{path} is missing" if not Path(path).is_file()
                       else f"the model info of {Path(path).parent} names no alignment heads")
            raise HailoWhisperError(
                f"decoding.word_timestamps needs {DECODER_ALIGNMENT} and the model's alignment heads, which exports "
                f"before exporter version 14 lack: export the model again (hailo-whisper export --force); {missing}")
        self.session = create_ort_session(path, threads)
        self.info = info
        self.tokenizer = tokenizer
        self.runs = 0  # alignment passes run (word_timestamps off must run none)

    @classmethod
    def beside(cls, decoder_dir: Path, info: ModelInfo, tokenizer: WhisperTokenizer, threads: int) -> WordAligner:
        """The aligner of the alignment pass in ``decoder_dir`` or its parent (the full export)."""
        try:
            path = find_beside(decoder_dir, DECODER_ALIGNMENT)
        except FileNotFoundError:
            path = Path(decoder_dir).parent / DECODER_ALIGNMENT
        return cls(path, info, tokenizer, threads)

    def matrix(self, states: np.ndarray, forced: Sequence[int], tokens: Sequence[int], frames: int,
               padded_positions: int) -> np.ndarray:
        """The alignment pass over ``tokens`` decoded after the forced prefix (no prompt, as openai/whisper aligns)
        against encoder ``states`` [1, T, d] seen as zero-padded to ``padded_positions``, ``frames`` mel frames of
        which are the audio: the matrix [len(tokens) + 1, frames / 2] that DTW walks (alignment_matrix)."""
        ids = np.asarray([[*forced, *tokens, self.info.eot]], dtype=np.int64)
        padded, bias = padded_encoder_inputs(states, padded_positions)
        (scores,) = self.session.run(
            [ALIGNMENT_SCORES], {INPUT_IDS: ids, ENCODER_HIDDEN_STATES: padded, ENCODER_ATTENTION_BIAS: bias})
        self.runs += 1
        return alignment_matrix(scores, max(1, min(frames // 2, states.shape[1])), len(forced) - 1)

    def align(
        self, states: np.ndarray, forced: Sequence[int], tokens: Sequence[int], token_probs: Sequence[float],
        frames: int, padded_positions: int, language: str,
    ) -> tuple[list[WordTiming], float]:
        """The words of ``tokens`` (see matrix) with their probabilities, times from the window's start; and the
        milliseconds it took."""
        started = time.perf_counter()
        if not tokens:
            return [], 0.0
        matrix = self.matrix(states, forced, tokens, frames, padded_positions)
        words = word_timings(self.tokenizer, tokens, token_probs, matrix, language)
        return words, (time.perf_counter() - started) * 1e3
