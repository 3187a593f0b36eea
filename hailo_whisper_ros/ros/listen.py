"""The `listen` action (hailo_whisper_msgs/action/Listen): wait for the next thing a person says and return its final
transcript, for behaviour trees (as whisper_ros's STT action). Listen.action states the contract.

Served by the transcript_publisher from the recognizer's results on `transcript/events`, so that it is there in the
separate-process layout and in speech_recognition alike, and the recognizer does nothing for it. Its callbacks run
one at a time (the node's default callback group is mutually exclusive, and ros/runner.py spins one thread), so the
state here needs no lock. A goal's execute callback is a coroutine that awaits a future, which the results callback,
the goal's timer or its cancellation completes: a waiting goal holds no thread and never blocks the executor.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from hailo_whisper_msgs.action import Listen
from hailo_whisper_msgs.msg import Transcript
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.action.server import ServerGoalHandle
from rclpy.node import Node
from rclpy.task import Future
from rclpy.timer import Timer

from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.wake_phrase import WakePhraseMatcher, WakePhraseOptions

# The action's name, as whisper_ros names its STT action. The audio subscriber's `listen` service (std_srvs/SetBool)
# is another name to DDS: an action's services and topics are named under `listen/_action/`.
ACTION = "listen"


@dataclass
class WaitingGoal:
    """An accepted goal until its result is set."""

    handle: ServerGoalHandle
    wake_phrase: WakePhraseMatcher  # not enabled: any final with text answers
    earlier_utterances: frozenset[int]  # results of these had arrived before acceptance: they never answer
    ended: Future = field(default_factory=Future)  # the Listen.Result, once the goal ends
    timer: Timer | None = None
    without_phrase: int = 0  # finals with text that did not begin with the wake phrase

    def answer(self, message: Transcript) -> str | None:
        """The goal's answer in ``message``: a final's text, after the wake phrase if the goal has one; else None
        (a final with text but without the phrase is counted)."""
        if not (message.final and message.text):
            return None
        if not self.wake_phrase.enabled:
            return message.text
        match = self.wake_phrase.match(message.text)
        if match is None:
            self.without_phrase += 1
            return None
        return match.command


def goal_key(handle: ServerGoalHandle) -> bytes:
    return bytes(handle.goal_id.uuid)


class ListenServer:
    """The `listen` action server of ``node``. ``gate_options()``: the node's wake-phrase options at the moment, whose
    edit budget a goal's wake phrase is matched with. The node passes each result on `transcript/events` to
    ``on_result`` and calls ``destroy`` before it goes."""

    def __init__(self, node: Node, gate_options: Callable[[], WakePhraseOptions]):
        self.node = node
        self.gate_options = gate_options
        self.goals: dict[bytes, WaitingGoal] = {}  # by goal id, from acceptance until the execute callback ends
        self.open_utterances: set[int] = set()  # utterances whose partials came and whose final has not
        self.server = ActionServer(
            node, Listen, ACTION, execute_callback=self._execute, goal_callback=self._on_goal,
            handle_accepted_callback=self._on_accepted, cancel_callback=self._on_cancel)

    def _wake_phrase(self, phrase: str) -> WakePhraseMatcher:
        """The matcher of a goal's wake phrase (none when empty); HailoWhisperError for a phrase with no words."""
        return WakePhraseMatcher(dataclasses.replace(self.gate_options(), wake_phrases=(phrase,) if phrase else ()))

    def _on_goal(self, goal: Listen.Goal) -> GoalResponse:
        try:
            if not (math.isfinite(goal.timeout_s) and goal.timeout_s >= 0):
                raise HailoWhisperError(f"timeout_s must be 0 (no deadline) or positive, not {goal.timeout_s}")
            self._wake_phrase(goal.wake_phrase)
        except HailoWhisperError as error:
            self.node.get_logger().warning(f"listen goal rejected: {error}")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _on_accepted(self, handle: ServerGoalHandle) -> None:
        goal = handle.request
        waiting = WaitingGoal(handle, self._wake_phrase(goal.wake_phrase), frozenset(self.open_utterances))
        if goal.timeout_s > 0:
            waiting.timer = self.node.create_timer(goal.timeout_s, lambda: self._time_out(waiting))
        self.goals[goal_key(handle)] = waiting
        handle.execute()

    def _on_cancel(self, handle: ServerGoalHandle) -> CancelResponse:
        waiting = self.goals.get(goal_key(handle))
        if waiting is None or waiting.ended.done():
            return CancelResponse.REJECT  # its result is set already
        self._end(waiting, Listen.Result(outcome=Listen.Result.CANCELED, message="canceled by the client"))
        return CancelResponse.ACCEPT

    async def _execute(self, handle: ServerGoalHandle) -> Listen.Result:
        waiting = self.goals[goal_key(handle)]
        try:
            result = await waiting.ended
        finally:
            del self.goals[goal_key(handle)]
        if result.outcome == Listen.Result.HEARD:
            handle.succeed()
        elif result.outcome == Listen.Result.TIMED_OUT:
            handle.abort()
        else:  # the cancel callback accepted: the goal is canceling
            handle.canceled()
        return result

    def _time_out(self, waiting: WaitingGoal) -> None:
        goal = waiting.handle.request
        message = f"no final answered within {goal.timeout_s:g} s"
        if goal.wake_phrase:
            message += f" ({waiting.without_phrase} finals without the wake phrase {goal.wake_phrase!r})"
        self._end(waiting, Listen.Result(outcome=Listen.Result.TIMED_OUT, message=message))

    def _end(self, waiting: WaitingGoal, result: Listen.Result) -> None:
        if waiting.timer is not None:
            self.node.destroy_timer(waiting.timer)
            waiting.timer = None
        # The executor may have taken the timer's expiry in the same wait as the final that ended the goal: its
        # callback then still runs, after the timer is gone, and finds the result set.
        if not waiting.ended.done():
            waiting.ended.set_result(result)

    def on_result(self, message: Transcript) -> None:
        """A result on `transcript/events`: the answer of each waiting goal it suits, else their feedback."""
        utterance = message.utterance_id
        if message.final:  # ids increase: an utterance before it that got no final never will
            self.open_utterances = {open_id for open_id in self.open_utterances if open_id > utterance}
        else:
            self.open_utterances.add(utterance)
        for waiting in self.goals.values():
            if waiting.ended.done() or utterance in waiting.earlier_utterances:
                continue
            answer = waiting.answer(message)
            if answer is None:
                waiting.handle.publish_feedback(Listen.Feedback(transcript=message))
            else:
                self._end(waiting, Listen.Result(outcome=Listen.Result.HEARD, text=answer, transcript=message,
                                                 message=f"utterance {utterance} answered"))

    def destroy(self) -> None:
        self.server.destroy()
