"""Silero VAD, its options, and the streaming segmenter."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from vad_stand_in import EnergyVad

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.vad import (
    SILERO_MODEL_PATH,
    Segmenter,
    SileroVad,
    SpeechAudio,
    SpeechEnded,
    SpeechStarted,
    VadOptions,
)

# Short utterances (1.6 to 5 s) of five speakers from five sources, each without a long internal pause.
BOUNDARY_CLIPS = [
    "librispeech_testclean_kw/1089-134686-0001.flac",
    "librispeech_testclean_fakebob61/61-70968-0004.flac",
    "pocketsphinx_librivox/sense_and_sensibility_01_austen_64kb-0880.flac",
    "lhotse_fixtures/LJ002-0035.flac",
    "misc_clips/fw_stereo_right_260-123286-0001.flac",
    "librispeech_testclean_kw/1089-134691-0000.flac",
    "ljspeech_coqui/LJ001-0002.flac",
]

# Where the test requirements are not installed (the core's tests under arm64 emulation, test/model/test_arm64.py).
FASTER_WHISPER_ABSENT = "faster-whisper (requirements-test.txt), the reference of these comparisons, is not installed"


@pytest.fixture(scope="module")
def silero():
    return SileroVad()


def feed_in_chunks(segmenter, audio, rng, sizes=(1, 100, 511, 512, 1600, 4800, 16000)):
    events, fed = [], 0
    while fed < len(audio):
        size = int(rng.choice(sizes))
        events += segmenter.feed(audio[fed : fed + size])
        fed += size
    return events + segmenter.flush()


def utterances(events, audio):
    """Checks the event grammar and the audio of each utterance; returns [(start, end, forced)]."""
    found, current = [], None
    for event in events:
        if isinstance(event, SpeechStarted):
            assert current is None, "an utterance started inside another"
            current = [event.start, event.start]
        elif isinstance(event, SpeechAudio):
            assert current is not None and event.start == current[1], "audio not contiguous"
            np.testing.assert_array_equal(event.audio, audio[event.start : event.start + len(event.audio)])
            current[1] += len(event.audio)
        else:
            assert isinstance(event, SpeechEnded)
            assert current is not None and (event.start, event.end) == tuple(current), "end does not match the audio"
            found.append((event.start, event.end, event.forced))
            current = None
    assert current is None, "flush left an utterance open"
    return found


def assert_accounts_for_every_sample(found, n_samples):
    """Utterances in order, disjoint, inside the stream: utterances plus the silences between them = the stream."""
    silence, position = 0, 0
    for start, end, _ in found:
        assert position <= start < end <= n_samples
        silence += start - position
        position = end
    silence += n_samples - position
    assert sum(end - start for start, end, _ in found) + silence == n_samples


def test_the_package_ships_faster_whispers_silero_model_byte_for_byte():
    get_assets_path = pytest.importorskip("faster_whisper.utils", reason=FASTER_WHISPER_ABSENT).get_assets_path

    assert SILERO_MODEL_PATH.read_bytes() == (Path(get_assets_path()) / "silero_vad_v6.onnx").read_bytes()
    with pytest.raises(HailoWhisperError, match="not found.*nowhere.onnx"):
        SileroVad("/nowhere.onnx")


def test_silero_probabilities_do_not_depend_on_chunking(silero, sample_audio):
    """Streaming in odd chunks gives what faster-whisper's batched Silero call gives on the whole clip."""
    get_vad_model = pytest.importorskip("faster_whisper.vad", reason=FASTER_WHISPER_ABSENT).get_vad_model

    audio = sample_audio("librispeech_testclean_kw/1089-134691-0001.flac")
    usable = audio[: len(audio) // 512 * 512]
    reference = get_vad_model()(usable).reshape(-1)
    silero.reset()
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.integers(0, len(usable), 40))
    streamed = np.concatenate([silero.process(piece) for piece in np.split(usable, cuts)])
    assert len(streamed) == len(reference)
    np.testing.assert_allclose(streamed, reference, atol=1e-5)
    assert reference.max() > 0.9 and reference.min() < 0.1


@pytest.mark.parametrize(
    "change,error",
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.0}, "threshold"),
        ({"neg_threshold": 0.6}, "neg_threshold"),
        ({"neg_threshold": 0.0}, "neg_threshold"),
        ({"min_silence_ms": -1}, "min_silence_ms"),
        ({"speech_pad_ms": 700}, "speech_pad_ms"),
        ({"pre_roll_ms": float("nan")}, "pre_roll_ms"),
        ({"min_speech_ms": "250"}, "min_speech_ms"),
        ({"max_speech_s": 0.5}, "max_speech_s"),
        ({"max_speech_s": 2.0, "min_speech_ms": 1900}, "max_speech_s"),
        ({"threshold": True}, "threshold"),
    ],
)
def test_vad_options_validation_names_the_option(change, error):
    with pytest.raises(HailoWhisperError, match=error):
        dataclasses.replace(VadOptions(), **change)


def test_vad_option_out_of_range_says_the_declared_range():
    with pytest.raises(HailoWhisperError) as raised:
        VadOptions(threshold=1.5)
    assert str(raised.value) == "VadOptions option threshold must be in [0.01, 0.99], not 1.5"


def test_vad_options_defaults_and_integers_are_valid():
    assert VadOptions().max_speech_s == 10.0  # what the nodes run with: the 10 s encoder window
    options = VadOptions(min_silence_ms=500, max_speech_s=10)
    assert options.silence_threshold == pytest.approx(0.35)
    assert VadOptions(neg_threshold=0.2).silence_threshold == 0.2


# Runs of silence, of speech (probability 1), and of sound between the thresholds (probability 0.4 with EnergyVad).
SILENCE, SPEECH, UNSURE = 0.0, 0.3, 0.04
runs_of_sound = st.lists(st.tuples(st.sampled_from([SILENCE, SPEECH, UNSURE]), st.integers(1, 40000)), max_size=12)


@settings(max_examples=100, deadline=None)
# CI found this one: a pause that ends at the last window before max_speech_s, whose pad reached beyond it.
@example(runs=[(SILENCE, 5), (SPEECH, 15360), (SILENCE, 1019)], seed=0, min_silence_ms=0, pads_ms=(30, 0),
         min_speech_ms=0, max_speech_s=1.0)
@given(
    runs=runs_of_sound,
    seed=st.integers(0, 2**16),
    min_silence_ms=st.sampled_from([0, 100, 600]),
    pads_ms=st.sampled_from([(0, 0), (30, 0), (100, 200)]),
    min_speech_ms=st.sampled_from([0, 250]),
    max_speech_s=st.sampled_from([1.0, 2.5, 30.0]),
)
def test_segmenter_accounts_for_every_sample(runs, seed, min_silence_ms, pads_ms, min_speech_ms, max_speech_s):
    """Any speech/silence pattern, chunking and options: utterance audio is exactly the stream's, utterances are
    disjoint and within max_speech_s, and (forced cuts included) the inside of every real speech run is kept."""
    speech_pad_ms, pre_roll_ms = pads_ms
    options = VadOptions(
        min_silence_ms=max(min_silence_ms, speech_pad_ms),
        speech_pad_ms=speech_pad_ms,
        pre_roll_ms=pre_roll_ms,
        min_speech_ms=min_speech_ms,
        max_speech_s=max_speech_s,
    )
    rng = np.random.default_rng(seed)
    audio = np.concatenate([np.zeros(0)] + [rng.normal(0, level, n) for level, n in runs]).astype(np.float32)
    found = utterances(feed_in_chunks(Segmenter(options, EnergyVad()), audio, rng), audio)
    assert_accounts_for_every_sample(found, len(audio))
    assert all(end - start <= round(max_speech_s * SAMPLE_RATE) for start, end, _ in found)
    position = 0
    for level, n in runs:
        if level == SPEECH and n >= (min_speech_ms / 1000 * SAMPLE_RATE) + 3 * 512:
            inside = np.zeros(n, bool)
            for start, end, _ in found:
                inside[max(start - position, 0) : max(end - position, 0)] = True
            assert inside[512:-512].all(), "speech left out of every utterance"
        position += n


def speech_with_gaps(rng, sample_audio):
    """Real clips, trimmed to their speech by energy, between 1-2 s of silence; returns audio and true [start, end)."""
    parts, truth, position = [np.zeros(SAMPLE_RATE, np.float32)], [], SAMPLE_RATE
    for clip in BOUNDARY_CLIPS:
        audio = sample_audio(clip)
        frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
        level_db = 10 * np.log10((frames**2).mean(axis=1) + 1e-10)
        # Speech: 15 dB over the clip's noise floor and within 40 dB of its loudest 10 ms.
        active = np.nonzero(level_db > max(np.percentile(level_db, 10) + 15, level_db.max() - 40))[0]
        speech = audio[active[0] * 160 : (active[-1] + 1) * 160]
        gap = int(rng.uniform(1.0, 2.0) * SAMPLE_RATE)
        truth.append((position, position + len(speech)))
        parts += [speech, np.zeros(gap, np.float32)]
        position += len(speech) + gap
    return np.concatenate(parts), truth


def test_boundaries_on_real_speech(silero, sample_audio):
    rng = np.random.default_rng(3)
    audio, truth = speech_with_gaps(rng, sample_audio)
    options = VadOptions(speech_pad_ms=100, pre_roll_ms=100)
    segmenter = Segmenter(options, silero)
    found = utterances(feed_in_chunks(segmenter, audio, rng), audio)
    assert_accounts_for_every_sample(found, len(audio))
    assert utterances(segmenter.feed(audio) + segmenter.flush(), audio) == found  # chunking changes nothing
    assert len(found) == len(truth)
    errors = np.array([(start - s, end - e) for (start, end, _), (s, e) in zip(found, truth)]) / SAMPLE_RATE
    print(f"\nboundary errors [s] (pad 0.1, pre-roll 0.1): start {errors[:, 0].round(2)}, end {errors[:, 1].round(2)}")
    assert np.abs(errors).max() < 0.3


def test_long_speech_is_cut_at_quiet_points(silero, sample_audio):
    """55 s of continuous reading, max_speech_s=5: every cut in the quietest quarter of its search region."""
    audio = np.concatenate([sample_audio(f"ljspeech_coqui/LJ001-00{i:02d}.flac") for i in (1, 3, 5, 14, 15, 23)])
    rng = np.random.default_rng(4)
    found = utterances(feed_in_chunks(Segmenter(VadOptions(max_speech_s=5), silero), audio, rng), audio)
    assert_accounts_for_every_sample(found, len(audio))
    cuts = [(start, end) for start, end, forced in found if forced]
    assert len(cuts) >= 8

    def level_db(at):
        return 10 * np.log10(np.mean(audio[at - 256 : at + 256] ** 2) + 1e-12)

    ranks = []
    for start, end in cuts:
        limit = start + 5 * SAMPLE_RATE
        region = [level_db(at) for at in range(limit - 24000 + 256, limit - 255, 256)]
        ranks.append(np.mean(np.array(region) < level_db(end)))
    print(f"\ncut energy rank within the last 1.5 s (0 = quietest): {np.round(ranks, 2)}")
    assert max(ranks) <= 0.25


@pytest.mark.parametrize(
    "name,make",
    [
        ("silence", lambda rng, t: np.zeros_like(t)),
        ("white noise 0.1", lambda rng, t: rng.uniform(-0.1, 0.1, len(t))),
        ("gaussian noise 0.1", lambda rng, t: rng.normal(0, 0.1, len(t))),
        ("100 Hz hum", lambda rng, t: 0.3 * np.sin(2 * np.pi * 100 * t)),
        ("50 Hz mains, 7 harmonics", lambda rng, t: sum(0.2 / k * np.sin(2 * np.pi * 50 * k * t) for k in range(1, 8))),
    ],
)
def test_no_utterance_from_noise(silero, name, make):
    rng = np.random.default_rng(5)
    t = np.arange(20 * SAMPLE_RATE) / SAMPLE_RATE
    audio = make(rng, t).astype(np.float32)
    assert feed_in_chunks(Segmenter(VadOptions(), silero), audio, rng) == [], name


def test_short_click_is_not_an_utterance(silero, sample_audio):
    """A 60 ms burst: Silero may call it speech, but min_speech_ms keeps it from becoming an utterance."""
    rng = np.random.default_rng(6)
    speech = sample_audio("librispeech_testclean_kw/1089-134691-0000.flac")
    burst = speech[int(0.9 * SAMPLE_RATE) : int(0.96 * SAMPLE_RATE)]
    audio = np.concatenate([np.zeros(SAMPLE_RATE), burst, np.zeros(SAMPLE_RATE)]).astype(np.float32)
    assert feed_in_chunks(Segmenter(VadOptions(), silero), audio, rng) == []


def test_options_changed_mid_utterance_keep_the_stream_whole(silero, sample_audio):
    """The node swaps options per window: shrinking pads and max_speech_s mid-utterance loses and repeats nothing."""
    audio = np.concatenate([sample_audio(f"ljspeech_coqui/LJ001-00{i:02d}.flac") for i in (1, 3)])
    segmenter = Segmenter(VadOptions(max_speech_s=10, pre_roll_ms=500), silero)
    events = segmenter.feed(audio[: 7 * SAMPLE_RATE])
    segmenter.options = VadOptions(max_speech_s=2, speech_pad_ms=0, min_silence_ms=100)
    events += segmenter.feed(audio[7 * SAMPLE_RATE :]) + segmenter.flush()
    assert_accounts_for_every_sample(utterances(events, audio), len(audio))
