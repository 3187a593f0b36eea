"""Where the talker stopped, by level (core.background.talker_end), on made-up levels: a quieter end is cut
300 ms after the last loud 400 ms, a quiet middle or a quiet end within the threshold is kept, and off is off."""

import numpy as np

from hailo_whisper_ros.core.background import MIN_REMOVAL_S, TRAIL_KEEP_S, TRAIL_WINDOW_S, talker_end
from hailo_whisper_ros.core.constants import SAMPLE_RATE


def noise_at(levels_db: list[tuple[float, float]], seed: int = 0) -> np.ndarray:
    """Gaussian noise of (seconds, level in dB) pieces, one after the other."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.standard_normal(int(s * SAMPLE_RATE)) * 10 ** (db / 20) * 0.1 for s, db in levels_db])


def test_a_quieter_end_is_cut_after_the_last_loud_window():
    audio = noise_at([(2.0, 0.0), (2.0, -20.0)])
    end = talker_end(audio, 12.0)
    # The last window within 12 dB of the loudest still reaches into the loud part: it ends by TRAIL_WINDOW_S after.
    assert 2.0 + TRAIL_KEEP_S <= end / SAMPLE_RATE <= 2.0 + TRAIL_WINDOW_S + TRAIL_KEEP_S + 0.01
    assert talker_end(audio, 30.0) == len(audio)  # 20 dB below is within 30 dB: all of it is the talker's


def test_a_quiet_middle_and_a_short_quiet_end_are_kept():
    assert talker_end(noise_at([(1.5, 0.0), (2.0, -20.0), (1.5, 0.0)]), 12.0) == 5.0 * SAMPLE_RATE
    short_tail = noise_at([(2.0, 0.0), (TRAIL_WINDOW_S + TRAIL_KEEP_S + MIN_REMOVAL_S / 2, -20.0)])
    assert talker_end(short_tail, 12.0) == len(short_tail)


def test_off_silent_and_short_audio_are_left_whole():
    audio = noise_at([(2.0, 0.0), (2.0, -20.0)])
    assert talker_end(audio, 0.0) == len(audio)
    assert talker_end(np.zeros(3 * SAMPLE_RATE, dtype=np.float32), 12.0) == 3 * SAMPLE_RATE
    assert talker_end(audio[: int(TRAIL_WINDOW_S * SAMPLE_RATE)], 12.0) == int(TRAIL_WINDOW_S * SAMPLE_RATE)
