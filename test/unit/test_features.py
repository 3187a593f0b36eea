"""Whisper log-mel features against faster-whisper's FeatureExtractor on real speech (the shipped samples)."""

import time

import numpy as np
import pytest
from faster_whisper.feature_extractor import FeatureExtractor

from hailo_whisper_ros.core.constants import HOP_LENGTH, SAMPLE_RATE
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.features import LogMelExtractor, frames_for, mel_filterbank, pad_or_trim

THIRTY_SECONDS = 30 * SAMPLE_RATE


@pytest.fixture(scope="module")
def clips(sample_clips, sample_audio):
    """Every shipped clip, 1.5 to 11.7 s at 16, 22.05 and 44.1 kHz, by its relative path."""
    return {path: sample_audio(path) for path in sample_clips}


@pytest.fixture(scope="module")
def extractor():
    return LogMelExtractor(80)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_filterbank_is_librosa_slaney(n_mels):
    np.testing.assert_allclose(mel_filterbank(n_mels), FeatureExtractor.get_mel_filters(16000, 400, n_mels), atol=1e-7)


def test_window_is_periodic_hann(extractor):
    np.testing.assert_allclose(extractor.window, np.hanning(401)[:-1], atol=1e-7)


def test_audio_frames_match_faster_whisper(clips, extractor):
    """faster-whisper pads 160 zero samples and keeps frames_for(len) 'content frames': compare those."""
    faster_whisper = FeatureExtractor(feature_size=80)
    worst = 0.0
    for name, audio in clips.items():
        ours = extractor.log_mel(audio)
        reference = faster_whisper(audio)[:, : frames_for(len(audio))]
        assert ours.shape == reference.shape == (80, len(audio) // HOP_LENGTH), name
        worst = max(worst, float(np.abs(ours - reference).max()))
    print(f"\nmax |ours - faster-whisper| over {len(clips)} clips' audio frames: {worst:.2e}")
    assert worst < 1e-4


def test_encoder_windows_match_whisper_zero_padding(clips, extractor):
    """3000 and 1000 frames = Whisper's log-mel of the audio followed by 30 s of zeros (faster-whisper with
    padding=480000 computes exactly that), padding frames and the 80 dB floor included."""
    faster_whisper = FeatureExtractor(feature_size=80)
    worst = 0.0
    for audio in clips.values():
        reference = faster_whisper(audio, padding=THIRTY_SECONDS)
        for n_frames in (3000, 1000):
            if len(audio) <= n_frames * HOP_LENGTH:
                ours = extractor.log_mel(audio, n_frames)
                assert ours.shape == (80, n_frames)
                worst = max(worst, float(np.abs(ours - reference[:, :n_frames]).max()))
    print(f"\nmax |ours - Whisper zero-padded| for 10 s and 30 s windows: {worst:.2e}")
    assert worst < 1e-4


def test_dynamic_length_and_trimming_are_slices_of_the_full_window(clips, extractor):
    audio = clips["jfk/jfk.flac"]
    full = extractor.log_mel(audio, 3000)
    dynamic = frames_for(len(audio)) + frames_for(len(audio)) % 2
    np.testing.assert_array_equal(extractor.log_mel(audio, dynamic), full[:, :dynamic])
    np.testing.assert_array_equal(extractor.log_mel(audio, 500), full[:, :500])


def test_pad_or_trim_pads_with_zero_audio(clips, extractor):
    audio = clips["jfk/jfk.flac"]
    features = extractor.log_mel(audio)
    padded = pad_or_trim(features, 3000)
    np.testing.assert_allclose(padded[:, -1000:], extractor.log_mel(audio, 3000)[:, -1000:], atol=1e-6)
    np.testing.assert_array_equal(pad_or_trim(features, 100), features[:, :100])


def test_silence_and_large_v3_shapes(extractor):
    assert np.all(extractor.log_mel(np.zeros(16000, np.float32), 3000) == -1.5)  # log10(1e-10) = -10 -> -1.5
    assert extractor.log_mel(np.zeros(0, np.float32), 10).shape == (80, 10)
    assert LogMelExtractor(128).log_mel(np.zeros(16000, np.float32)).shape == (128, 100)


def test_bad_input_raises():
    with pytest.raises(HailoWhisperError, match="n_mels"):
        LogMelExtractor(64)
    with pytest.raises(HailoWhisperError, match="1-D"):
        LogMelExtractor().log_mel(np.zeros((2, 16000), np.float32))
    with pytest.raises(HailoWhisperError, match="n_frames"):
        LogMelExtractor().log_mel(np.zeros(16000, np.float32), -1)


def test_feature_time(clips, extractor):
    speech = np.concatenate(list(clips.values()))
    timings = {}
    for seconds, n_frames in ((10, 1000), (30, 3000)):
        audio = speech[: seconds * SAMPLE_RATE]
        extractor.log_mel(audio, n_frames)
        start = time.perf_counter()
        for _ in range(10):
            extractor.log_mel(audio, n_frames)
        timings[seconds] = (time.perf_counter() - start) / 10
    print(f"\nlog-mel time: 10 s {timings[10] * 1000:.1f} ms, 30 s {timings[30] * 1000:.1f} ms")
    assert timings[30] < 0.25  # generous: a slow CI core; measured about 8 ms
