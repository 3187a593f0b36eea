"""Where the talker stopped, by level (core.background.talker_end), on made-up levels: a quieter voice at the end is
cut 300 ms after the last loud 400 ms; a quiet middle, a short quiet end, a quiet end within the threshold and a
steady noise at the end are kept; and off is off."""

import numpy as np

from hailo_whisper_ros.core.background import MIN_REMOVAL_S, TRAIL_KEEP_S, TRAIL_WINDOW_S, talker_end
from hailo_whisper_ros.core.constants import SAMPLE_RATE

SYLLABLE_S = 0.1


def voice_at(pieces: list[tuple[float, float]], seed: int = 0, steady: bool = False) -> np.ndarray:
    """Noise of (seconds, level in dB) pieces one after the other, its level varying by syllable as a voice's does
    (``steady``: not, as a fan's)."""
    rng = np.random.default_rng(seed)
    audio = np.concatenate([rng.standard_normal(int(s * SAMPLE_RATE)) * 10 ** (db / 20) * 0.1 for s, db in pieces])
    if steady:
        return audio
    syllables = rng.uniform(0.3, 1.7, -(-len(audio) // int(SYLLABLE_S * SAMPLE_RATE)))
    return audio * np.repeat(syllables, int(SYLLABLE_S * SAMPLE_RATE))[: len(audio)]


def test_a_quieter_voice_at_the_end_is_cut_after_the_last_loud_window():
    audio = voice_at([(2.0, 0.0), (2.0, -20.0)])
    end = talker_end(audio, 10.0)
    # The last window within 10 dB of the loudest still reaches into the loud part: it ends by TRAIL_WINDOW_S after.
    assert 2.0 + TRAIL_KEEP_S <= end / SAMPLE_RATE <= 2.0 + TRAIL_WINDOW_S + TRAIL_KEEP_S + 0.01
    assert talker_end(audio, 30.0) == len(audio)  # 20 dB below is within 30 dB: all of it is the talker's


def test_a_quiet_middle_and_a_short_quiet_end_are_kept():
    assert talker_end(voice_at([(1.5, 0.0), (2.0, -20.0), (1.5, 0.0)]), 10.0) == 5.0 * SAMPLE_RATE
    short_tail = voice_at([(2.0, 0.0), (TRAIL_WINDOW_S + TRAIL_KEEP_S + MIN_REMOVAL_S / 2, -20.0)])
    assert talker_end(short_tail, 10.0) == len(short_tail)


def test_a_steady_noise_after_the_talker_is_kept():
    fan = voice_at([(2.0, -20.0)], seed=2, steady=True)
    assert talker_end(np.concatenate([voice_at([(2.0, 0.0)]), fan]), 10.0) == 4 * SAMPLE_RATE


def test_off_silent_and_short_audio_are_left_whole():
    audio = voice_at([(2.0, 0.0), (2.0, -20.0)])
    assert talker_end(audio, 0.0) == len(audio)
    assert talker_end(np.zeros(3 * SAMPLE_RATE, dtype=np.float32), 10.0) == 3 * SAMPLE_RATE
    assert talker_end(audio[: int(TRAIL_WINDOW_S * SAMPLE_RATE)], 10.0) == int(TRAIL_WINDOW_S * SAMPLE_RATE)
