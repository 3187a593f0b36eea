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
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.resources import resident_mb
from hailo_whisper_ros.evaluation.ros_session import AudioDriver, Listener, NodeStatus, ros_context, s16le
from hailo_whisper_ros.evaluation.soak import Failures, FinalSpan, SoakInput, SoakReport, account, result_delays
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
        listener.wait_for(lambda: listener.latest(subscriber, asked) is not None, 3.0)
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

    def node_rss_mb() -> float | None:
        try:
            return sum(resident_mb(pid) for pid in processes) if processes else None
        except OSError:  # the node exited: reported as n/a here, as an exception below
            return None

    failures = Failures()
    with ros_context() as context:
        maxima = QueueMaxima()
        listener = Listener(context, namespace, node_name="hailo_whisper_soak", on_status=maxima.update,
                            keep_diagnostics=False)
        driver = AudioDriver(context, namespace, node_name="hailo_whisper_soak_audio")
        try:
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
            before = idle_values(listener)
            offset = int(round(float(before["audio_subscriber"][AUDIO_RECEIVED_S]) * SAMPLE_RATE))
            rss = {"start": node_rss_mb(), "middle": None, "end": None}

            chunk_samples = chunk_ms * SAMPLE_RATE // 1000
            published_until: list[int] = []  # input position after each message ...
            published_at: list[float] = []  # ... and when it was published (time.monotonic(), as result arrivals)
            started = time.perf_counter()
            next_progress = started + progress_interval_s
            for start, audio in soak_input.chunks(chunk_samples):
                due = started + (start + len(audio)) / SAMPLE_RATE / speed
                time.sleep(max(due - time.perf_counter(), 0.0))
                try:
                    published_at.append(time.monotonic())
                    published_until.append(start + len(audio))
                    driver.send(s16le(audio))
                except Exception as error:  # a soak reports exceptions instead of stopping at the first
                    failures.record("publisher", error)
                if rss["middle"] is None and start + len(audio) >= soak_input.total_samples // 2:
                    rss["middle"] = node_rss_mb()
                if time.perf_counter() >= next_progress:
                    next_progress += progress_interval_s
                    status = listener.latest(listener.status_name("recognizer"))
                    values = status.values if status is not None else {}
                    progress((start + len(audio)) / SAMPLE_RATE,
                             f"recognizer queue {values.get(QUEUE_DEPTH_S, '?')} s, "
                             f"dropped {values.get(DROPPED_AUDIO_S, '?')} s, {len(listener.events)} results")
            audio_ended = time.monotonic()
            if not listener.wait_until_caught_up(audio_ended, SETTLE_S, SETTLE_TIMEOUT_S):
                failures.record("nodes", TimeoutError(f"results still coming or the nodes silent {SETTLE_TIMEOUT_S} s "
                                                      "after the last audio"))
            wall_s = time.perf_counter() - started
            rss["end"] = node_rss_mb()
            latest = {node: listener.latest(listener.status_name(node)) for node in NODES}
            after = {node: latest[node].values if latest[node] is not None else before[node] for node in NODES}
        finally:
            driver.close()
            listener.close()
    for problem in listener.contract_violations:
        failures.record(TRANSCRIPT_EVENTS, ValueError(problem))

    def delta(node: str, key: str) -> float:
        return float(after[node].get(key, 0)) - float(before[node].get(key, 0))

    def span(arrival: float, record) -> FinalSpan:
        start, end = (int(round(seconds * SAMPLE_RATE)) - offset for seconds in (record.start_s, record.end_s))
        message = bisect.bisect_left(published_until, end)  # the message that brought the final's last sample
        delay = arrival - published_at[message] if message < len(published_at) else None
        return FinalSpan(start, end, record.text, delay)

    records = list(zip(listener.event_arrivals, listener.events))
    finals = [record for _, record in records if record.final]
    spans = [span(arrival, record) for arrival, record in records if record.final]
    accounting = account(soak_input.clips, spans, dropped=[])
    dropped_s = delta("audio_subscriber", DROPPED_AUDIO_S) + delta("recognizer", DROPPED_AUDIO_S)
    if dropped_s > 0 and accounting.missing:
        # Where the nodes dropped is not reported; the clips that got no final are put down to the drops.
        accounting = replace(accounting, dropped=accounting.dropped + len(accounting.missing), missing=())
    rejections = {
        key: delta("audio_subscriber", key) for key in after["audio_subscriber"] if key.startswith(REJECTED_PREFIX)
    }
    latencies = [record.latency_ms for record in finals]
    return SoakReport(
        mode=f"over DDS at {speed:g}x real time",
        audio_in_s=soak_input.duration_s,
        audio_processed_s=delta("audio_subscriber", AUDIO_RECEIVED_S),
        audio_dropped_s=dropped_s,
        speech_in_finals_s=sum(s.end_sample - s.start_sample for s in spans if s.text) / SAMPLE_RATE,
        max_queue_depth_s=maxima.of(listener.status_name("recognizer"), QUEUE_DEPTH_S),
        queue_limit_s=None,
        accounting=accounting,
        rss_mb=rss,
        exceptions=tuple(failures.kept),
        exception_count=failures.count,
        inference_errors=int(delta("recognizer", INFERENCE_ERRORS)),
        final_latency_p50_ms=float(np.percentile(latencies, 50)) if latencies else None,
        final_latency_p95_ms=float(np.percentile(latencies, 95)) if latencies else None,
        result_delay_s=result_delays(spans),
        wall_s=wall_s,
        extra={
            "memory watched of process": watched,
            "soak process memory end (MB)": f"{resident_mb():.1f}",
            "subscriber max input queue (s)": maxima.of(listener.status_name("audio_subscriber"), INPUT_QUEUE_S),
            "subscriber rejections": {k: v for k, v in rejections.items() if v} or "none",
            "partial results": sum(not record.final for _, record in records),
        },
    )
