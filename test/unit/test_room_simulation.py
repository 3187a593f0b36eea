"""The simulated rooms of `hailo-whisper rooms` (evaluation.room_simulation) on a shipped clip: the three sets of one
room the same length with the talker alike in each, the background talkers 10 dB below the talker and the fan 10-20
dB, both going on after it; what is drawn comes from the seed alone (the image-source method draws nothing)."""

import numpy as np
import pytest

from hailo_whisper_ros.core.constants import SAMPLE_RATE


def test_the_sets_of_one_room_differ_by_what_is_added_at_its_level(speech_samples):
    pytest.importorskip("pyroomacoustics", reason="pip install -r requirements-test.txt (pyroomacoustics)")
    from hailo_whisper_ros.core.audio import load_audio
    from hailo_whisper_ros.evaluation.datasets import load_dataset
    from hailo_whisper_ros.evaluation.room_simulation import RANGES, background_speech, simulate_room

    clips = load_dataset(speech_samples)
    audio = [load_audio(clip.audio_path) for clip in clips]
    index = next(number for number, clip in enumerate(clips) if clip.id.endswith("LJ002-0020"))
    drawn = [background_speech(index, clips, audio, SAMPLE_RATE, np.random.default_rng(30)) for _ in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(*drawn))
    first = simulate_room(index, clips, audio)
    clean = first["clean"].astype(np.float64)
    tail_s = (len(clean) - len(audio[index])) / SAMPLE_RATE
    assert RANGES.background_tail_s[0] <= tail_s <= RANGES.background_tail_s[1]
    assert len({len(mix) for mix in first.values()}) == 1
    talker = slice(0, len(audio[index]))
    for name, added_db in (("background-talkers", -RANGES.background_below_db), ("steady-noise", None)):
        added = first[name].astype(np.float64) - clean
        level_db = 10 * np.log10(np.mean(added[talker] ** 2) / np.mean(clean[talker] ** 2))
        if added_db is None:
            assert -RANGES.noise_snr_db[1] - 0.5 <= level_db <= -RANGES.noise_snr_db[0] + 0.5
        else:
            assert level_db == pytest.approx(added_db, abs=1.0)
        assert np.mean(added[len(audio[index]):] ** 2) > 0.01 * np.mean(added[talker] ** 2)  # goes on after
