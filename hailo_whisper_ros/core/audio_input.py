"""The audio front end of a live stream: messages of PCM bytes in a declared format -> 16 kHz mono float32.

A robot's audio driver declares its format (audio_common_msgs/AudioInfo: channels, rate, sample format, coding)
and then sends chunks. Drivers misbehave: formats change mid-stream, chunks are empty or cut mid-frame, floats
carry NaN, an mp3 stream arrives where PCM was expected. The front end converts what it can, rejects the rest
with a reason, and counts every kind of problem so diagnostics can show it; it never raises on bad audio.
"""

from __future__ import annotations

import bisect
from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

from hailo_whisper_ros.core.audio import (
    PCM_FORMATS,
    StreamingResampler,
    pcm_format,
    pcm_sample_width,
    pcm_to_float,
)
from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.options import Options, option

MAX_CHANNELS = 32
MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 384000
PCM_CODINGS = ("", "WAVE", "PCM", "RAW")  # coding_format values that mean uncompressed PCM


def bytes_per_second(sample_rate: int, channels: int, sample_format: str) -> float:
    """Data rate of interleaved PCM; an unknown sample format counts as 4 bytes a sample (the widest)."""
    try:
        width = pcm_sample_width(sample_format)
    except HailoWhisperError:
        width = 4
    return float(sample_rate * channels * width)


@dataclass(frozen=True)
class AudioFormat(Options):
    """The format of incoming audio until the driver declares another on audio_info."""

    PARAMETER_GROUP = "audio"

    sample_rate: int = option(16000, "Samples per second per channel, until an AudioInfo arrives on audio_info.",
                              unit="Hz", range=(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE))
    channels: int = option(1, "Interleaved channels per frame; they are averaged to mono.", range=(1, MAX_CHANNELS))
    sample_format: str = option("S16LE", f"PCM sample format: {', '.join(PCM_FORMATS)}.")
    coding_format: str = option(
        "WAVE", "Audio coding: only uncompressed PCM (WAVE, PCM, RAW or empty) can be transcribed.")

    def check(self) -> None:
        pcm_format(self.sample_format)  # any spelling of the names (case, no LE suffix) that drivers send
        if str(self.coding_format).strip().upper() not in PCM_CODINGS:
            raise HailoWhisperError(
                f"audio coding {self.coding_format!r} is not supported: only uncompressed PCM (WAVE) can be transcribed"
            )

    @property
    def bytes_per_second(self) -> float:
        return bytes_per_second(self.sample_rate, self.channels, self.sample_format)

    def describe(self) -> str:
        return f"{self.sample_rate} Hz, {self.channels} ch, {pcm_format(self.sample_format)}"


class AudioFrontEnd:
    """Converts audio messages to 16 kHz mono float32 in stream order, counting what it had to reject.

    ``rejected`` counts problems by kind (``empty_message``, ``partial_frame``, ``non_finite_samples``,
    ``clipped_samples``, ``invalid_format``, ``unsupported_coding``...); ``reasons`` says what the latest
    rejection of each kind was about and ``last_error`` what the latest of all was, for log lines.
    """

    def __init__(self, audio_format: AudioFormat = AudioFormat()):
        self.format = audio_format
        self.rejected: Counter[str] = Counter()
        self.messages = 0
        self.input_seconds = 0.0
        self.format_changes = 0
        self.reasons: dict[str, str] = {}
        self.last_error = ""
        self._unusable_reason = ""  # why the declared format cannot be converted (mp3...); empty while usable
        self._resampler = StreamingResampler(audio_format.sample_rate, SAMPLE_RATE)
        self._tail = np.zeros(0, dtype=np.float32)  # the old resampler's last output after a rate change

    def declare(self, sample_rate: int, channels: int, sample_format: str, coding_format: str) -> bool:
        """A new format from the driver. An invalid one is counted, keeps the previous PCM format, and stops the
        conversion (audio in an unknown format would be noise) until a valid one arrives. Returns validity."""
        try:
            new_format = AudioFormat(int(sample_rate), int(channels), str(sample_format), str(coding_format))
        except HailoWhisperError as error:
            kind = "unsupported_coding" if "coding" in str(error) else "invalid_format"
            self._reject(kind, str(error))
            self._unusable_reason = str(error)
            return False
        self._unusable_reason = ""
        if new_format != self.format:
            if (new_format.sample_rate, new_format.channels) != (self.format.sample_rate, self.format.channels):
                self.format_changes += 1
            if new_format.sample_rate != self.format.sample_rate:
                self._tail = np.concatenate([self._tail, self._resampler.flush()])
                self._resampler = StreamingResampler(new_format.sample_rate, SAMPLE_RATE)
            self.format = new_format
        return True

    def convert(self, data: bytes) -> np.ndarray:
        """One message's audio as 16 kHz mono float32 (possibly empty); never raises on bad audio."""
        self.messages += 1
        if self._unusable_reason:
            self._reject(
                "unusable_format", f"audio dropped: the declared format is not usable ({self._unusable_reason})")
            return np.zeros(0, dtype=np.float32)
        if len(data) == 0:
            self._reject("empty_message", "empty audio message")
            return np.zeros(0, dtype=np.float32)
        converted = pcm_to_float(data, self.format.sample_format, self.format.channels)
        if converted.partial_frame_bytes:
            self._reject(
                "partial_frame",
                f"{len(data)} bytes is not a whole number of {self.format.describe()} frames: "
                f"{converted.partial_frame_bytes} trailing bytes dropped",
            )
        if converted.non_finite_samples:
            self._reject("non_finite_samples", "NaN/Inf samples replaced by silence", converted.non_finite_samples)
        if converted.clipped_samples:
            self._reject("clipped_samples", "float samples outside [-1, 1] clipped", converted.clipped_samples)
        self.input_seconds += len(converted.samples) / self.format.sample_rate
        resampled = self._resampler.process(converted.samples)
        if len(self._tail):
            resampled, self._tail = np.concatenate([self._tail, resampled]), self._tail[:0]
        # The anti-aliasing filter rings past full scale on loud input (+16 % on a full-scale square wave); what
        # leaves the front end stays in [-1, 1] as everything downstream expects. Not counted: the input was valid.
        return np.clip(resampled, -1.0, 1.0, out=resampled)

    def _reject(self, kind: str, reason: str, count: int = 1) -> None:
        self.rejected[kind] += count
        self.reasons[kind] = reason
        self.last_error = reason


class StreamClock:
    """The time of each sample of the 16 kHz stream on the audio's clock: each converted message marks where its
    samples start in the stream and when its first sample was recorded (an audio_stamped header stamp, else its
    arrival less its duration); a sample between marks is its mark's time plus the samples since. Marks anchor
    the time again after a gap (audio not fed: a pause in listening, the robot speaking) and against drift."""

    def __init__(self, marks: int = 2000):
        self._positions: deque[int] = deque(maxlen=marks)
        self._times_ns: deque[int] = deque(maxlen=marks)

    def mark(self, position: int, time_ns: int) -> None:
        """Stream sample ``position`` (not before the previous mark) was recorded at ``time_ns``."""
        self._positions.append(position)
        self._times_ns.append(time_ns)

    def time_ns(self, position: int) -> int:
        """The recording time of stream sample ``position``; 0 before the first mark. A position older than the
        marks kept counts back from the oldest."""
        if not self._positions:
            return 0
        index = max(bisect.bisect_right(self._positions, position) - 1, 0)
        return self._times_ns[index] + (position - self._positions[index]) * 10**9 // SAMPLE_RATE
