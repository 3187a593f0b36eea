"""Audio in: file loading, resampling (one-shot and streaming), PCM conversion."""

import numpy as np
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import resample_poly

from hailo_whisper_ros.core.audio import (
    PCM_FORMATS,
    PcmStream,
    StreamingResampler,
    load_audio,
    pcm_format,
    pcm_to_float,
    resample,
)
from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.errors import HailoWhisperError

RATE_PAIRS = [(48000, 16000), (44100, 16000), (22050, 16000), (8000, 16000), (16000, 48000), (16000, 16000)]


def tone(frequency, rate, seconds, amplitude=0.5):
    return (amplitude * np.sin(2 * np.pi * frequency * np.arange(int(rate * seconds)) / rate)).astype(np.float32)


def amplitude_at(signal, frequency, rate):
    """Amplitude of one frequency, by projection on a complex exponential (edges excluded)."""
    middle = signal[len(signal) // 4 : -len(signal) // 4]
    t = np.arange(len(middle)) / rate
    return 2 * abs(np.mean(middle * np.exp(-2j * np.pi * frequency * t)))


def test_load_audio_mixes_channels_and_resamples(tmp_path):
    left = tone(440, 48000, 1.0)
    path = tmp_path / "stereo_48k.wav"
    soundfile.write(path, np.stack([left, 0.5 * left], axis=1), 48000, subtype="FLOAT")
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == SAMPLE_RATE
    assert amplitude_at(audio, 440, SAMPLE_RATE) == pytest.approx(0.375, rel=0.01)


def test_load_audio_of_real_clips(speech_samples):
    """A 44.1 kHz stereo and a 22.05 kHz mono clip of the shipped samples, lengths as the rate ratio says."""
    jfk_path = speech_samples / "jfk" / "jfk.flac"
    jfk = load_audio(jfk_path)
    assert soundfile.info(jfk_path).channels == 2
    assert len(jfk) == -(-soundfile.info(jfk_path).frames * 160 // 441)
    lj_path = speech_samples / "ljspeech_coqui" / "LJ001-0002.flac"
    assert len(load_audio(lj_path)) == -(-soundfile.info(lj_path).frames * 320 // 441)
    assert 0.05 < np.abs(jfk).max() <= 1.0


def test_load_audio_errors_name_the_file(tmp_path):
    with pytest.raises(HailoWhisperError, match="not found.*missing.wav"):
        load_audio(tmp_path / "missing.wav")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x01garbage" * 10)
    with pytest.raises(HailoWhisperError, match="corrupt.wav"):
        load_audio(corrupt)


@pytest.mark.parametrize("from_rate,to_rate", RATE_PAIRS)
def test_resample_is_scipy_resample_poly(from_rate, to_rate):
    x = np.random.default_rng(0).normal(0, 0.2, from_rate // 2).astype(np.float32)
    y = resample(x, from_rate, to_rate)
    assert y.dtype == np.float32 and len(y) == -(-len(x) * to_rate // from_rate)
    if from_rate != to_rate:
        divisor = np.gcd(from_rate, to_rate)
        np.testing.assert_allclose(y, resample_poly(x, to_rate // divisor, from_rate // divisor), atol=1e-6)


def test_resample_is_band_limited():
    """48 -> 16 kHz keeps a 3 kHz tone and removes a 10 kHz one (plain decimation would alias it to 6 kHz)."""
    kept = resample(tone(3000, 48000, 1.0), 48000, 16000)
    assert amplitude_at(kept, 3000, 16000) == pytest.approx(0.5, rel=0.01)
    aliased = resample(tone(10000, 48000, 1.0), 48000, 16000)
    assert amplitude_at(aliased, 6000, 16000) < 0.5 * 10 ** (-40 / 20)


@pytest.mark.parametrize("bad", [0, -16000, 44100.5, "16k", True])
def test_resample_rejects_bad_rates(bad):
    with pytest.raises(HailoWhisperError, match="sample rate"):
        resample(np.zeros(10, np.float32), bad, 16000)


@pytest.mark.parametrize("from_rate,to_rate", RATE_PAIRS)
def test_streaming_resampler_equals_one_shot(from_rate, to_rate):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.2, int(from_rate * 1.3)).astype(np.float32)
    resampler = StreamingResampler(from_rate, to_rate)
    pieces, fed, lag = [], 0, 0
    while fed < len(x):
        size = int(rng.choice([1, 7, 480, 1024, 4801]))
        pieces.append(resampler.process(x[fed : fed + size]))
        fed = min(fed + size, len(x))
        produced = sum(map(len, pieces))
        lag = max(lag, fed * to_rate / from_rate - produced)
    pieces.append(resampler.flush())
    y = np.concatenate(pieces)
    one_shot = resample(x, from_rate, to_rate)
    assert len(y) == len(one_shot)  # no drift
    np.testing.assert_allclose(y, one_shot, atol=1e-5)
    assert lag * 1000 / to_rate < 1.5  # output held back under 1.5 ms


def test_streaming_resampler_restarts_after_flush():
    x = tone(1000, 48000, 0.2)
    resampler = StreamingResampler(48000, 16000)
    first = np.concatenate([resampler.process(x), resampler.flush()])
    second = np.concatenate([resampler.process(x), resampler.flush()])
    np.testing.assert_array_equal(first, second)


def test_pcm_formats_and_scaling():
    s16 = np.array([-32768, 0, 16384, 32767], "<i2").tobytes()
    np.testing.assert_array_equal(pcm_to_float(s16, "S16LE", 1).samples, [-1.0, 0.0, 0.5, 32767 / 32768])
    s32 = np.array([-(2**31), 2**30, 2**31 - 1], "<i4").tobytes()
    np.testing.assert_allclose(pcm_to_float(s32, "S32LE", 1).samples, [-1.0, 0.5, 1.0])
    f32 = np.array([0.25, -0.75], "<f4").tobytes()
    np.testing.assert_array_equal(pcm_to_float(f32, "F32LE", 1).samples, [0.25, -0.75])
    aliases = {"s16le": "S16LE", "S16": "S16LE", "s32": "S32LE", "f32": "F32LE", " F32LE ": "F32LE"}
    assert {alias: pcm_format(alias) for alias in aliases} == aliases


def test_pcm_channels_are_averaged_and_partial_frames_counted():
    stereo = np.array([[1000, 3000], [-2000, 2000]], "<i2").tobytes() + b"\x01\x02\x03"
    converted = pcm_to_float(stereo, "S16LE", 2)
    np.testing.assert_allclose(converted.samples, [2000 / 32768, 0.0])
    assert converted.partial_frame_bytes == 3


def test_pcm_non_finite_and_out_of_range_floats():
    data = np.array([np.nan, 0.5, np.inf, -3.0, -np.inf, 1.0], "<f4").tobytes()
    converted = pcm_to_float(data, "F32LE", 1)
    np.testing.assert_array_equal(converted.samples, [0.0, 0.5, 0.0, -1.0, 0.0, 1.0])
    assert (converted.non_finite_samples, converted.clipped_samples) == (3, 1)


@pytest.mark.parametrize(
    "sample_format,channels,error", [("U8", 1, "U8"), ("S16BE", 1, "S16BE"), ("S16LE", 0, "channel")]
)
def test_pcm_rejects_unknown_format_and_channels(sample_format, channels, error):
    with pytest.raises(HailoWhisperError, match=error):
        pcm_to_float(b"\x00\x00", sample_format, channels)


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=300),
    sample_format=st.sampled_from(PCM_FORMATS + ("s16", "F32", "S24LE", "")),
    channels=st.integers(1, 8),
)
def test_pcm_conversion_of_arbitrary_bytes(data, sample_format, channels):
    """Any bytes: finite float32 in [-1, 1], one sample per whole frame, the rest counted; only bad formats raise."""
    try:
        converted = pcm_to_float(data, sample_format, channels)
    except HailoWhisperError:
        assert sample_format in ("S24LE", "")
        return
    frame_bytes = {"S16LE": 2, "S32LE": 4, "F32LE": 4}[pcm_format(sample_format)] * channels
    samples = converted.samples
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) == len(data) // frame_bytes
    assert converted.partial_frame_bytes == len(data) % frame_bytes
    assert np.all(np.isfinite(samples)) and np.all(np.abs(samples) <= 1.0)
    assert 0 <= converted.non_finite_samples + converted.clipped_samples <= len(samples) * channels


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=200), cuts=st.lists(st.integers(0, 200), max_size=6), channels=st.integers(1, 3))
def test_pcm_stream_loses_nothing_at_arbitrary_cuts(data, cuts, channels):
    stream = PcmStream("F32LE", channels)
    bounds = [0, *sorted(min(c, len(data)) for c in cuts), len(data)]
    samples = np.concatenate([stream.process(data[a:b]) for a, b in zip(bounds, bounds[1:])])
    whole = pcm_to_float(data, "F32LE", channels)
    np.testing.assert_array_equal(samples, whole.samples)
    assert stream.pending_bytes == whole.partial_frame_bytes
    assert (stream.non_finite_samples, stream.clipped_samples) == (whole.non_finite_samples, whole.clipped_samples)
