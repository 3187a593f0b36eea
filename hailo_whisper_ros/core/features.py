"""Whisper's log-mel spectrogram in numpy, numerically matching OpenAI Whisper and faster-whisper.

Frame t is the 25 ms Hann-windowed FFT centred on audio sample t * HOP_LENGTH; the audio start is reflect-padded,
and after the audio end the signal is zeros, as in Whisper, which appends 30 s of zeros before its STFT. So a
feature matrix padded to the encoder's length holds exactly what Whisper feeds its encoder for that audio.
"""

from __future__ import annotations

import numpy as np

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.errors import HailoWhisperError

N_FFT = 400
HOP_LENGTH = 160
# The log-mel of silence is clamped to this (log10 of the power floor).
_LOG_FLOOR = -10.0
# Dynamic range kept below the loudest frame, in log10 units (80 dB).
_DYNAMIC_RANGE = 8.0


# Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above.
_MEL_LINEAR_HZ = 200.0 / 3  # Hz per mel below 1 kHz
_MEL_LOG_START = 1000.0 / _MEL_LINEAR_HZ  # the mel of 1 kHz
_MEL_LOG_STEP = np.log(6.4) / 27.0  # log-frequency step of one mel above 1 kHz


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    log_part = _MEL_LOG_START + np.log(np.maximum(hz, 1e-10) / 1000.0) / _MEL_LOG_STEP
    return np.where(hz < 1000.0, hz / _MEL_LINEAR_HZ, log_part)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    log_part = 1000.0 * np.exp(_MEL_LOG_STEP * (mel - _MEL_LOG_START))
    return np.where(mel < _MEL_LOG_START, mel * _MEL_LINEAR_HZ, log_part)


def mel_filterbank(n_mels: int, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Slaney-normalised triangular mel filters [n_mels, n_fft // 2 + 1] from 0 Hz to Nyquist.

    The same as librosa.filters.mel(sr, n_fft, n_mels), from which Whisper's mel_filters.npz was made.
    """
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(edges_hz)
    offsets = edges_hz[:, None] - fft_hz[None, :]
    rising = -offsets[:-2] / widths[:-1, None]
    falling = offsets[2:] / widths[1:, None]
    triangles = np.maximum(0.0, np.minimum(rising, falling))
    # Slaney normalisation: each filter has unit area, so bands carry comparable energy.
    return (triangles * (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]).astype(np.float32)


def _normalise(log_mel: np.ndarray | float) -> np.ndarray | float:
    """Whisper's scaling of floored log10 mel power to roughly [-1, 1]."""
    return (log_mel + 4.0) / 4.0


def frames_for(n_samples: int) -> int:
    """The number of feature frames that belong to n_samples of audio (faster-whisper's content frames)."""
    return n_samples // HOP_LENGTH


class LogMelExtractor:
    """Computes Whisper's normalised log-mel features; the window and filterbank are built once."""

    def __init__(self, n_mels: int = 80):
        if n_mels not in (80, 128):
            raise HailoWhisperError(f"n_mels={n_mels!r}: Whisper models use 80 (large-v3: 128) mel bins")
        self.n_mels = n_mels
        self.filters = mel_filterbank(n_mels)
        # Periodic Hann window, as torch.hann_window(N_FFT).
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)

    def log_mel(self, audio: np.ndarray, n_frames: int | None = None) -> np.ndarray:
        """Normalised log-mel [n_mels, n_frames] (float32) of 16 kHz mono audio.

        ``n_frames=None`` gives the frames of the audio itself (``frames_for(len(audio))``); a larger count appends
        the frames of zero audio that follows (what Whisper's 30 s padding gives): use 3000 for the 30 s encoder,
        1000 for the 10 s one. A smaller count trims. The 80 dB floor is relative to the loudest frame of the whole
        audio, trimmed or not, as in Whisper and faster-whisper. Whisper was trained with this zero-audio padding;
        faster-whisper's transcribe pads its features with 0.0 instead (the level of a constant 1e-4 mel power).
        """
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise HailoWhisperError(f"audio for log-mel features must be 1-D mono, got shape {audio.shape}")
        if n_frames is None:
            n_frames = frames_for(len(audio))
        if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 0:
            raise HailoWhisperError(f"n_frames={n_frames!r} must be a whole number >= 0")
        log_power = self._log_mel_power(audio)
        # Frames after those computed see only zeros: log power _LOG_FLOOR, which the max never comes from.
        loudest = log_power.max() if log_power.size else _LOG_FLOOR
        floor = max(loudest - _DYNAMIC_RANGE, _LOG_FLOOR)
        features = np.full((self.n_mels, n_frames), floor, dtype=np.float32)
        kept = min(n_frames, log_power.shape[1])
        np.maximum(log_power[:, :kept], floor, out=features[:, :kept])
        return _normalise(features)

    def _log_mel_power(self, audio: np.ndarray) -> np.ndarray:
        """log10 mel power [n_mels, frames] of every frame whose window overlaps the audio."""
        if len(audio) == 0:
            return np.zeros((self.n_mels, 0), dtype=np.float32)
        half = N_FFT // 2
        n_stft = -(-(len(audio) + half) // HOP_LENGTH)
        padded = np.zeros((n_stft - 1) * HOP_LENGTH + N_FFT, dtype=np.float32)
        padded[half : half + len(audio)] = audio
        # Reflect-pad the start (edge sample not repeated), like torch.stft(center=True, pad_mode="reflect").
        padded[:half] = padded[2 * half : half : -1]
        frames = np.lib.stride_tricks.as_strided(
            padded, shape=(n_stft, N_FFT), strides=(HOP_LENGTH * padded.strides[0], padded.strides[0]), writeable=False
        )
        spectrum = np.fft.rfft(frames * self.window, axis=-1)
        power = spectrum.real**2 + spectrum.imag**2
        mel_power = self.filters @ power.T
        return np.log10(np.maximum(mel_power, 1e-10))


def pad_or_trim(features: np.ndarray, n_frames: int) -> np.ndarray:
    """Trim or pad log-mel features [n_mels, frames] to n_frames, padding with the value of zero audio.

    Zero audio sits at the floor, 80 dB (2 after normalisation) below the loudest frame of ``features``, so this is
    exact for the whole audio's log-mel past the frames its window tail reaches; for a slice of longer audio or the
    tail frames, run ``log_mel`` with n_frames instead.
    """
    if features.shape[-1] >= n_frames:
        return features[..., :n_frames]
    loudest = features.max() if features.size else -np.inf
    zero_audio = max(loudest - _DYNAMIC_RANGE / 4, _normalise(_LOG_FLOOR))
    padded = np.full(features.shape[:-1] + (n_frames,), zero_audio, dtype=features.dtype)
    padded[..., : features.shape[-1]] = features
    return padded
