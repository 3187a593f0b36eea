"""Live capture from a sound device through PortAudio (sounddevice), for the `microphone` node.

The PortAudio callback only copies each block with its arrival time and status flags into a bounded queue (the
oldest dropped and counted when it is full); the node's worker takes the blocks out and publishes them. A thread of
the capture's own (the supervisor) opens the stream, notices a device that went away (PortAudio ends the stream, as
it does when a USB microphone is unplugged or the audio server stops, or no audio came for ``stall_timeout_s``),
and opens it again with exponential backoff until the device is back, re-reading PortAudio's device list each
time (a replugged USB microphone comes back under another index). Nothing here raises once capture has started.

What can go missing is counted: PortAudio's input overflows, blocks dropped from a full queue, the time without a
device, and gaps in the device's timeline: audio lost before it reached PortAudio (the audio server drops what a
stalled client does not read, and the ALSA pulse plugin reports no overflow for it), seen as a step in how far the
audio received lags the clock.

sounddevice is imported where it is used: importing the core must not need PortAudio.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hailo_whisper_ros.core.audio import PCM_FORMATS, pcm_dtype
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.options import Options, option

BACKOFF_S = (0.5, 8.0)  # first and longest wait between attempts to open a lost device
SUPERVISOR_PERIOD_S = 0.1  # how often the supervisor looks at the stream
NATIVE_CHANNELS_CAP = 2  # channels: 0 takes the device's own up to this (ALSA's pulse and default devices offer 32)
FIRST_BLOCK_TIMEOUT_S = 10.0  # a stream just opened may take this long to deliver (ALSA's pulse plugin: ~2 s)
GAP_WINDOW_S = 1.0  # the timeline's lag is compared between consecutive windows of this length
GAP_THRESHOLD_S = 0.1  # a step in the lag larger than this is a gap (jitter is a few blocks; clock drift ~1e-4)
FALLING_S = 0.005  # a block that lowers the lag by more than this is catching up

Report = Callable[[str, str, str], None]  # (severity: info|warn|error, kind, text)


@dataclass(frozen=True)
class MicrophoneOptions(Options):
    device: str = option(
        "", "Input device: its index, or a part of its name as the node's error message and "
        "`python3 -m sounddevice` list them ('' is the system default input).", read_only=True)
    sample_rate: int = option(
        0, "Capture rate; 0 is the device's default rate.", unit="Hz", range=(8000, 192000), off=0, read_only=True)
    channels: int = option(
        0, f"Channels captured; 0 is the device's own, at most {NATIVE_CHANNELS_CAP}.", range=(1, 32), off=0,
        read_only=True)
    chunk_ms: int = option(20, "Audio per message.", unit="ms", range=(5, 500), read_only=True)
    sample_format: str = option("S16LE", "PCM format on the wire.", choices=PCM_FORMATS, read_only=True)
    max_queue_s: float = option(
        2.0, "Captured audio held for publishing; beyond it the oldest is dropped and counted.", unit="s",
        range=(0.1, 60.0))
    stall_timeout_s: float = option(
        2.0, "No audio for this long from a running stream: the device counts as lost and is opened again.",
        unit="s", range=(0.2, 60.0))


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    channels: int  # the most input channels it offers
    sample_rate: int  # its default rate

    def __str__(self) -> str:
        return f"{self.index} '{self.name}' ({self.channels} in, {self.sample_rate} Hz)"


def input_devices() -> list[InputDevice]:
    """PortAudio's input devices, as it found them when it was (re)initialised."""
    import sounddevice

    return [InputDevice(d["index"], d["name"], d["max_input_channels"], int(d["default_samplerate"]))
            for d in sounddevice.query_devices() if d["max_input_channels"] > 0]


def default_input_index() -> int | None:
    import sounddevice

    try:
        return int(sounddevice.query_devices(kind="input")["index"])
    except sounddevice.PortAudioError:
        return None


def refresh_devices() -> None:
    """Make PortAudio enumerate the devices again, as sounddevice's maintainer advises (python-sounddevice#125:
    PortAudio lists them once, at initialisation); only with no stream open."""
    import sounddevice

    try:
        if sounddevice._initialized:  # not after an _initialize that failed
            sounddevice._terminate()
        sounddevice._initialize()
    except sounddevice.PortAudioError as error:
        raise HailoWhisperError(f"PortAudio did not start again: {error}") from error


def resolve_device(wanted: str, devices: list[InputDevice], default_index: int | None) -> InputDevice:
    """The device ``wanted`` names: '' the default input, digits an index, else a case-insensitive part of a name
    (an exact name wins over partial matches). HailoWhisperError listing the devices there are otherwise."""
    listed = "; ".join(map(str, devices)) or "none (no sound card, or the audio server is not running)"
    if wanted == "":
        matches = [d for d in devices if d.index == default_index]
        what = "no default input device"
    elif wanted.strip().isdigit():
        matches = [d for d in devices if d.index == int(wanted)]
        what = f"no input device with index {wanted}"
    else:
        matches = [d for d in devices if d.name.lower() == wanted.lower()] or [
            d for d in devices if wanted.lower() in d.name.lower()]
        what = f"no input device matching {wanted!r}"
        if len(matches) > 1:
            names = "; ".join(map(str, matches))
            raise HailoWhisperError(f"{len(matches)} input devices match {wanted!r}: {names}; name one by index")
    if not matches:
        raise HailoWhisperError(f"{what}; the input devices are: {listed}")
    return matches[0]


@dataclass(frozen=True)
class CaptureFormat:
    device: str
    sample_rate: int
    channels: int
    sample_format: str

    @property
    def bytes_per_second(self) -> int:
        return self.sample_rate * self.channels * pcm_dtype(self.sample_format).itemsize


def capture_format(options: MicrophoneOptions, device: InputDevice) -> CaptureFormat:
    channels = options.channels or min(device.channels, NATIVE_CHANNELS_CAP)
    return CaptureFormat(device.name, options.sample_rate or device.sample_rate, channels, options.sample_format)


@dataclass(frozen=True)
class CapturedChunk:
    format: CaptureFormat
    stream: int  # the number of the stream it came from: 1, then one more at each reopen
    end_frame: int  # frames the stream delivered up to the end of this block, those dropped from the queue too
    data: bytes
    arrival: float  # time.monotonic() in the callback
    overflow: bool  # PortAudio flagged an input overflow before this block


@dataclass
class CaptureCounts:
    captured_s: float = 0.0  # audio taken from the queue
    overruns: int = 0  # blocks PortAudio flagged with an input overflow
    gaps: int = 0  # steps in the device's timeline: audio lost before PortAudio had it
    gap_s: float = 0.0
    dropped_chunks: int = 0  # the oldest blocks dropped from a full queue
    dropped_s: float = 0.0
    losses: int = 0  # times the device went away
    lost_s: float = 0.0  # time without a device, the current loss included
    reopen_attempts: int = 0  # failed attempts to open it again
    reconnects: int = 0  # times it came back


class Timeline:
    """Gaps in one stream's audio, from its arrival times: the lag of the audio received behind the clock is
    steady (latency and jitter) until audio goes missing, when it steps up by what is missing. The lowest lag of
    each window of GAP_WINDOW_S is compared with the previous window's, so that clock drift counts for nothing; a
    window stays open while the lag is falling (the buffered blocks after a stall arriving at once, which were
    late, not lost). The first window is not compared: a stream's start may be irregular."""

    def __init__(self, sample_rate: int):
        self.sample_rate = sample_rate
        self.start: float | None = None
        self.window_end = 0.0
        self.window_min = float("inf")
        self.previous_min: float | None = None

    def add(self, arrival: float, end_frame: int) -> float:
        """A block that arrived at ``arrival`` and ended at frame ``end_frame`` of the stream; the seconds of a gap
        that a window closed with, else 0."""
        if self.start is None:
            self.start, self.window_end = arrival, arrival + GAP_WINDOW_S
        lag = (arrival - self.start) - end_frame / self.sample_rate
        falling = lag < self.window_min - FALLING_S
        self.window_min = min(self.window_min, lag)
        if arrival < self.window_end or falling:
            return 0.0
        step = 0.0 if self.previous_min is None else self.window_min - self.previous_min
        self.previous_min, self.window_min, self.window_end = self.window_min, float("inf"), arrival + GAP_WINDOW_S
        return step if step > GAP_THRESHOLD_S else 0.0


@dataclass
class _Queue:
    chunks: collections.deque = field(default_factory=collections.deque)
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class CaptureStatus:
    format: CaptureFormat | None  # of the stream open now, or of the last one while the device is lost
    lost_for_s: float | None  # None while capturing
    counts: CaptureCounts


class MicrophoneCapture:
    """One input device captured until ``stop()``: ``start()`` opens it (HailoWhisperError, listing the devices
    there are, when it does not exist or will not open); ``take()`` hands over what was captured (any one thread);
    ``report(severity, kind, text)`` is told of losses, recoveries, overruns and gaps; ``wake()`` is called from
    the PortAudio callback after each block."""

    def __init__(self, options: MicrophoneOptions, report: Report, wake: Callable[[], None] = lambda: None):
        self.options = options
        self.report = report
        self.wake = wake
        self.counts = CaptureCounts()
        self.format: CaptureFormat | None = None
        self._queue = _Queue()
        self._stream = None
        self._streams_opened = 0
        self._timeline: tuple[int, Timeline] | None = None  # (stream number, its timeline)
        self._ended = threading.Event()  # PortAudio ended the stream: the device went away
        self._stopping = threading.Event()
        self._opened_at = 0.0
        self._last_arrival: float | None = None  # of the last block of the stream open now
        self._lost_since: float | None = None
        self._supervisor = threading.Thread(target=self._supervise, name="microphone", daemon=True)

    def start(self) -> None:
        self._open()
        self._supervisor.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor.is_alive():
            self._supervisor.join()
        self._close()

    @property
    def has_pending(self) -> bool:
        return bool(self._queue.chunks)

    def _open(self) -> None:
        import sounddevice

        device = resolve_device(self.options.device, input_devices(), default_input_index())
        capture = capture_format(self.options, device)
        self._ended.clear()
        self._streams_opened += 1
        try:
            self._stream = sounddevice.RawInputStream(
                device=device.index, samplerate=capture.sample_rate, channels=capture.channels,
                dtype=pcm_dtype(capture.sample_format).name,
                blocksize=max(1, capture.sample_rate * self.options.chunk_ms // 1000),
                callback=self._callback(capture, self._streams_opened), finished_callback=self._ended.set)
            self._opened_at, self._last_arrival = time.monotonic(), None
            self._stream.start()
        except sounddevice.PortAudioError as error:
            self._close()
            raise HailoWhisperError(f"cannot capture from {device} at {capture.sample_rate} Hz, "
                                    f"{capture.channels} channel(s): {error}") from error
        self.format = capture

    def _close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close(ignore_errors=True)

    def _callback(self, capture: CaptureFormat, stream_number: int):
        """The PortAudio callback of one stream: copy, queue, wake; the oldest dropped and counted when full."""
        bytes_per_second = capture.bytes_per_second
        queue = self._queue
        delivered = [0]  # frames so far

        def on_block(data, frames, time_info, status) -> None:
            delivered[0] += frames
            chunk = CapturedChunk(capture, stream_number, delivered[0], bytes(data), time.monotonic(),
                                  bool(status.input_overflow))
            with queue.lock:
                queue.chunks.append(chunk)
                queue.seconds += len(chunk.data) / bytes_per_second
                while queue.seconds > self.options.max_queue_s and len(queue.chunks) > 1:
                    dropped = len(queue.chunks.popleft().data) / bytes_per_second
                    queue.seconds -= dropped
                    self.counts.dropped_chunks += 1
                    self.counts.dropped_s += dropped
            self._last_arrival = chunk.arrival
            self.wake()

        return on_block

    def take(self) -> list[CapturedChunk]:
        """The blocks captured since the last call, oldest first; counts overruns and gaps on the way."""
        with self._queue.lock:
            chunks = list(self._queue.chunks)
            self._queue.chunks.clear()
            self._queue.seconds = 0.0
        for chunk in chunks:
            seconds = len(chunk.data) / chunk.format.bytes_per_second
            self.counts.captured_s += seconds
            if chunk.overflow:
                self.counts.overruns += 1
                self.report("warn", "overrun", f"input overflow on {chunk.format.device}: audio was lost "
                            f"({self.counts.overruns} overruns so far)")
            if self._timeline is None or self._timeline[0] != chunk.stream:
                self._timeline = (chunk.stream, Timeline(chunk.format.sample_rate))
            if gap := self._timeline[1].add(chunk.arrival, chunk.end_frame):
                self.counts.gaps += 1
                self.counts.gap_s += gap
                self.report("warn", "gap", f"{gap:.2f} s of audio missing from {chunk.format.device} (the device or "
                            "the audio server lost it: was the process stalled?)")
        return chunks

    def status(self) -> CaptureStatus:
        lost_for = None if self._lost_since is None else time.monotonic() - self._lost_since
        counts = CaptureCounts(**vars(self.counts))
        counts.lost_s += lost_for or 0.0
        return CaptureStatus(self.format, lost_for, counts)

    def _supervise(self) -> None:
        """Watch the stream; once lost, open it again after BACKOFF_S[0], doubling the wait up to BACKOFF_S[1]."""
        backoff = BACKOFF_S[0]
        awake_since = last_check = time.monotonic()
        while not self._stopping.wait(SUPERVISOR_PERIOD_S if self._lost_since is None else backoff):
            now = time.monotonic()
            if now - last_check > SUPERVISOR_PERIOD_S + 0.5:  # this process was stopped or starved: so was capture
                awake_since = now
            last_check = now
            if self._lost_since is None:
                reason = self._loss_reason(now, awake_since)
                if reason:
                    self._lose(now, reason)
                    backoff = BACKOFF_S[0]
            elif self._reopen(backoff):
                awake_since = last_check = time.monotonic()
            else:
                backoff = min(2 * backoff, BACKOFF_S[1])

    def _loss_reason(self, now: float, awake_since: float) -> str:
        if self._ended.is_set():
            return "PortAudio ended the stream (unplugged, or the audio server stopped)"
        if self._last_arrival is None:
            timeout_s, silent_s = FIRST_BLOCK_TIMEOUT_S, now - max(self._opened_at, awake_since)
        else:
            timeout_s, silent_s = self.options.stall_timeout_s, now - max(self._last_arrival, awake_since)
        if silent_s > timeout_s:
            return f"no audio for {silent_s:.1f} s"
        return ""

    def _lose(self, now: float, reason: str) -> None:
        self._close()
        self._lost_since = now
        self.counts.losses += 1
        self.report("warn", "device lost", f"lost {self.format.device}: {reason}; opening it again in "
                    f"{BACKOFF_S[0]:g} s, then at most every {BACKOFF_S[1]:g} s")

    def _reopen(self, backoff: float) -> bool:
        try:
            refresh_devices()
            self._open()
        except HailoWhisperError as error:
            self.counts.reopen_attempts += 1
            self.report("warn", "reopen failed", f"still no device: {error}; next attempt in "
                        f"{min(2 * backoff, BACKOFF_S[1]):g} s")
            return False
        lost_s = time.monotonic() - self._lost_since
        self.counts.lost_s += lost_s
        self._lost_since = None
        self.counts.reconnects += 1
        capture = self.format
        self.report("info", "device back", f"capturing again from {capture.device} at {capture.sample_rate} Hz, "
                    f"{capture.channels} channel(s), after {lost_s:.1f} s without it")
        return True
