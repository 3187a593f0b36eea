"""The soak over DDS (`hailo-whisper soak --ros`): the soak's input published as a microphone driver would to
running nodes (a speech_recognition, or its three nodes), their results and diagnostics read back through
evaluation.ros_session, and the same accounting and report as the in-process soak (evaluation.soak).

Results are placed in the input by their stream positions, which the audio subscriber counts from its start: the
soak's audio begins where its 'audio received (s)' stood. The nodes' drops cannot be located, so with drops reported
a clip without a final counts as dropped.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.resources import resident_mb
from hailo_whisper_ros.evaluation.ros_session import AudioDriver, Listener, NodeStatus, ros_context, s16le
from hailo_whisper_ros.evaluation.soak import (
    Accounting,
    Failures,
    FinalSpan,
    SoakInput,
    SoakReport,
    account,
    result_delays,
)
from hailo_whisper_ros.ros.diagnostics import (
    AUDIO_RECEIVED_S,
    DROPPED_AUDIO_S,
    INFERENCE_ERRORS,
    INPUT_QUEUE_S,
    QUEUE_DEPTH_S,
    REJECTED_PREFIX,
)
from hailo_whisper_ros.ros.topics import TRANSCRIPT_EVENTS

NODE_EXECUTABLE = "speech_recognition"  # the composed process whose memory is watched when no --pid is given
NODES = ("audio_subscriber", "recognizer")  # whose statuses the soak reads
DISCOVERY_TIMEOUT_S = 30.0
IDLE_TIMEOUT_S = 10.0  # for the audio subscriber to show that no other source feeds it
SETTLE_S = 3.0  # after the last audio: no new result for this long, and the nodes' queues empty
SETTLE_TIMEOUT_S = 120.0
WATCHED_QUEUES = (INPUT_QUEUE_S, QUEUE_DEPTH_S)  # the audio subscriber's and the recognizer's


def node_processes(pids: list[int] | None) -> tuple[list[int], str]:
    """The processes whose memory the ROS soak watches (the given ones, else the one running the composed node),
    and what they are, for the report."""
    import psutil

    if pids:
        return list(pids), ", ".join(map(str, pids))
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if any(Path(part).name == NODE_EXECUTABLE for part in command[:2]):
            found.append(process.pid)
    if len(found) != 1:
        return [], f"{len(found)} {NODE_EXECUTABLE} processes found: pass --pid"
    return found, f"{found[0]} ({NODE_EXECUTABLE})"


class QueueMaxima:
    """The deepest queues the nodes reported on /diagnostics during the soak (a Listener's on_status)."""

    def __init__(self):
        self.deepest: dict[tuple[str, str], float] = {}  # (status name, value name) -> seconds

    def update(self, name: str, status: NodeStatus) -> None:
        for key in WATCHED_QUEUES:
            if key in status.values:
                self.deepest[name, key] = max(self.deepest.get((name, key), 0.0), float(status.values[key]))

    def of(self, name: str, key: str) -> float:
        return self.deepest.get((name, key), 0.0)


def idle_values(listener: Listener) -> dict[str, dict[str, str]]:
    """Both nodes' status values once the audio subscriber reports the same input twice with an empty queue."""
    subscriber = listener.status_name("audio_subscriber")
    previous = None
    deadline = time.monotonic() + IDLE_TIMEOUT_S
    while time.monotonic() < deadline:
        asked = time.monotonic()
        listener.wait_for(lambda since=asked: listener.latest(subscriber, since) is not None, 3.0)
        current = listener.latest(subscriber, asked)
        if current is not None and previous is not None and float(current.values[INPUT_QUEUE_S]) == 0 and (
            current.values[AUDIO_RECEIVED_S] == previous.values[AUDIO_RECEIVED_S]
        ):
            return {"audio_subscriber": current.values,
                    "recognizer": listener.latest(listener.status_name("recognizer")).values}
        previous = current
    raise HailoWhisperError("the audio subscriber is receiving other audio: stop that source for the soak")


def run_ros_soak(
    soak_input: SoakInput,
    speed: float,
    chunk_ms: int,
    namespace: str,
    pids: list[int] | None,
    progress: Callable[[float, str], None],
    progress_interval_s: float,
) -> SoakReport:
    """The input published at ``speed`` times real time in ``chunk_ms`` messages to the nodes of ``namespace``,
    in this process's ROS environment as it is; ``pids``: the processes whose memory to watch (see
    node_processes)."""
    processes, watched = node_processes(pids)
    soak = RosSoak(soak_input, speed, chunk_ms, processes)
    with ros_context() as context:
        maxima = QueueMaxima()
        listener = Listener(context, namespace, node_name="hailo_whisper_soak", on_status=maxima.update,
                            keep_diagnostics=False)
        driver = AudioDriver(context, namespace, node_name="hailo_whisper_soak_audio")
        try:
            wait_for_nodes(listener, driver)
            before = idle_values(listener)
            wall_s = soak.publish(driver, listener, progress, progress_interval_s)
            latest = {node: listener.latest(listener.status_name(node)) for node in NODES}
            after = {node: latest[node].values if latest[node] is not None else before[node] for node in NODES}
        finally:
            driver.close()
            listener.close()
    for problem in listener.contract_violations:
        soak.failures.record(TRANSCRIPT_EVENTS, ValueError(problem))
    return soak.report(listener, maxima, NodeCounters(before, after), wall_s, watched)


def wait_for_nodes(listener: Listener, driver: AudioDriver) -> None:
    """Until the audio subscriber hears the driver and both nodes report on /diagnostics; then the driver declares
    its format."""
    if not listener.wait_for(
        lambda: driver.has_subscriber()
        and all(listener.latest(listener.status_name(node)) is not None for node in NODES),
        DISCOVERY_TIMEOUT_S,
    ):
        raise HailoWhisperError(
            f"no audio subscriber and recognizer answer on {driver.audio_pub.topic_name} and /diagnostics: "
            f"start them first ({NODE_EXECUTABLE} --ros-args --params-file config/speech_recognition.yaml)"
        )
    driver.wait_for_subscriber(listener)
    driver.declare(listener, SAMPLE_RATE)


@dataclass(frozen=True)
class NodeCounters:
    """Both nodes' status values before the soak's audio (idle_values) and after it."""

    before: dict[str, dict[str, str]]
    after: dict[str, dict[str, str]]

    def delta(self, node: str, key: str) -> float:
        return float(self.after[node].get(key, 0)) - float(self.before[node].get(key, 0))

    @property
    def offset(self) -> int:
        """The stream sample at which the soak's audio began: the audio subscriber counts from its start."""
        return int(round(float(self.before["audio_subscriber"][AUDIO_RECEIVED_S]) * SAMPLE_RATE))

    def rejections(self) -> dict[str, float] | str:
        """The audio subscriber's rejected messages by reason, the reasons that grew only."""
        grown = {
            key: self.delta("audio_subscriber", key)
            for key in self.after["audio_subscriber"]
            if key.startswith(REJECTED_PREFIX)
        }
        return {key: count for key, count in grown.items() if count} or "none"


class RosSoak:
    """The soak's input published to the nodes as a driver would (publish), and its results read back into the
    soak's report (report)."""

    def __init__(self, soak_input: SoakInput, speed: float, chunk_ms: int, processes: list[int]):
        self.soak_input = soak_input
        self.speed = speed
        self.chunk_samples = chunk_ms * SAMPLE_RATE // 1000
        self.processes = processes  # whose memory is watched
        self.failures = Failures()
        self.rss: dict[str, float | None] = {"start": None, "middle": None, "end": None}
        self.published_until: list[int] = []  # input position after each message ...
        self.published_at: list[float] = []  # ... and when it was published (time.monotonic(), as result arrivals)

    def node_rss_mb(self) -> float | None:
        try:
            return sum(resident_mb(pid) for pid in self.processes) if self.processes else None
        except OSError:  # the node exited: n/a here; its silence then fails the wait for results in publish
            return None

    def publish(self, driver: AudioDriver, listener: Listener, progress: Callable[[float, str], None],
                progress_interval_s: float) -> float:
        """Publishes the input at ``speed`` times real time and waits for the nodes to catch up; returns the wall
        time from the first message."""
        self.rss["start"] = self.node_rss_mb()
        started = time.perf_counter()
        next_progress = started + progress_interval_s
        for start, audio in self.soak_input.chunks(self.chunk_samples):
            end = start + len(audio)
            due = started + end / SAMPLE_RATE / self.speed
            time.sleep(max(due - time.perf_counter(), 0.0))
            try:
                self.published_at.append(time.monotonic())
                self.published_until.append(end)
                driver.send(s16le(audio))
            except Exception as error:  # a soak reports exceptions instead of stopping at the first
                self.failures.record("publisher", error)
            if self.rss["middle"] is None and end >= self.soak_input.total_samples // 2:
                self.rss["middle"] = self.node_rss_mb()
            if time.perf_counter() >= next_progress:
                next_progress += progress_interval_s
                progress(end / SAMPLE_RATE, _progress_note(listener))
        if not listener.wait_until_caught_up(time.monotonic(), SETTLE_S, SETTLE_TIMEOUT_S):
            self.failures.record("nodes", TimeoutError(f"results still coming or the nodes silent {SETTLE_TIMEOUT_S} s "
                                                       "after the last audio"))
        wall_s = time.perf_counter() - started
        self.rss["end"] = self.node_rss_mb()
        return wall_s

    def _span(self, arrival: float, record, offset: int) -> FinalSpan:
        """A final placed in the input, with its delay after the message that brought its last sample."""
        start, end = (int(round(seconds * SAMPLE_RATE)) - offset for seconds in (record.start_s, record.end_s))
        message = bisect.bisect_left(self.published_until, end)
        delay = arrival - self.published_at[message] if message < len(self.published_at) else None
        return FinalSpan(start, end, record.text, delay)

    def report(self, listener: Listener, maxima: QueueMaxima, counters: NodeCounters, wall_s: float,
               watched: str) -> SoakReport:
        records = list(zip(listener.event_arrivals, listener.events))
        finals = [record for _, record in records if record.final]
        spans = [self._span(arrival, record, counters.offset) for arrival, record in records if record.final]
        dropped_s = counters.delta("audio_subscriber", DROPPED_AUDIO_S) + counters.delta("recognizer", DROPPED_AUDIO_S)
        latencies = [record.latency_ms for record in finals]
        return SoakReport(
            mode=f"over DDS at {self.speed:g}x real time",
            audio_in_s=self.soak_input.duration_s,
            audio_processed_s=counters.delta("audio_subscriber", AUDIO_RECEIVED_S),
            audio_dropped_s=dropped_s,
            speech_in_finals_s=sum(s.end_sample - s.start_sample for s in spans if s.text) / SAMPLE_RATE,
            max_queue_depth_s=maxima.of(listener.status_name("recognizer"), QUEUE_DEPTH_S),
            queue_limit_s=None,
            accounting=_accounting(self.soak_input, spans, dropped_s),
            rss_mb=self.rss,
            exceptions=tuple(self.failures.kept),
            exception_count=self.failures.count,
            inference_errors=int(counters.delta("recognizer", INFERENCE_ERRORS)),
            final_latency_p50_ms=float(np.percentile(latencies, 50)) if latencies else None,
            final_latency_p95_ms=float(np.percentile(latencies, 95)) if latencies else None,
            result_delay_s=result_delays(spans),
            wall_s=wall_s,
            extra={
                "memory watched of process": watched,
                "soak process memory end (MB)": f"{resident_mb():.1f}",
                "subscriber max input queue (s)": maxima.of(listener.status_name("audio_subscriber"), INPUT_QUEUE_S),
                "subscriber rejections": counters.rejections(),
                "partial results": len(records) - len(finals),
            },
        )


def _progress_note(listener: Listener) -> str:
    status = listener.latest(listener.status_name("recognizer"))
    values = status.values if status is not None else {}
    return (f"recognizer queue {values.get(QUEUE_DEPTH_S, '?')} s, "
            f"dropped {values.get(DROPPED_AUDIO_S, '?')} s, {len(listener.events)} results")


def _accounting(soak_input: SoakInput, spans: list[FinalSpan], dropped_s: float) -> Accounting:
    accounting = account(soak_input.clips, spans, dropped=[])
    if dropped_s > 0 and accounting.missing:
        # Where the nodes dropped is not reported; the clips that got no final are put down to the drops.
        accounting = replace(accounting, dropped=accounting.dropped + len(accounting.missing), missing=())
    return accounting
