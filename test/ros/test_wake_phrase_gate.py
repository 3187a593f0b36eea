"""The wake-phrase gate over real DDS: `gate.wake_phrases` set at run time through the parameter service (as
`ros2 param set` does), finals beginning with a phrase published on `command` with the phrase stripped, every final
still on `transcript`, and the counts on /diagnostics.

The composed speech_recognition process (config/speech_recognition.yaml) hears a real clip (jfk: "And so, my fellow
Americans ..."; "and so" is the phrase); the transcript_publisher executable on its own is fed Transcript results by
this test, as the recognizer publishes them, for the refusals and the partials.
"""

from __future__ import annotations

import numpy as np
import pytest
from hailo_whisper_msgs.msg import Transcript
from rcl_interfaces.msg import ParameterType, ParameterValue
from ros_harness import AudioDriver, Listener, NodeProcess, s16le

from hailo_whisper_ros.core.text import normalise
from hailo_whisper_ros.ros import diagnostics, topics

STANDALONE_NAMESPACE = "wake_standalone"
CLIP = "jfk/jfk.flac"
S16_RATE = 2 * 16000  # bytes per second of 16 kHz mono S16LE
SILENCE_S = 1.5  # after the clip, so that the VAD ends its last utterance
SPEED = 4.0
TIMEOUT_S = 60.0
PUBLISHER = "transcript_publisher"
STANDALONE = f"{STANDALONE_NAMESPACE}/{PUBLISHER}"  # the separate node's name, as the parameter service has it


@pytest.fixture(scope="module")
def composed(speech_recognition, ros_context, sample_audio):
    """The composed process of config/speech_recognition.yaml (the gate off: `gate.wake_phrases: []`)."""
    listener = Listener(ros_context)
    driver = AudioDriver(ros_context)
    try:
        driver.wait_for_subscriber(listener, timeout=TIMEOUT_S)
        # The counts before the first clip, to compare with those after it.
        assert listener.wait_for(lambda: counts(listener)[0] >= 0, TIMEOUT_S)
        yield listener, driver, sample_audio(CLIP)
    finally:
        driver.close()
        listener.close()


def counts(listener) -> tuple[int, int, int]:
    """The transcript_publisher's (finals, commands, finals without a wake phrase) on /diagnostics, or -1s."""
    status = listener.latest(listener.status_name(PUBLISHER))
    if status is None:
        return -1, -1, -1
    values = status.values
    return (int(values[diagnostics.UTTERANCES]), int(values[diagnostics.COMMANDS]),
            int(values[diagnostics.WITHOUT_WAKE_PHRASE]))


def hear(listener, driver, audio) -> list[str]:
    """The clip through the nodes; the finals it gave on `transcript`, once the publisher counted them too."""
    finals_before = len(listener.finals)
    counted_before = counts(listener)[0]
    driver.stream(s16le(np.concatenate([audio, np.zeros(int(SILENCE_S * 16000), np.float32)])), S16_RATE,
                  speed=SPEED)
    assert listener.wait_for(
        lambda: any(normalise(f).endswith("your country") for f in listener.finals[finals_before:]), TIMEOUT_S
    ), listener.finals[finals_before:]
    finals = listener.finals[finals_before:]
    assert listener.wait_for(lambda: counts(listener)[0] == counted_before + len(finals), TIMEOUT_S), counts(listener)
    return finals


def test_a_phrase_set_at_run_time_sends_the_rest_of_a_real_final_to_command(composed, set_parameter):
    listener, driver, audio = composed
    assert set_parameter(listener, PUBLISHER, "gate.wake_phrases", ["And so"]) == (True, "")
    commands_before = len(listener.commands)
    finals = hear(listener, driver, audio)
    assert normalise(finals[0]).startswith("and so my fellow americans"), finals
    assert listener.wait_for(lambda: len(listener.commands) > commands_before, TIMEOUT_S)
    command = listener.commands[commands_before]
    # The phrase and the comma after it stripped, the rest as spoken.
    assert command == finals[0].strip()[len("And so"):].lstrip(", "), (command, finals)
    assert command.lower().startswith("my fellow americans"), command
    _, commands, without = counts(listener)
    assert (commands, without) == (1, len(finals) - 1), (counts(listener), finals)
    assert len(listener.commands) == commands_before + 1


def test_a_phrase_not_spoken_gives_no_command_and_the_finals_still_come(composed, set_parameter):
    listener, driver, audio = composed
    assert set_parameter(listener, PUBLISHER, "gate.wake_phrases", ["hey robot"]) == (True, "")
    _, commands_before, without_before = counts(listener)
    seen = len(listener.commands)
    finals = hear(listener, driver, audio)
    assert finals and normalise(finals[0]).startswith("and so"), finals
    _, commands, without = counts(listener)
    assert (commands, without) == (commands_before, without_before + len(finals)), counts(listener)
    assert len(listener.commands) == seen


@pytest.fixture(scope="module")
def standalone(ros_context):
    process = NodeProcess("transcript_publisher", "-r", f"__ns:=/{STANDALONE_NAMESPACE}")
    listener = Listener(ros_context, STANDALONE_NAMESPACE, node_name="wake_listener")
    events = listener.node.create_publisher(Transcript, topics.TRANSCRIPT_EVENTS, topics.RESULTS_QOS)
    try:
        assert listener.wait_for(lambda: events.get_subscription_count() > 0 and counts(listener)[0] == 0,
                                 TIMEOUT_S), process.log
        yield listener, events
    finally:
        listener.close()
    assert process.stop() == 0, process.log


def publish(listener, events, utterance_id: int, text: str, final: bool = True) -> None:
    """One result as the recognizer publishes it; a final waits until the publisher counted it."""
    counted = counts(listener)[0]
    events.publish(Transcript(utterance_id=utterance_id, final=final, text=text, stable_text=text))
    if final:
        assert listener.wait_for(lambda: counts(listener)[0] == counted + 1, TIMEOUT_S), counts(listener)


def test_the_separate_node_refuses_bad_phrases_and_never_commands_from_a_partial(standalone, set_parameter):
    listener, events = standalone
    ok, reason = set_parameter(listener, STANDALONE, "gate.wake_phrases", ["hey robot", "Hey, robot!"])
    assert not ok and "same phrase" in reason, reason
    ok, reason = set_parameter(listener, STANDALONE, "gate.wake_phrases", ["hey robot", ""])
    assert not ok and "empty phrase" in reason, reason
    ok, reason = set_parameter(listener, STANDALONE, "gate.wake_phrases", ["?!"])
    assert not ok and "no words" in reason, reason
    publish(listener, events, 1, "Hey robot, stop.")  # refused changes left the gate off
    assert counts(listener)[1:] == (0, 0)

    assert set_parameter(listener, STANDALONE, "gate.wake_phrases", ["hey robot"]) == (True, "")
    publish(listener, events, 2, "Hey Robo, bring", final=False)
    publish(listener, events, 2, "Hey Robo, bring me the cup.")
    publish(listener, events, 3, "Hey Robert, how are you?")
    publish(listener, events, 4, "Hey robot.")
    assert listener.wait_for(lambda: len(listener.commands) == 2, TIMEOUT_S), (listener.commands, counts(listener),
                                                                             listener.finals)
    assert listener.commands == ["bring me the cup.", ""]
    assert counts(listener)[1:] == (2, 1)
    assert listener.finals == ["Hey robot, stop.", "Hey Robo, bring me the cup.", "Hey Robert, how are you?",
                               "Hey robot."]
    assert listener.partials == ["Hey Robo, bring"]

    # `ros2 param set ... gate.wake_phrases "[]"` sends an empty bool array: taken as the empty list, the gate off.
    empty = ParameterValue(type=ParameterType.PARAMETER_BOOL_ARRAY, bool_array_value=[])
    assert set_parameter(listener, STANDALONE, "gate.wake_phrases", empty) == (True, "")
    publish(listener, events, 5, "Hey robot, stop.")
    assert counts(listener)[1:] == (2, 1)
    assert len(listener.commands) == 2
