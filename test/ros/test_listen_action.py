"""The `listen` action (hailo_whisper_msgs/action/Listen) over real DDS, as a behaviour tree calls it: an ActionClient
in this process, the composed speech_recognition process (config/speech_recognition.yaml) hearing real clips.

A goal gets the partials of the utterance as feedback and its final as the result; several goals wait at once and
one final answers them all; a goal times out (aborted) when no one speaks, is canceled promptly while a person
speaks, is not answered by the utterance that was under way when it was accepted, and with a wake phrase passes
over a final without it.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from action_msgs.msg import GoalStatus
from hailo_whisper_msgs.action import Listen
from rclpy.action import ActionClient
from ros_harness import AudioDriver, Listener, s16le, wait_until

from hailo_whisper_ros.core.text import normalise
from hailo_whisper_ros.evaluation.scoring import word_errors
from hailo_whisper_ros.ros import diagnostics
from hailo_whisper_ros.ros.listen import ACTION

S16_RATE = 2 * 16000  # bytes per second of 16 kHz mono S16LE
SILENCE_S = 1.5  # after each clip, so that the VAD ends its utterance (vad.min_silence_ms: 600)
TIMEOUT_S = 60.0  # for what the nodes do on two busy cores
ANSWER_S = 2.0  # from a cancel request, or a goal's deadline, to its result: what "promptly" means here
SHORT = "librispeech_testclean_fakebob61/61-70968-0016.flac"  # and then they became vexed and would have ...
LONG = "librispeech_testclean_kw/1089-134691-0001.flac"  # 5.4 s: for a full hour he had paced up and down ...
WITHOUT_PHRASE = "ljspeech_coqui/LJ001-0013.flac"  # than in the same operations with ugly ones
WITH_PHRASE = "librispeech_testclean_kw/1089-134691-0000.flac"  # he could wait no longer


class Goal:
    """One goal sent to `listen` as a behaviour tree's action node sends it: its feedback as it arrives, its
    result once it ends."""

    def __init__(self, client: ActionClient, timeout_s: float = 0.0, wake_phrase: str = ""):
        self.feedback: list = []  # the Transcript of each feedback message
        self.sent_at = time.monotonic()
        sent = client.send_goal_async(Listen.Goal(timeout_s=timeout_s, wake_phrase=wake_phrase),
                                      feedback_callback=self._on_feedback)
        assert wait_until(sent.done, TIMEOUT_S), "the goal got no answer"
        self.handle = sent.result()
        self.result = self.handle.get_result_async() if self.handle.accepted else None

    def _on_feedback(self, message) -> None:
        self.feedback.append(message.feedback.transcript)

    def wait(self, timeout_s: float = TIMEOUT_S) -> tuple[int, Listen.Result]:
        """Its status (action_msgs/GoalStatus) and result, once it ended."""
        assert wait_until(self.result.done, timeout_s), f"no result within {timeout_s:g} s"
        response = self.result.result()
        return response.status, response.result

    def cancel(self) -> None:
        canceling = self.handle.cancel_goal_async()
        assert wait_until(canceling.done, TIMEOUT_S), "the cancel request got no answer"
        assert len(canceling.result().goals_canceling) == 1, canceling.result()


@pytest.fixture(scope="module")
def listen(speech_recognition, ros_context, sample_audio):
    """(listener, driver, ActionClient of `listen`, say(clip, speed)): say streams a shipped clip and the silence after
    it into the nodes as a microphone driver does, returning the thread that streams it."""
    listener = Listener(ros_context)
    driver = AudioDriver(ros_context)
    client = ActionClient(listener.node, Listen, ACTION)

    def say(*clips: str, speed: float = 2.0) -> threading.Thread:
        silence = np.zeros(int(SILENCE_S * 16000), np.float32)
        audio = np.concatenate([part for clip in clips for part in (sample_audio(clip), silence)])
        streaming = threading.Thread(target=driver.stream, args=(s16le(audio), S16_RATE), kwargs={"speed": speed})
        streaming.start()
        return streaming

    try:
        driver.wait_for_subscriber(listener, timeout=TIMEOUT_S)
        assert client.wait_for_server(timeout_sec=TIMEOUT_S), speech_recognition.log
        yield listener, driver, client, say
    finally:
        client.destroy()
        driver.close()
        listener.close()


def finals_counted(listener) -> int:
    """The finals the transcript_publisher (the action's server) has handled, from its status; -1 before one came."""
    status = listener.latest(listener.status_name("transcript_publisher"))
    return -1 if status is None else int(status.values[diagnostics.UTTERANCES])


def identity(transcript) -> tuple[int, bool, str]:
    """What tells one result from another (a Transcript with language_prob NaN never equals itself)."""
    return transcript.utterance_id, transcript.final, transcript.text


def test_a_goal_gets_the_partials_as_feedback_and_the_final_as_result(listen, sample_clips):
    listener, _, client, say = listen
    goal = Goal(client, timeout_s=TIMEOUT_S)
    also_waiting = Goal(client)  # no deadline: independent goals, answered by the same final
    assert goal.handle.accepted and also_waiting.handle.accepted
    say(SHORT, speed=1.0).join()  # as a person speaks: the partials of a busy machine's recognizer come too
    status, result = goal.wait()
    assert (status, result.outcome) == (GoalStatus.STATUS_SUCCEEDED, Listen.Result.HEARD), result
    assert result.transcript.final and result.text == result.transcript.text, result
    wer = word_errors([sample_clips[SHORT].reference], [result.text]).wer
    assert wer <= 0.2, (wer, result.text)
    partials = [message for message in goal.feedback if not message.final]
    assert partials and all(p.utterance_id == result.transcript.utterance_id for p in partials), goal.feedback
    assert identity(also_waiting.wait()[1].transcript) == identity(result.transcript)
    # The final as the nodes published it on transcript/events.
    assert listener.wait_for(lambda: identity(result.transcript) in map(identity, listener.events), TIMEOUT_S)


def test_a_goal_no_one_answers_is_aborted_at_its_deadline(listen):
    goal = Goal(listen[2], timeout_s=1.0)
    status, result = goal.wait()
    waited = time.monotonic() - goal.sent_at
    assert (status, result.outcome) == (GoalStatus.STATUS_ABORTED, Listen.Result.TIMED_OUT), result
    assert result.message == "no final answered within 1 s", result
    assert 1.0 <= waited <= 1.0 + ANSWER_S, waited
    assert goal.feedback == []


def test_goals_the_server_cannot_pursue_are_rejected(listen):
    client = listen[2]
    for timeout_s, wake_phrase in ((-1.0, ""), (float("nan"), ""), (1.0, "?!"), (1.0, "  ")):
        goal = Goal(client, timeout_s=timeout_s, wake_phrase=wake_phrase)
        assert not goal.handle.accepted, (timeout_s, wake_phrase)


def test_a_goal_is_canceled_mid_utterance_and_one_sent_then_waits_for_the_next(listen):
    listener, _, client, say = listen
    goal = Goal(client)
    finals_before = finals_counted(listener)
    streaming = say(LONG, speed=1.0)
    assert wait_until(lambda: goal.feedback, TIMEOUT_S), "no partial came"
    later = Goal(client)  # sent while the utterance is under way: its final does not answer it
    canceled_at = time.monotonic()
    goal.cancel()
    status, result = goal.wait(ANSWER_S)
    assert time.monotonic() - canceled_at <= ANSWER_S
    assert (status, result.outcome) == (GoalStatus.STATUS_CANCELED, Listen.Result.CANCELED), result

    streaming.join()
    utterance = goal.feedback[0].utterance_id
    assert listener.wait_for(
        lambda: utterance in listener.finished_ids and finals_counted(listener) > finals_before, TIMEOUT_S)
    assert not later.result.done() and later.feedback == [], later.feedback
    later.cancel()
    assert later.wait(ANSWER_S)[0] == GoalStatus.STATUS_CANCELED


def test_a_goal_with_a_wake_phrase_passes_over_a_final_without_it(listen):
    client, say = listen[2], listen[3]
    goal = Goal(client, timeout_s=TIMEOUT_S, wake_phrase="He could")
    say(WITHOUT_PHRASE, WITH_PHRASE).join()
    status, result = goal.wait()
    assert (status, result.outcome) == (GoalStatus.STATUS_SUCCEEDED, Listen.Result.HEARD), result
    assert normalise(result.transcript.text).startswith("he could"), result
    assert normalise(result.text) == "wait no longer", result
    passed_over = [message.text for message in goal.feedback if message.final]
    assert len(passed_over) == 1 and "operations with ugly ones" in normalise(passed_over[0]), goal.feedback
