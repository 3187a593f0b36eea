"""The wake-phrase matcher (core/wake_phrase.py): what matches, what must not, the command left after the phrase, and
the phrases refused; and the empty list parameter that turns the gate off (ros/params.py)."""

from __future__ import annotations

import pytest
from rclpy.parameter import Parameter

from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.options import option, spec_of
from hailo_whisper_ros.core.wake_phrase import WakePhraseMatcher, WakePhraseOptions, edit_distance
from hailo_whisper_ros.ros.params import typed_empty_lists

HEY_ROBOT = WakePhraseMatcher(WakePhraseOptions(wake_phrases=("Hey robot", "and so")))

# (transcript, the command it gives, or None: no match). The quoted decodes are tiny.en's of espeak-ng saying
# "Hey robot, ..." and the near-misses (README, "The wake-phrase gate").
MATCHES = [
    ("Hey robot, bring me the red cup.", "bring me the red cup."),
    (" hey, robot  stop", "stop"),
    ("HEY ROBOT! Turn left.", "Turn left."),
    ("Hey Robo, stop.", "stop."),  # one edit
    ("Hero bot bring me the red cup.", "bring me the red cup."),  # a decode: the words split elsewhere, one edit
    ("Heyrobot, go.", "go."),  # merged words cost nothing
    ("Hey robots, come here.", "come here."),  # one edit
    ("Hey robot.", ""),  # the phrase alone: an empty command
    ("Hey robot...  -- what time is it?", "what time is it?"),
    ("And so, my fellow Americans, ask not", "my fellow Americans, ask not"),
    ("and so", ""),
]
NEAR_MISSES = [
    "Hey Robert, how are you?",  # a different word: two edits (a decode of "Hey Robert")
    "Hey rob, stop.",  # two edits
    "Hey robotics lab, open.",  # a longer word beginning with the phrase: three edits
    "The robotic slab is closed today.",  # a decode of "The robotics lab ..."
    "I told the robot to stop.",  # the phrase, but not at the start
    "Well, hey robot, stop.",
    "A robot, bring me the cup.",  # a different first word: the phrase list can hold "a robot" too
    "Hero mod, turn left.",  # a decode of "Hey robot, turn left": three edits
    "And sew the seeds.",  # 'and so' has five letters: no edit allowed
    "Andes mountains",
    "",
    "...",
]


@pytest.mark.parametrize("text, command", MATCHES)
def test_a_final_beginning_with_a_wake_phrase_gives_the_rest_as_the_command(text, command):
    match = HEY_ROBOT.match(text)
    assert match is not None, text
    assert match.command == command


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_a_near_miss_gives_no_command(text):
    assert HEY_ROBOT.match(text) is None


def test_the_closest_phrase_wins_and_names_itself():
    matcher = WakePhraseMatcher(WakePhraseOptions(wake_phrases=("hey robot", "hey robo")))
    assert matcher.match("Hey robo, stop").phrase == "hey robo"
    assert matcher.match("Hey robot, stop").phrase == "hey robot"


def test_the_edit_budget_follows_the_ratio():
    strict = WakePhraseMatcher(WakePhraseOptions(wake_phrases=("hey robot",), wake_max_edit_ratio=0.0))
    assert strict.match("Hey robot, stop").command == "stop"
    assert strict.match("Hey Robo, stop") is None
    loose = WakePhraseMatcher(WakePhraseOptions(wake_phrases=("hey robot",), wake_max_edit_ratio=0.25))
    assert loose.match("Hey Robert, stop").command == "stop"  # two edits of 8 letters


def test_no_phrases_turn_the_gate_off():
    matcher = WakePhraseMatcher(WakePhraseOptions())
    assert not matcher.enabled
    assert matcher.match("Hey robot, stop") is None


@pytest.mark.parametrize("phrases, reason", [
    (("hey robot", ""), "empty phrase"),
    (("  ",), "empty phrase"),
    (("?!",), "no words"),
    (("Hey robot", "hey, robot!"), "the same phrase"),
])
def test_bad_phrases_are_refused_with_the_reason(phrases, reason):
    with pytest.raises(HailoWhisperError, match=reason):
        WakePhraseOptions(wake_phrases=phrases)


def test_the_ratio_is_bounded():
    with pytest.raises(HailoWhisperError, match="wake_max_edit_ratio"):
        WakePhraseOptions(wake_max_edit_ratio=0.6)


def test_edit_distance():
    assert edit_distance("heyrobot", "herobot") == 1
    assert edit_distance("heyrobot", "heyrobert") == 2
    assert edit_distance("", "abc") == 3
    assert edit_distance("kitten", "sitting") == 3


def test_an_empty_list_option_declares_its_kind():
    assert spec_of(WakePhraseOptions, "wake_phrases").kind == "str_tuple"
    with pytest.raises(TypeError, match="kind"):
        option([], "An empty list whose kind is not given.")


def test_an_empty_array_of_any_type_is_an_empty_list_of_the_options_type():
    # `ros2 param set NODE gate.wake_phrases "[]"` sends an empty bool array.
    specs = {"gate.wake_phrases": spec_of(WakePhraseOptions, "wake_phrases")}
    given = [Parameter("gate.wake_phrases", Parameter.Type.BOOL_ARRAY, []),
             Parameter("other", Parameter.Type.BOOL_ARRAY, [])]
    typed = typed_empty_lists(given, specs)
    assert [(p.name, p.type_, list(p.value)) for p in typed] == [
        ("gate.wake_phrases", Parameter.Type.STRING_ARRAY, []), ("other", Parameter.Type.BOOL_ARRAY, [])]
    assert typed_empty_lists([Parameter("gate.wake_phrases", value=["hey"])], specs)[0].value == ["hey"]
