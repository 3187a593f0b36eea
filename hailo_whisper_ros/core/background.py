"""Background speech after the talker: where the person talking to the robot stopped, by the audio's level.

A service robot hears people behind the person it talks to. They are quieter at its microphone (farther away), and
when they go on after the talker stops, Whisper transcribes them as more words of the utterance (issue 30: "Can you
hear me clearly? It's just at the end of the world."). The talker's end is where the level of the audio last comes
within ``decoding.background_trim_db`` of the utterance's loudest speech, measured over windows long enough
(TRAIL_WINDOW_S) that one loud syllable of a background talker does not reach it; what comes later is left out of the
encoder window, so the decoder sees the silence it was trained on after the speech instead of quieter voices.

A steady sound after the talker (a fan: its level varies by less than STEADY_SPREAD_DB from one 100 ms to the next,
once the last word's decay is over) is no voice and is left in: Whisper was trained on noisy speech, and on the
simulated rooms of `hailo-whisper rooms` cutting a fan's noise after the speech cost 1-2 points of WER, while a
voice's level varies syllable by syllable (from STEADY_SKIP_S into the cut: the fan's tails measured 0.4-1.0 dB,
median 0.5; three background talkers' 1.6-13 dB, median 3.8).

Only the end of what is decoded is cut, never its middle: a quieter talker in the middle of the utterance belongs to
it as much as the words around it. Word timings (decoding.word_timestamps) are not needed, and not used.
"""

from __future__ import annotations

import numpy as np

from hailo_whisper_ros.core.audio import short_time_energy
from hailo_whisper_ros.core.constants import SAMPLE_RATE

TRAIL_WINDOW_S = 0.4  # the level is measured over windows this long, every 10 ms
TRAIL_KEEP_S = 0.3  # kept after the last loud window: the last word's decay and the room's reverberation
MIN_REMOVAL_S = 0.25  # a quieter end shorter than this is left: it holds no words, only their decay
STEADY_WINDOW_S = 0.1  # a quieter end's level is measured over windows this long, every 50 ms ...
STEADY_SPREAD_DB = 1.5  # ... and is a steady noise, left in, when their levels' standard deviation is below this
STEADY_SKIP_S = 0.4  # from this far into the quieter end: the last word's decay in the room is not steady


def talker_end(audio: np.ndarray, trim_db: float) -> int:
    """The number of leading samples of ``audio`` that the talker's speech covers: up to TRAIL_KEEP_S after the end
    of the last TRAIL_WINDOW_S window within ``trim_db`` of the loudest window; all of it when ``trim_db`` is 0
    (off), when the audio is shorter than a window or silent, when less than MIN_REMOVAL_S would be left out, or
    when what would be left out is a steady noise (module docstring)."""
    window = int(TRAIL_WINDOW_S * SAMPLE_RATE)
    if trim_db == 0.0 or len(audio) <= window:
        return len(audio)
    starts, energies = short_time_energy(audio, window, SAMPLE_RATE // 100)
    loudest = energies.max()
    if loudest <= 0.0:
        return len(audio)
    last_loud = int(starts[np.flatnonzero(energies >= loudest * 10.0 ** (-trim_db / 10.0))[-1]])
    end = last_loud + window + int(TRAIL_KEEP_S * SAMPLE_RATE)
    if len(audio) - end < int(MIN_REMOVAL_S * SAMPLE_RATE) or is_steady(audio[end + int(STEADY_SKIP_S * SAMPLE_RATE):]):
        return len(audio)
    return end


def is_steady(audio: np.ndarray) -> bool:
    """Whether the level of ``audio`` stays within STEADY_SPREAD_DB (standard deviation) over STEADY_WINDOW_S
    windows: a fan, not a voice. Digital silence is steady too (nothing to leave out)."""
    window = int(STEADY_WINDOW_S * SAMPLE_RATE)
    _, energies = short_time_energy(audio, window, window // 2)
    if len(energies) < 2:
        return True
    levels_db = 10.0 * np.log10(energies / window + 1e-10)  # the floor: digital silence, -100 dB
    return float(np.std(levels_db)) < STEADY_SPREAD_DB
