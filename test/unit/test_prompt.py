"""The decoder's prompt (decoding.initial_prompt, decoding.condition_on_previous) without a model: its layout and
bounds, and which results may become the next utterance's context."""

import math

import pytest

from hailo_whisper_ros.core.decoding import (
    GUARD_REPETITION,
    STOP_EOT,
    check_initial_prompt,
    max_prompt_tokens,
    prompted_prefix,
)
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.recognizer import Segment, Timings, TranscriptionResult
from hailo_whisper_ros.evaluation.vocabulary import rare_word_errors

SOT, SOT_PREV, NO_TIMESTAMPS = 50257, 50360, 50362
FORCED = [SOT, NO_TIMESTAMPS]


def test_without_prompt_tokens_the_forced_prefix_is_the_whole_prompt():
    assert prompted_prefix(FORCED, SOT_PREV, (), (), 223) == FORCED


def test_layout_is_startofprev_initial_prompt_context_then_the_forced_prefix():
    assert prompted_prefix(FORCED, SOT_PREV, (1, 2), (3, 4, 5), 223) == [SOT_PREV, 1, 2, 3, 4, 5, SOT, NO_TIMESTAMPS]
    assert prompted_prefix(FORCED, SOT_PREV, (), (3,), 223) == [SOT_PREV, 3, SOT, NO_TIMESTAMPS]


def test_the_bound_keeps_the_initial_prompt_and_the_most_recent_context():
    initial, context = tuple(range(100, 110)), tuple(range(1000))
    prefix = prompted_prefix(FORCED, SOT_PREV, initial, context, max_prompt_tokens(448))
    assert max_prompt_tokens(448) == 223  # openai/whisper: n_text_ctx // 2 - 1
    assert len(prefix) == 1 + 223 + len(FORCED)
    assert prefix[1:11] == list(initial)
    assert prefix[11:-2] == list(range(1000 - 213, 1000))  # the newest tokens
    # An initial prompt that fills the bound leaves no room for context.
    assert prompted_prefix(FORCED, SOT_PREV, tuple(range(15)), context, 15) == [SOT_PREV, *range(15), *FORCED]


def test_an_initial_prompt_too_long_to_leave_room_to_decode_is_refused():
    check_initial_prompt(tuple(range(223)), 448)
    with pytest.raises(HailoWhisperError, match=r"initial_prompt is 224 tokens.*at most 223"):
        check_initial_prompt(tuple(range(224)), 448)
    with pytest.raises(HailoWhisperError, match="at most 15"):  # Hailo's fixed 32-token decoder HEF
        check_initial_prompt(tuple(range(16)), 32)


def segment(tokens, stop=STOP_EOT, guards=(), no_speech=False):
    return Segment(start_s=0.0, end_s=1.0, window_start_s=0.0, frames=600, text="x", tokens=tuple(tokens),
                   avg_logprob=-0.2, no_speech_prob=0.9 if no_speech else 0.01, no_speech=no_speech, stop=stop,
                   end_prob=0.9, last_token_prob=0.9, guards=tuple(guards))


def result(*segments):
    return TranscriptionResult(text="", segments=segments, timings=Timings(0, 0, 0, 0, 0, 0, 0),
                               encoder_backend="onnx", decoder_backend="onnx", fallback_reason=None,
                               language="en", language_prob=math.nan)


def test_a_clean_result_extends_the_context_to_its_most_recent_tokens():
    assert result(segment([4, 5]), segment([6])).context_after((1, 2, 3), 4) == (3, 4, 5, 6)


@pytest.mark.parametrize("spoiled", [
    segment([7, 7, 7], stop=GUARD_REPETITION, guards=(GUARD_REPETITION,)),  # a loop cut by a guard
    segment([7], guards=(GUARD_REPETITION,)),  # recovered, but a loop all the same
    segment([7, 8], no_speech=True),
    segment([]),
])
def test_a_guard_or_no_speech_drops_the_context_so_no_loop_is_carried_on(spoiled):
    assert result(segment([4, 5]), spoiled).context_after((1, 2), 64) == ()
    assert result(spoiled, segment([4, 5])).context_after((1, 2), 64) == (4, 5)  # a later clean part starts afresh


def test_rare_word_errors_count_the_rare_words_not_reproduced():
    rare = frozenset({"okonkwo", "haverbrook"})
    references = ["Bring it to Doctor Okonkwo in the Haverbrook lab.", "Go home."]
    assert rare_word_errors(references, ["Bring it to doctor Okonkwo in the Haverbrook lab", "go"], rare) == (0, 2)
    assert rare_word_errors(references, ["Bring it to Doctor Okon Kwo in the haver brook lab.", ""], rare) == (2, 2)
    assert rare_word_errors(references, ["", "Go home."], rare) == (2, 2)
