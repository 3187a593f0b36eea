"""`hailo-whisper soak`: minutes or hours of real speech and silence through the streaming recognizer (in this
process, or over DDS through running ROS nodes), then the figures: audio in, processed and dropped, the deepest
queue, every utterance of the input accounted for, resident memory at start, middle and end, exceptions.

Exit status 0 when the soak passed (no exception, no inference error, no utterance missing), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

from hailo_whisper_ros.core import HailoWhisperError
from hailo_whisper_ros.core.datasets import SPEECH_DEV

HELP = "stream real speech and silence for M minutes through the recognizer and account for every utterance"

ENCODERS = ("dynamic", "10s", "30s")
ROS_NODE_EXECUTABLE = "speech_recognition"
ROS_DISCOVERY_TIMEOUT_S = 30.0
ROS_SETTLE_S = 3.0  # after the last audio: no new result for this long, and the nodes' queues empty
ROS_SETTLE_TIMEOUT_S = 120.0


def positive_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=positive_float, default=1.0, metavar="M",
                        help="audio to stream, in minutes of audio time (default: 1)")
    parser.add_argument("--speed", type=positive_float, metavar="S",
                        help="feed at S times real time, dropping what recognition cannot take in time (default: as "
                        "fast as recognition takes it; with --ros: 1, a microphone's pace)")
    parser.add_argument("--chunk-ms", type=int, default=100, metavar="N", help="audio per feed/message (default: 100)")
    parser.add_argument("--max-queue-s", type=float, metavar="S",
                        help="queue limit of the in-process transcriber (default: StreamingOptions' 30)")
    parser.add_argument("--partial-interval-ms", type=int, metavar="N",
                        help="partials every N ms of new speech, 0 = none (default: StreamingOptions' 1000)")
    parser.add_argument("--dataset", type=Path, default=SPEECH_DEV, metavar="DIR",
                        help=f"speech clips with references, cycled (default: {SPEECH_DEV})")
    parser.add_argument("--model-dir", type=Path, metavar="DIR",
                        help="exported model directory (default: the default model, tiny.en)")
    parser.add_argument("--encoder", choices=ENCODERS, default="dynamic", help="CPU encoder (default: dynamic)")
    parser.add_argument("--progress-s", type=positive_float, default=30.0, metavar="S",
                        help="print a progress line every S seconds of wall time (default: 30)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures to this JSON file")
    ros = parser.add_argument_group("ROS (a running speech_recognition, or its three nodes)")
    ros.add_argument("--ros", action="store_true",
                     help="publish AudioData on `audio` and read `transcript/events` and /diagnostics, instead of "
                     "transcribing in this process")
    ros.add_argument("--namespace", default="", metavar="NS", help="namespace of the nodes (default: none)")
    ros.add_argument("--pid", type=int, action="append", metavar="PID",
                     help="process(es) whose resident memory to watch (default: the one running "
                     f"{ROS_NODE_EXECUTABLE}, if exactly one does)")


def run(args: argparse.Namespace) -> int:
    from hailo_whisper_ros.core.evaluation import load_dataset
    from hailo_whisper_ros.core.soak import SoakInput, format_report

    if not 5 <= args.chunk_ms <= 10000:
        raise HailoWhisperError(f"--chunk-ms must be in [5, 10000], not {args.chunk_ms}")
    if args.ros and (args.max_queue_s is not None or args.partial_interval_ms is not None):
        raise HailoWhisperError("with --ros the queue and partials are the nodes' parameters (queue.max_audio_s, "
                                "streaming.partial_interval_ms)")
    soak_input = SoakInput(load_dataset(args.dataset), args.minutes)
    print(f"soak input: {soak_input.duration_s:.1f} s of audio, {len(soak_input.clips)} utterances "
          f"({len(soak_input.recording.clips)} clips of {args.dataset}, cycled)", flush=True)

    def progress(fed_s: float, figures: str) -> None:
        print(f"  ... {fed_s:.0f} of {soak_input.duration_s:.0f} s fed; {figures}", flush=True)

    report = run_ros(args, soak_input, progress) if args.ros else run_in_process(args, soak_input, progress)
    print(format_report(report), flush=True)
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2, default=str) + "\n")
    return 0 if report.passed else 1


def run_in_process(args: argparse.Namespace, soak_input, progress):
    from hailo_whisper_ros.core.model_store import resolve_model_dir
    from hailo_whisper_ros.core.recognizer import Recognizer, RecognizerConfig
    from hailo_whisper_ros.core.soak import run_soak
    from hailo_whisper_ros.core.streaming import StreamingOptions

    options = {}
    if args.max_queue_s is not None:
        options["max_queue_s"] = args.max_queue_s
    if args.partial_interval_ms is not None:
        options["partial_interval_ms"] = args.partial_interval_ms
    streaming = StreamingOptions(**options)
    recognizer = Recognizer(RecognizerConfig(resolve_model_dir(args.model_dir), encoder=args.encoder))

    def show(fed_s: float, stats) -> None:
        progress(fed_s, f"queue {stats.queue_depth_s:.1f} s, dropped {stats.audio_dropped_s:.1f} s, "
                 f"{stats.utterances} finals, {stats.errors} errors")

    return run_soak(recognizer, soak_input, args.speed, args.chunk_ms, streaming, show, args.progress_s)


def node_processes(pids: list[int] | None) -> tuple[list, str]:
    """The processes whose memory the ROS soak watches (the given ones, else the one running the composed node),
    and what they are, for the report."""
    import psutil

    if pids:
        return [psutil.Process(pid) for pid in pids], ", ".join(map(str, pids))
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if any(Path(part).name == ROS_NODE_EXECUTABLE for part in command[:2]):
            found.append(process)
    if len(found) != 1:
        return [], f"{len(found)} {ROS_NODE_EXECUTABLE} processes found: pass --pid"
    return found, f"{found[0].pid} ({ROS_NODE_EXECUTABLE})"


class RosSoakClient:
    """The soak's side of DDS: an audio driver publishing the input, and a listener for results and diagnostics."""

    def __init__(self, namespace: str):
        import rclpy
        from audio_common_msgs.msg import AudioData, AudioInfo
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from std_msgs.msg import String

        self.AudioData = AudioData
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("hailo_whisper_soak", namespace=namespace or None, context=self.context)
        prefix = self.node.get_namespace().strip("/")
        self.status_names = {name: f"{prefix}/{name}" if prefix else name for name in ("audio_subscriber", "recognizer")}
        reliable = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.info_pub = self.node.create_publisher(AudioInfo, "audio_info", latched)
        self.audio_pub = self.node.create_publisher(AudioData, "audio", reliable)
        self.lock = threading.Lock()
        self.events: list[tuple[float, dict]] = []  # (arrival, time.perf_counter(); the event)
        self.last_event_time = time.monotonic()
        self.statuses: dict[str, tuple[float, dict]] = {}  # node -> (arrival, values)
        self.max_values: dict[tuple[str, str], float] = {}
        self.node.create_subscription(String, "transcript/events", self._on_event, reliable)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self.spinner.start()
        self.info = AudioInfo(channels=1, sample_rate=16000, sample_format="S16LE", bitrate=256000, coding_format="WAVE")

    def _on_event(self, message) -> None:
        event = json.loads(message.data)
        with self.lock:
            self.events.append((time.perf_counter(), event))
            self.last_event_time = time.monotonic()

    def _on_diagnostics(self, message) -> None:
        with self.lock:
            for status in message.status:
                for node, name in self.status_names.items():
                    if status.name == name:
                        values = {kv.key: kv.value for kv in status.values}
                        self.statuses[node] = (time.monotonic(), values)
                        for key in ("input queue (s)", "queue depth (s)"):
                            if key in values:
                                self.max_values[node, key] = max(self.max_values.get((node, key), 0.0),
                                                                 float(values[key]))

    def status(self, node: str, fresher_than: float = 0.0) -> dict | None:
        with self.lock:
            arrival, values = self.statuses.get(node, (0.0, None))
        return values if arrival > fresher_than else None

    def wait_for(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def idle_figures(self) -> dict[str, dict]:
        """Both nodes' diagnostics once the audio subscriber reports the same input twice with an empty queue."""
        previous = None
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            asked = time.monotonic()
            self.wait_for(lambda: self.status("audio_subscriber", asked) is not None, 3.0)
            current = self.status("audio_subscriber", asked)
            if current is not None and previous is not None and float(current["input queue (s)"]) == 0 and (
                current["audio received (s)"] == previous["audio received (s)"]
            ):
                return {"audio_subscriber": current, "recognizer": self.status("recognizer")}
            previous = current
        raise HailoWhisperError("the audio subscriber is receiving other audio: stop that source for the soak")

    def publish(self, samples) -> None:
        import numpy as np

        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        self.audio_pub.publish(self.AudioData(data=pcm))

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def run_ros(args: argparse.Namespace, soak_input, progress):
    """The input over DDS to running nodes. Results are placed in the input by their stream positions, which the
    audio subscriber counts from its start: the soak's audio begins where its 'audio received (s)' stood. The nodes'
    drops cannot be located, so with drops reported a clip without a final counts as dropped."""
    import bisect

    import numpy as np

    from hailo_whisper_ros.core.audio import SAMPLE_RATE
    from hailo_whisper_ros.core.recognizer import rss_mb
    from hailo_whisper_ros.core.soak import Failures, FinalSpan, SoakReport, account, result_delays

    speed = args.speed or 1.0
    processes, watched = node_processes(args.pid)

    def node_rss_mb() -> float | None:
        try:
            return sum(process.memory_info().rss for process in processes) / 2**20 if processes else None
        except Exception:  # the node exited: reported as n/a here, as an exception below
            return None

    client = RosSoakClient(args.namespace)
    failures = Failures()
    try:
        if not client.wait_for(
            lambda: client.audio_pub.get_subscription_count() > 0
            and all(client.status(node) is not None for node in ("audio_subscriber", "recognizer")),
            ROS_DISCOVERY_TIMEOUT_S,
        ):
            raise HailoWhisperError(
                f"no audio subscriber and recognizer answer on {client.audio_pub.topic_name} and /diagnostics: start "
                f"them first ({ROS_NODE_EXECUTABLE} --ros-args --params-file config/cpu.yaml)"
            )
        client.info_pub.publish(client.info)
        time.sleep(0.5)  # the format first: it travels on its own topic
        before = client.idle_figures()
        offset = int(round(float(before["audio_subscriber"]["audio received (s)"]) * SAMPLE_RATE))
        rss = {"start": node_rss_mb(), "middle": None, "end": None}

        chunk_samples = args.chunk_ms * SAMPLE_RATE // 1000
        published_until: list[int] = []  # input position after each message ...
        published_at: list[float] = []  # ... and when it was published
        started = time.perf_counter()
        next_progress = started + args.progress_s
        for start, audio in soak_input.chunks(chunk_samples):
            due = started + (start + len(audio)) / SAMPLE_RATE / speed
            time.sleep(max(due - time.perf_counter(), 0.0))
            try:
                published_at.append(time.perf_counter())
                published_until.append(start + len(audio))
                client.publish(audio)
            except Exception as error:
                failures.record("publisher", error)
            if rss["middle"] is None and start + len(audio) >= soak_input.total_samples // 2:
                rss["middle"] = node_rss_mb()
            if time.perf_counter() >= next_progress:
                next_progress += args.progress_s
                values = client.status("recognizer") or {}
                progress((start + len(audio)) / SAMPLE_RATE,
                         f"recognizer queue {values.get('queue depth (s)', '?')} s, "
                         f"dropped {values.get('dropped audio (s)', '?')} s, {len(client.events)} results")
        audio_ended = time.monotonic()

        def settled() -> bool:
            subscriber = client.status("audio_subscriber", audio_ended)
            recognizer = client.status("recognizer", audio_ended)
            return (
                subscriber is not None and recognizer is not None
                and float(subscriber["input queue (s)"]) == 0 and float(recognizer["queue depth (s)"]) == 0
                and time.monotonic() - max(client.last_event_time, audio_ended) >= ROS_SETTLE_S
            )

        if not client.wait_for(settled, ROS_SETTLE_TIMEOUT_S):
            failures.record("nodes", TimeoutError(f"results still coming or the nodes silent {ROS_SETTLE_TIMEOUT_S} s "
                                                  "after the last audio"))
        wall_s = time.perf_counter() - started
        rss["end"] = node_rss_mb()
        after = {node: client.status(node) or before[node] for node in before}
    finally:
        client.close()

    def delta(node: str, key: str) -> float:
        return float(after[node].get(key, 0)) - float(before[node].get(key, 0))

    def span(arrival: float, event: dict) -> FinalSpan:
        start, end = (int(round(event[key] * SAMPLE_RATE)) - offset for key in ("start_s", "end_s"))
        message = bisect.bisect_left(published_until, end)  # the message that brought the final's last sample
        delay = arrival - published_at[message] if message < len(published_at) else None
        return FinalSpan(start, end, event["text"], delay)

    with client.lock:
        events = [event for _, event in client.events]
        spans = [span(arrival, event) for arrival, event in client.events if event["kind"] == "final"]
    finals = [event for event in events if event["kind"] == "final"]
    accounting = account(soak_input.clips, spans, dropped=[])
    dropped_s = delta("audio_subscriber", "dropped audio (s)") + delta("recognizer", "dropped audio (s)")
    if dropped_s > 0 and accounting.missing:
        # Where the nodes dropped is not reported; the clips that got no final are put down to the drops.
        accounting = replace(accounting, dropped=accounting.dropped + len(accounting.missing), missing=())
    rejections = {
        key: delta("audio_subscriber", key) for key in after["audio_subscriber"] if key.startswith("rejected ")
    }
    latencies = [e["latency_ms"] for e in finals]
    return SoakReport(
        mode=f"over DDS at {speed:g}x real time",
        audio_in_s=soak_input.duration_s,
        audio_processed_s=delta("audio_subscriber", "audio received (s)"),
        audio_dropped_s=dropped_s,
        speech_in_finals_s=sum(s.end_sample - s.start_sample for s in spans if s.text) / SAMPLE_RATE,
        max_queue_depth_s=client.max_values.get(("recognizer", "queue depth (s)"), 0.0),
        queue_limit_s=None,
        accounting=accounting,
        rss_mb=rss,
        exceptions=tuple(failures.kept),
        exception_count=failures.count,
        inference_errors=int(delta("recognizer", "inference errors")),
        final_latency_p50_ms=float(np.percentile(latencies, 50)) if latencies else None,
        final_latency_p95_ms=float(np.percentile(latencies, 95)) if latencies else None,
        result_delay_s=result_delays(spans),
        wall_s=wall_s,
        extra={
            "memory watched of process": watched,
            "soak process memory end (MB)": f"{rss_mb():.1f}",
            "subscriber max input queue (s)": client.max_values.get(("audio_subscriber", "input queue (s)"), 0.0),
            "subscriber rejections": {k: v for k, v in rejections.items() if v} or "none",
            "partial results": sum(event["kind"] == "partial" for event in events),
        },
    )
