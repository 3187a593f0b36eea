"""Noise mixed into speech at a signal-to-noise ratio (evaluation/noise.py)."""

import numpy as np
import pytest

from hailo_whisper_ros.evaluation.noise import mix_at_snr, noisy_set


def _snr_db(speech: np.ndarray, mixed: np.ndarray) -> float:
    noise = mixed.astype(np.float64) - speech
    return 10 * np.log10(np.mean(np.square(speech, dtype=np.float64)) / np.mean(np.square(noise)))


@pytest.mark.parametrize("snr_db", [20.0, 10.0, 0.0])
def test_the_mixture_has_the_asked_snr(snr_db):
    generator = np.random.default_rng(3)
    speech = (0.3 * np.sin(np.arange(16000) / 7.0)).astype(np.float32)
    mixed = mix_at_snr(speech, generator.standard_normal(5000), snr_db)  # noise looped to the speech's length
    assert mixed.dtype == np.float32 and len(mixed) == len(speech)
    assert _snr_db(speech, mixed) == pytest.approx(snr_db, abs=0.01)


@pytest.mark.parametrize("noise", ["white", "babble"])
def test_noisy_sets_are_deterministic_and_at_their_snr(noise):
    generator = np.random.default_rng(4)
    clips = [generator.uniform(-0.5, 0.5, length).astype(np.float32) for length in (8000, 12000, 9000, 16000)]
    first, second = noisy_set(clips, noise, 5.0), noisy_set(clips, noise, 5.0)
    for clip, mixed, again in zip(clips, first, second):
        assert np.array_equal(mixed, again)
        assert _snr_db(clip, mixed) == pytest.approx(5.0, abs=0.01)


def test_silence_stays_silent_and_unknown_noise_is_refused():
    silence = np.zeros(100, np.float32)
    assert np.array_equal(mix_at_snr(silence, np.ones(10), 10.0), silence)
    with pytest.raises(ValueError, match="white"):
        noisy_set([silence], "pink", 10.0)
