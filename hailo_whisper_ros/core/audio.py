"""Audio in: sound files, band-limited resampling (one-shot and streaming) and raw PCM bytes to float32 mono.

Everything downstream (features, VAD, encoders) takes float32 mono audio at ``SAMPLE_RATE`` in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.errors import HailoWhisperError

# Kaiser window of resample_poly's default design; beta 5 gives about 50 dB stop-band attenuation.
_KAISER_BETA = 5.0
# Output samples computed per step of the streaming resampler.
_OUTPUT_BLOCK = 4096
# Where to cut speech: the short-time energy of 20 ms frames every 10 ms.
QUIET_FRAME_SAMPLES = SAMPLE_RATE // 50
QUIET_HOP_SAMPLES = SAMPLE_RATE // 100


def load_audio(path: str | Path) -> np.ndarray:
    """Read a wav/flac file (any rate, any channel count) as float32 mono at ``SAMPLE_RATE``.

    Channels are averaged; non-finite samples of float files become 0.
    """
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise HailoWhisperError(f"audio file not found: {path}")
    try:
        frames, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError, soundfile.LibsndfileError) as error:
        raise HailoWhisperError(f"cannot read audio file {path}: {error}") from error
    mono = frames.mean(axis=1, dtype=np.float32) if frames.shape[1] > 1 else frames[:, 0]
    mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
    return resample(mono, rate, SAMPLE_RATE)


def _rate_ratio(from_rate: int, to_rate: int) -> tuple[int, int]:
    """The reduced (up, down) factors of a rate conversion."""
    for name, rate in (("from_rate", from_rate), ("to_rate", to_rate)):
        is_number = isinstance(rate, (int, float, np.integer, np.floating)) and not isinstance(rate, bool)
        if not is_number or not float(rate).is_integer() or rate <= 0:
            raise HailoWhisperError(f"sample rate {name}={rate!r} must be a positive whole number of Hz")
    from_rate, to_rate = int(from_rate), int(to_rate)
    divisor = gcd(from_rate, to_rate)
    return to_rate // divisor, from_rate // divisor


def _lowpass_filter(up: int, down: int) -> np.ndarray:
    """The anti-aliasing FIR filter that scipy.signal.resample_poly designs for (up, down), before its gain of up:
    firwin(20 * max_factor + 1, 1 / max_factor, window=("kaiser", 5.0)), a Kaiser-windowed sinc scaled to unit gain
    at 0 Hz. Computed here in numpy because importing scipy.signal costs a process about 70 MB of resident memory."""
    max_factor = max(up, down)
    half_length = 10 * max_factor
    cutoff = 1.0 / max_factor  # of the Nyquist frequency
    offsets = np.arange(-half_length, half_length + 1)
    taps = cutoff * np.sinc(cutoff * offsets) * np.kaiser(2 * half_length + 1, _KAISER_BETA)
    return taps / taps.sum()


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited polyphase resampling of 1-D audio; returns float32, ceil(len * to_rate / from_rate) samples
    (what scipy.signal.resample_poly returns)."""
    up, down = _rate_ratio(from_rate, to_rate)
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if up == down:
        return audio
    resampler = StreamingResampler(from_rate, to_rate)
    return np.concatenate([resampler.process(audio), resampler.flush()])


class StreamingResampler:
    """Resamples a stream given in chunks of any size; the concatenated output equals ``resample`` of the whole.

    Output sample k is the filter centred on input position k * down / up, so it can be produced once the input
    reaches half a filter length past that point: the output lags the input by that (under 1 ms at 48 -> 16 kHz).
    ``flush`` produces the rest as if the stream were followed by zeros, as the one-shot resampler does.
    """

    def __init__(self, from_rate: int, to_rate: int):
        self.up, self.down = _rate_ratio(from_rate, to_rate)
        if self.up != self.down:
            taps = _lowpass_filter(self.up, self.down) * self.up
            self._half_length = (len(taps) - 1) // 2
            # Polyphase matrix: row p holds the taps met by the inputs at phase p, newest input first.
            self._taps_per_phase = -(-len(taps) // self.up)
            padded = np.zeros(self._taps_per_phase * self.up)
            padded[: len(taps)] = taps
            self._phases = padded.reshape(self._taps_per_phase, self.up).T.copy()
        self.reset()

    def reset(self) -> None:
        """Start a new stream."""
        self._received = 0  # input samples seen
        self._produced = 0  # output samples returned
        if self.up != self.down:
            # Inputs before the stream start are zeros; _history[0] is input sample _history_start.
            self._history = np.zeros(self._taps_per_phase, dtype=np.float64)
            self._history_start = -self._taps_per_phase

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Resample the next chunk; returns the output samples that the input so far determines (float32)."""
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if self.up == self.down:
            return chunk
        self._history = np.concatenate([self._history, chunk])
        self._received += len(chunk)
        # Output k needs inputs up to floor((k * down + half_length) / up).
        ready = (self._received * self.up - self._half_length - 1) // self.down + 1
        return self._produce(max(ready, self._produced))

    def flush(self) -> np.ndarray:
        """End the stream: the remaining output samples, then start a new stream."""
        if self.up == self.down:
            return np.zeros(0, dtype=np.float32)
        total = -(-self._received * self.up // self.down)
        newest_needed = ((total - 1) * self.down + self._half_length) // self.up
        missing = newest_needed + 1 - (self._history_start + len(self._history))
        self._history = np.concatenate([self._history, np.zeros(max(missing, 0))])
        tail = self._produce(total)
        self.reset()
        return tail

    def _produce(self, end: int) -> np.ndarray:
        """Output samples _produced .. end-1, then drop the inputs no later output needs."""
        out = np.empty(end - self._produced, dtype=np.float32)
        lags = np.arange(self._taps_per_phase)
        # Blocks bound the [outputs, taps] gather to a few MB whatever the chunk length.
        for block_start in range(self._produced, end, _OUTPUT_BLOCK):
            k = np.arange(block_start, min(block_start + _OUTPUT_BLOCK, end))
            centre = k * self.down + self._half_length
            newest = centre // self.up  # absolute index of the newest input each output uses
            phase = centre - newest * self.up
            rows = (newest - self._history_start)[:, None] - lags[None, :]
            out[k - self._produced] = np.einsum("kj,kj->k", self._phases[phase], self._history[rows])
        self._produced = end
        oldest_needed = (self._produced * self.down + self._half_length) // self.up - self._taps_per_phase + 1
        drop = oldest_needed - self._history_start
        if drop > 0:
            self._history = self._history[drop:]
            self._history_start += drop
        return out


def short_time_energy(audio: np.ndarray, frame_samples: int, hop_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """(frame starts, energies): the sum of squared samples of every whole frame of ``frame_samples`` that starts
    at a multiple of ``hop_samples``; the one energy measure of the package (cuts, VAD windows, speech bounds)."""
    squares = np.asarray(audio, dtype=np.float64) ** 2
    sums = np.concatenate([[0.0], np.cumsum(squares)])
    starts = np.arange(0, len(squares) - frame_samples + 1, hop_samples)
    return starts, sums[starts + frame_samples] - sums[starts]


def quietest_point(audio: np.ndarray, start: int, end: int) -> int:
    """The sample in [start, end) at the centre of the quietest 20 ms frame: where a cut splits no word. Of equally
    quiet frames (a stretch of digital silence) the middle one."""
    starts, energies = short_time_energy(audio[start:end], QUIET_FRAME_SAMPLES, QUIET_HOP_SAMPLES)
    quietest = np.flatnonzero(energies == energies.min())
    return start + int(starts[quietest[len(quietest) // 2]]) + QUIET_FRAME_SAMPLES // 2


# sample_format (upper case) -> little-endian numpy dtype, and the integer full scale (None for float formats).
# The names are GStreamer's, as audio_common_msgs/AudioInfo carries them; without the LE suffix little-endian is
# meant (every robot driver we know sends little-endian).
_PCM_FORMATS = {
    "S16LE": (np.dtype("<i2"), 2.0**15),
    "S32LE": (np.dtype("<i4"), 2.0**31),
    "F32LE": (np.dtype("<f4"), None),
}
_PCM_ALIASES = {"S16": "S16LE", "S32": "S32LE", "F32": "F32LE"}
PCM_FORMATS = tuple(_PCM_FORMATS)


def pcm_format(sample_format: str) -> str:
    """The canonical name of a PCM sample format (case-insensitive; "S16", "S32", "F32" mean little-endian)."""
    name = str(sample_format).strip().upper()
    name = _PCM_ALIASES.get(name, name)
    if name not in _PCM_FORMATS:
        raise HailoWhisperError(
            f"unsupported PCM sample format {sample_format!r}: expected one of {', '.join(PCM_FORMATS)}"
        )
    return name


def pcm_dtype(sample_format: str) -> np.dtype:
    """The little-endian numpy dtype of one channel sample (its ``name`` is soundfile's dtype name too)."""
    return _PCM_FORMATS[pcm_format(sample_format)][0]


def pcm_sample_width(sample_format: str) -> int:
    """Bytes per sample of one channel."""
    return pcm_dtype(sample_format).itemsize


@dataclass(frozen=True)
class PcmSamples:
    """Float32 mono samples converted from PCM bytes, and what the conversion had to reject or repair."""

    samples: np.ndarray  # float32 mono in [-1, 1], one per whole frame
    partial_frame_bytes: int  # trailing bytes that do not make a whole frame (not converted)
    non_finite_samples: int  # NaN/Inf channel samples of float formats, replaced by 0
    clipped_samples: int  # channel samples of float formats outside [-1, 1], clipped


def pcm_to_float(data: bytes, sample_format: str, channels: int) -> PcmSamples:
    """Convert interleaved PCM bytes to float32 mono (channels averaged).

    Only whole frames (channels x sample width bytes) are converted; the count of the trailing bytes of a partial
    frame is returned so that a byte-stream reader can keep them (see ``PcmStream``) and a message reader can count
    them as rejected. Non-finite float samples become 0 and out-of-range ones are clipped, both counted.
    """
    dtype, full_scale = _PCM_FORMATS[pcm_format(sample_format)]
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
        raise HailoWhisperError(f"PCM channel count {channels!r} must be a whole number >= 1")
    try:
        raw = np.frombuffer(data, dtype=np.uint8)
    except TypeError:
        raise HailoWhisperError(f"PCM data must be bytes-like, got {type(data).__name__}") from None
    frame_bytes = dtype.itemsize * int(channels)
    whole = len(raw) - len(raw) % frame_bytes
    interleaved = raw[:whole].view(dtype)
    non_finite = clipped = 0
    if full_scale is None:
        finite = np.isfinite(interleaved)
        non_finite = int(len(finite) - np.count_nonzero(finite))
        values = np.where(finite, interleaved, np.float32(0.0))
        clipped = int(np.count_nonzero(np.abs(values) > 1.0))
        values = np.clip(values, -1.0, 1.0)
    else:
        # int32 -> float32 rounding can reach exactly 1.0, still in range.
        values = interleaved.astype(np.float32) * np.float32(1.0 / full_scale)
    frames = values.reshape(-1, int(channels))
    mono = frames[:, 0] if channels == 1 else frames.mean(axis=1, dtype=np.float32)
    return PcmSamples(np.ascontiguousarray(mono, dtype=np.float32), len(raw) - whole, non_finite, clipped)


class PcmStream:
    """Converts PCM from a byte stream cut at arbitrary points (a pipe, a socket, a driver's read()).

    A partial frame at the end of one chunk is kept and completed by the next, so no audio is lost. For sources whose
    every message should hold whole frames (audio_common_msgs/AudioData), use ``pcm_to_float`` per message instead:
    carrying a stray partial frame there would shift all later frames. Counters accumulate over the stream.
    """

    def __init__(self, sample_format: str, channels: int):
        self.sample_format = pcm_format(sample_format)
        pcm_to_float(b"", self.sample_format, channels)  # validates channels
        self.channels = int(channels)
        self.reset()

    def reset(self) -> None:
        """Forget the kept partial frame and zero the counters."""
        self._partial = b""
        self.samples_out = 0
        self.non_finite_samples = 0
        self.clipped_samples = 0

    @property
    def pending_bytes(self) -> int:
        """Bytes of a partial frame waiting for the next chunk."""
        return len(self._partial)

    def process(self, data: bytes) -> np.ndarray:
        """Convert the next chunk; returns float32 mono samples of every frame completed so far."""
        buffer = self._partial + bytes(data)
        converted = pcm_to_float(buffer, self.sample_format, self.channels)
        self._partial = buffer[len(buffer) - converted.partial_frame_bytes :]
        self.samples_out += len(converted.samples)
        self.non_finite_samples += converted.non_finite_samples
        self.clipped_samples += converted.clipped_samples
        return converted.samples


LEAD_KEEP_S = 0.1  # a window starts this long before the speech onset (decoding.window_lead_trim_db)


def speech_onset(audio: np.ndarray, trim_db: float) -> int:
    """Where a window should start: LEAD_KEEP_S before the first 20 ms frame within ``trim_db`` of the loudest
    (0: at the start)."""
    starts, energies = short_time_energy(audio, QUIET_FRAME_SAMPLES, QUIET_HOP_SAMPLES)
    if trim_db == 0.0 or not len(energies) or energies.max() <= 0.0:
        return 0
    first = int(starts[np.argmax(energies >= energies.max() * 10.0 ** (-trim_db / 10.0))])
    return max(0, first - int(LEAD_KEEP_S * SAMPLE_RATE))


def split_at_quiet_points(audio: np.ndarray, max_samples: int, search_samples: int) -> list[tuple[int, int]]:
    """Cut audio into spans of at most max_samples; each cut lies at the quietest point within the last
    search_samples of its window, so that no word is split."""
    spans = []
    start = 0
    while len(audio) - start > max_samples:
        cut = quietest_point(audio, start + max_samples - search_samples, start + max_samples)
        spans.append((start, cut))
        start = cut
    spans.append((start, len(audio)))
    return spans
