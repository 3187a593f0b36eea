"""The live-stream audio front end: every driver mistake is converted around or rejected, counted, never raised."""

import numpy as np
import pytest

from hailo_whisper_ros.core.audio import resample
from hailo_whisper_ros.core.audio_input import AudioFormat, AudioFrontEnd
from hailo_whisper_ros.core.errors import HailoWhisperError


def s16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def tone(seconds: float, rate: int, frequency: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def test_48k_stereo_chunks_become_the_16k_mono_stream():
    front_end = AudioFrontEnd(AudioFormat(48000, 2, "S16LE"))
    mono = tone(1.0, 48000)
    stereo = np.repeat(mono[:, None], 2, axis=1).reshape(-1)
    chunks = [front_end.convert(s16(stereo[i : i + 2 * 4800])) for i in range(0, len(stereo), 2 * 4800)]
    out = np.concatenate(chunks)
    expected = resample((mono * 32767).astype(np.int16) / 32768.0, 48000, 16000)
    # The streaming resampler holds back under 1.5 ms at the end; all that it released matches the one-shot output.
    assert 16000 - 30 <= len(out) <= 16000
    np.testing.assert_allclose(out, expected[: len(out)], atol=1e-4)
    assert not front_end.rejected


def test_odd_byte_counts_lose_only_the_partial_frame_and_are_counted():
    front_end = AudioFrontEnd(AudioFormat(16000, 1, "S16LE"))
    data = s16(tone(0.1, 16000))
    out = front_end.convert(data + b"\x01")
    assert len(out) == 1600
    assert front_end.rejected["partial_frame"] == 1
    assert "1 trailing bytes" in front_end.last_error


def test_nan_inf_and_overrange_floats_are_repaired_and_counted():
    front_end = AudioFrontEnd(AudioFormat(16000, 1, "F32LE"))
    samples = np.array([0.1, np.nan, np.inf, -np.inf, 3.0, -0.2], dtype="<f4")
    out = front_end.convert(samples.tobytes())
    assert np.all(np.isfinite(out)) and np.all(np.abs(out) <= 1.0)
    assert front_end.rejected["non_finite_samples"] == 3
    assert front_end.rejected["clipped_samples"] == 1


def test_empty_messages_are_counted():
    front_end = AudioFrontEnd()
    assert len(front_end.convert(b"")) == 0
    assert front_end.rejected["empty_message"] == 1


@pytest.mark.parametrize(
    "declared, kind",
    [
        ((16000, 0, "S16LE", "WAVE"), "invalid_format"),
        ((0, 1, "S16LE", "WAVE"), "invalid_format"),
        ((16000, 1, "U8", "WAVE"), "invalid_format"),
        ((16000, 1, "S16LE", "MP3"), "unsupported_coding"),
    ],
)
def test_invalid_audio_info_stops_conversion_until_a_valid_one(declared, kind):
    front_end = AudioFrontEnd()
    assert not front_end.declare(*declared)
    assert front_end.rejected[kind] == 1
    assert len(front_end.convert(s16(tone(0.1, 16000)))) == 0
    assert front_end.rejected["unusable_format"] == 1
    assert front_end.declare(16000, 1, "S16LE", "WAVE")
    assert len(front_end.convert(s16(tone(0.1, 16000)))) == 1600


def test_sample_rate_change_mid_stream_keeps_the_output_continuous():
    front_end = AudioFrontEnd(AudioFormat(48000, 1, "S16LE"))
    first = front_end.convert(s16(tone(0.5, 48000)))
    assert front_end.declare(16000, 1, "S16LE", "WAVE")
    second = front_end.convert(s16(tone(0.5, 16000)))
    # The 48 kHz resampler's held-back tail is delivered with the first 16 kHz chunk: 1 s in, 1 s out.
    assert len(first) + len(second) == 16000
    assert front_end.format_changes == 1


def test_audio_format_validation_names_the_problem():
    with pytest.raises(HailoWhisperError, match=r"AudioFormat option channels must be in \[1, 32\], not 0"):
        AudioFormat(16000, 0)
    with pytest.raises(HailoWhisperError, match="MP3"):
        AudioFormat(coding_format="MP3")


def test_the_stream_clock_times_each_sample_from_the_mark_before_it():
    from hailo_whisper_ros.core.audio_input import StreamClock

    clock = StreamClock(marks=3)
    assert clock.time_ns(100) == 0  # nothing marked yet
    clock.mark(0, 5_000_000_000)
    clock.mark(16000, 7_000_000_000)  # a second of audio later, but two seconds of time: a gap (gated audio)
    assert clock.time_ns(8000) == 5_500_000_000
    assert clock.time_ns(16000) == 7_000_000_000 and clock.time_ns(24000) == 7_500_000_000
    clock.mark(32000, 8_000_000_000)
    clock.mark(48000, 9_000_000_000)  # the first mark is forgotten: older samples count back from the oldest kept
    assert clock.time_ns(8000) == 6_500_000_000
