"""Speech clips mixed with noise at a given signal-to-noise ratio, to check that a model change which holds on clean
speech also holds in noise.

Two noises, both deterministic: ``white`` (Gaussian, seeded by the clip) and ``babble``, the sum of three other
clips of the set (other talkers, as in a room with people), looped to the clip's length. The SNR is that of the
whole clip's power against the noise's, so the speech itself is louder than it by its pauses' share.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

NOISES = ("white", "babble")
BABBLE_TALKERS = 3


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech`` plus ``noise`` (looped or cut to its length) scaled to ``snr_db`` below it, as float32."""
    noise = np.resize(noise.astype(np.float64), len(speech))
    speech_power = float(np.mean(np.square(speech, dtype=np.float64)))
    noise_power = float(np.mean(np.square(noise)))
    if speech_power == 0.0 or noise_power == 0.0:
        return speech.astype(np.float32)
    scale = np.sqrt(speech_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return (speech + scale * noise).astype(np.float32)


def noisy_set(audio: Sequence[np.ndarray], noise: str, snr_db: float) -> list[np.ndarray]:
    """Every clip of ``audio`` mixed with ``noise`` (one of NOISES) at ``snr_db``."""
    if noise not in NOISES:
        raise ValueError(f"noise must be one of {NOISES}, not {noise!r}")
    mixed = []
    for index, clip in enumerate(audio):
        if noise == "white":
            generator = np.random.default_rng(zlib.crc32(clip.tobytes()))
            signal = generator.standard_normal(len(clip))
        else:
            others = [audio[(index + offset) % len(audio)] for offset in range(1, BABBLE_TALKERS + 1)]
            signal = sum(np.resize(other.astype(np.float64) / (np.std(other) or 1.0), len(clip)) for other in others)
        mixed.append(mix_at_snr(clip, signal, snr_db))
    return mixed
