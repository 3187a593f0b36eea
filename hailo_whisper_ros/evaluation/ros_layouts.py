"""The live ROS path as a listener lives it, in the two layouts the launch file can start: the composed
speech_recognition process, and the audio_subscriber, recognizer and transcript_publisher as three processes.

A long recording (clips joined by pauses, evaluation/long_recording.py) is written as 48 kHz stereo S16LE, the way
a microphone driver sends it, and a wav_source plays it at 1x real time with the default parameters (partials
every second). This process subscribes to the audio too, so that it knows when each clip's last speech sample was
published, and to `transcript`, so that it knows when the clip's final arrived: the difference is what a person
waits. Beside it the nodes' own figures: the recognizer's real-time factor and latency on /diagnostics, each final's
end-of-utterance -> final latency (Transcript.latency_ms), and each process's peak resident memory.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.evaluation.long_recording import LongRecording
from hailo_whisper_ros.evaluation.ros_session import BIN_DIR, Listener, NodeProcess, play
from hailo_whisper_ros.evaluation.scoring import word_errors

# Each layout: the executables it starts, one process each.
LAYOUTS = {
    "composed": ("speech_recognition",),
    "three processes": ("audio_subscriber", "recognizer", "transcript_publisher"),
}
DRIVER_RATE = 48000  # what a USB microphone driver sends: the audio subscriber resamples and downmixes it
DRIVER_CHANNELS = 2
READY_TIMEOUT_S = 180.0  # the model loads and warms up, on a shared machine
SETTLE_S = 3.0  # caught up once the queues are empty and no result came for this long
GAP_S = 1.0  # silence after the recording: the VAD's pause that ends its last utterance
SHORT_UTTERANCE_S = 5.0  # the node latency target counts utterances up to this long


def missing_executables() -> list[str]:
    """The executables of either layout, or wav_source, not installed beside this interpreter."""
    names = {name for layout in LAYOUTS.values() for name in layout} | {"wav_source"}
    return sorted(str(BIN_DIR / name) for name in names if not (BIN_DIR / name).is_file())


@dataclass(frozen=True)
class LayoutFigures:
    layout: str
    real_time_factor: float  # the recognizer's inference time per second of audio processed (its /diagnostics)
    audio_transcribed_s: float  # what the recognizer ran on, partials included
    node_latency_p50_ms: float | None  # end of utterance (the VAD's decision) -> final, utterances <= 5 s
    node_latency_p95_ms: float | None
    recognizer_latency_p50_ms: float  # the recognizer's /diagnostics: speech end on the audio's clock -> final
    recognizer_latency_p95_ms: float
    partial_freshness_p95_ms: float | None  # the recognizer's /diagnostics: a partial's last sample arrived -> it
    waits_p50_ms: float | None  # last speech sample published -> final received on `transcript`, every clip
    waits_p95_ms: float | None
    clips_waited_for: int  # clips whose final was found
    wer: float
    finals: int
    partials: int
    peak_rss_mb: dict[str, float]  # per process

    @property
    def peak_rss_total_mb(self) -> float:
        return sum(self.peak_rss_mb.values())

    def as_json(self) -> dict:
        return {**asdict(self), "peak_rss_total_mb": self.peak_rss_total_mb}


class Arrivals:
    """When each audio message and each final on `transcript` reached this process."""

    def __init__(self, listener: Listener, bytes_per_sample: int):
        from audio_common_msgs.msg import AudioData
        from std_msgs.msg import String

        from hailo_whisper_ros.ros.topics import AUDIO, RESULTS_QOS, TRANSCRIPT, audio_qos

        self.lock = threading.Lock()
        self.bytes_per_sample = bytes_per_sample
        self.audio_ends: list[tuple[int, float]] = []  # (driver samples published so far, arrival)
        self.samples = 0
        self.finals: list[tuple[float, str]] = []  # (arrival, text)
        self.subscriptions = [
            listener.node.create_subscription(AudioData, AUDIO, self._on_audio, audio_qos("reliable")),
            listener.node.create_subscription(String, TRANSCRIPT, self._on_final, RESULTS_QOS),
        ]

    def _on_audio(self, message) -> None:
        arrival = time.monotonic()
        with self.lock:
            self.samples += len(message.data) // self.bytes_per_sample
            self.audio_ends.append((self.samples, arrival))

    def _on_final(self, message) -> None:
        with self.lock:
            self.finals.append((time.monotonic(), message.data))

    def published_at(self, driver_sample: int) -> float | None:
        """Arrival of the message that held ``driver_sample``."""
        with self.lock:
            for end, arrival in self.audio_ends:
                if end > driver_sample:
                    return arrival
        return None


def measure_layout(layout: str, recording: LongRecording, wav: Path, context, model_dir: Path, threads: int,
                   echo: bool = False, profile=None, parameters: tuple[str, ...] = ()) -> LayoutFigures:
    """Starts ``layout``'s processes with the default parameters (but for ``parameters``, "name:=value" of the
    recognizer), plays ``wav`` (``recording`` as written by write_driver_wav) to them at 1x once the recognizer is
    ready, and measures until everything is transcribed. ``profile(process)``, if given, is called with the
    recognizer's process once audio flows; it returns a callable that ends the profile."""
    listener = Listener(context, node_name="hailo_whisper_layouts")
    arrivals = Arrivals(listener, 2 * DRIVER_CHANNELS)
    processes = _start_processes(layout, model_dir, threads, echo, parameters)
    try:
        peak_rss_mb, values = _play(layout, recording, wav, listener, processes, echo, profile)
    finally:
        for process in processes:
            process.stop()
        listener.close()
    with listener.lock:
        events = list(listener.events)
    return layout_figures(layout, recording, events, arrivals, values, peak_rss_mb)


def _start_processes(layout: str, model_dir: Path, threads: int, echo: bool, parameters: tuple[str, ...],
                     ) -> list[NodeProcess]:
    """The layout's processes; the one holding the recognizer is given the model, its threads and ``parameters``."""
    model_args = ("-p", f"model.dir:={model_dir}", "-p", f"model.threads:={threads}")
    model_args += tuple(arg for parameter in parameters for arg in ("-p", parameter))
    return [
        NodeProcess(name, "--log-level", "warn",
                    *(model_args if name in ("recognizer", "speech_recognition") else ()), echo=echo)
        for name in LAYOUTS[layout]
    ]


def _play(layout: str, recording: LongRecording, wav: Path, listener: Listener, processes: list[NodeProcess],
          echo: bool, profile) -> tuple[dict[str, float], dict[str, str]]:
    """Plays ``wav`` once the nodes are ready and waits until they caught up; returns each process's peak resident
    memory and the recognizer's status values sent after the last final."""
    from hailo_whisper_ros.core.resources import peak_resident_mb

    wait_until_ready(layout, listener)
    stop_profile = None
    if profile is not None:
        stop_profile = profile(processes[1] if len(processes) > 1 else processes[0])
    # Audio subscriber and this process: both must hear the first chunk.
    played = play([wav], 1.0, GAP_S, 2 * recording.duration_s + 60, "--log-level", "warn",
                  "-p", "wait_for_subscribers:=2", echo=echo)
    if played != 0:
        raise HailoWhisperError(f"wav_source exited with {played}")
    caught_up = listener.wait_until_caught_up(time.monotonic(), SETTLE_S, 120.0)
    if stop_profile is not None:
        stop_profile()
    for process in processes:
        if not process.running():
            raise HailoWhisperError(f"{process.name} exited with {process.process.returncode}:\n{process.log}")
    if not caught_up:
        raise HailoWhisperError(f"{layout}: still transcribing 120 s after the audio")
    peak = {process.name: peak_resident_mb(process.pid) for process in processes}
    recognizer_status = listener.status_name("recognizer")
    since = time.monotonic()  # a status sent after the last final: its counters hold every utterance
    listener.wait_for(lambda: listener.latest(recognizer_status, since) is not None, 10.0)
    return peak, listener.latest(recognizer_status).values


def wait_until_ready(layout: str, listener: Listener) -> None:
    """Until the recognizer reports its encoder backend (its model is loaded) and the other two nodes report."""
    import hailo_whisper_ros.ros.diagnostics as diagnostics

    recognizer_status = listener.status_name("recognizer")

    def ready() -> bool:
        status = listener.latest(recognizer_status)
        return status is not None and diagnostics.ENCODER_BACKEND in status.values

    if not listener.wait_for(lambda: ready() and listener.latest(listener.status_name("audio_subscriber"))
                             and listener.latest(listener.status_name("transcript_publisher")),
                             READY_TIMEOUT_S):
        raise HailoWhisperError(f"{layout}: the nodes did not report ready within {READY_TIMEOUT_S:g} s")


def layout_figures(layout: str, recording: LongRecording, events, arrivals: Arrivals, values: dict[str, str],
             peak_rss_mb: dict[str, float]) -> LayoutFigures:
    import hailo_whisper_ros.ros.diagnostics as diagnostics

    finals = [event for event in events if event.final]
    short = [e.latency_ms for e in finals if e.end_s - e.start_s <= SHORT_UTTERANCE_S]
    waits = _waits(recording, finals, arrivals)
    hypothesis = " ".join(event.text for event in finals)
    reference = " ".join(clip.reference for clip in recording.clips)
    return LayoutFigures(
        layout=layout,
        real_time_factor=float(values[diagnostics.REAL_TIME_FACTOR]),
        audio_transcribed_s=float(values[diagnostics.AUDIO_TRANSCRIBED_S]),
        node_latency_p50_ms=_percentile(short, 50),
        node_latency_p95_ms=_percentile(short, 95),
        recognizer_latency_p50_ms=float(values[diagnostics.LATENCY_P50_MS]),
        recognizer_latency_p95_ms=float(values[diagnostics.LATENCY_P95_MS]),
        # -1 on /diagnostics: no partial yet
        partial_freshness_p95_ms=max(float(values[diagnostics.PARTIAL_FRESHNESS_P95_MS]), 0.0) or None,
        waits_p50_ms=_percentile(waits, 50),
        waits_p95_ms=_percentile(waits, 95),
        clips_waited_for=len(waits),
        wer=word_errors([reference], [hypothesis]).wer,
        finals=len(finals),
        partials=len(events) - len(finals),
        peak_rss_mb=peak_rss_mb,
    )


def _waits(recording: LongRecording, finals, arrivals: Arrivals) -> list[float]:
    """Per clip, ms from the publication of its last speech sample to the arrival on `transcript` of the final of
    the utterance that ended nearest it (the VAD may cut a clip in two: the one with its end is what a person
    waits for)."""
    with arrivals.lock:
        received = list(arrivals.finals)
    spoken = [event for event in finals if event.text]  # `transcript` carries the finals with text, in order
    if [text for _, text in received] != [event.text for event in spoken]:
        raise HailoWhisperError(f"the finals on `transcript` ({len(received)}) are not those on transcript/events "
                                f"({len(spoken)})")
    waits = []
    for clip in recording.clips:
        candidates = [(abs(event.end_s - clip.speech_end_s), index) for index, event in enumerate(spoken)
                      if event.start_s < clip.speech_end_s]
        published = arrivals.published_at(clip.speech_end * DRIVER_RATE // SAMPLE_RATE)
        if not candidates or published is None:
            continue
        _, index = min(candidates)
        waits.append((received[index][0] - published) * 1e3)
    return waits


def _percentile(values, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def write_driver_wav(recording: LongRecording, path: Path) -> Path:
    """The recording as a driver sends it: 48 kHz stereo, 16-bit."""
    import soundfile

    from hailo_whisper_ros.core.audio import resample

    audio = resample(recording.audio, SAMPLE_RATE, DRIVER_RATE)
    soundfile.write(path, np.repeat(audio[:, None], DRIVER_CHANNELS, axis=1), DRIVER_RATE, subtype="PCM_16")
    return path


def measure_layouts(recording: LongRecording, model_dir: Path, threads: int, layouts=tuple(LAYOUTS),
                    echo: bool = False, profile=None, parameters: tuple[str, ...] = ()) -> list[LayoutFigures]:
    """Each of ``layouts`` in turn on the same recording, in this process's ROS domain on this machine only;
    ``parameters`` as measure_layout's."""
    from hailo_whisper_ros.evaluation.ros_session import local_context

    with tempfile.TemporaryDirectory() as scratch, local_context() as context:
        wav = write_driver_wav(recording, Path(scratch) / "recording.wav")
        results = []
        for layout in layouts:
            print(f"live ROS path, {layout}: {recording.duration_s:.0f} s at 1x (ROS_DOMAIN_ID="
                  f"{os.environ['ROS_DOMAIN_ID']}, load average {os.getloadavg()[0]:.2f})", flush=True)
            results.append(measure_layout(layout, recording, wav, context, model_dir, threads, echo, profile,
                                          parameters))
        return results
