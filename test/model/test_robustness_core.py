"""Robustness of the core: the audio front end under arbitrary input, the streaming recognizer under overload, the
soak's accounting, and the soak command itself."""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hailo_whisper_ros.cli.main import main as cli_main
from hailo_whisper_ros.core.audio_input import AudioFrontEnd
from hailo_whisper_ros.core.transcripts import StreamingOptions
from hailo_whisper_ros.evaluation.soak import FinalSpan, SoakClip, SoakInput, account, run_soak

# Rates a driver may declare: the usual ones, any multiple of 50 Hz (bounded so that a filter design stays cheap; an
# arbitrary prime rate costs a second), and invalid ones.
RATES = st.one_of(
    st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000, 96000, 384000]),
    st.integers(80, 2000).map(lambda k: 50 * k),
    st.sampled_from([0, -16000, 3999, 384001, 2**32 - 1]),
)
FORMATS = st.sampled_from(["S16LE", "S32LE", "F32LE", "s16", "F32", "U8", "S24LE", "", "MP3"])
CODINGS = st.sampled_from(["WAVE", "", "PCM", "raw", "MP3", "opus"])
FLOATS = st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), max_size=800)
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("declare"), RATES, st.integers(-1, 40), FORMATS, CODINGS),
        st.tuples(st.just("bytes"), st.binary(max_size=6000)),
        # A short pattern repeated: periodic, often loud signals (square waves), where a resampler rings most.
        st.tuples(st.just("bytes"), st.binary(min_size=1, max_size=64).map(lambda unit: unit * (6000 // len(unit)))),
        # Floats as F32LE bytes: NaN, Inf, huge and tiny values where the declared format is F32LE.
        st.tuples(st.just("bytes"), FLOATS.map(lambda values: np.array(values, "<f4").tobytes())),
    ),
    max_size=12,
)


@given(STEPS)
@settings(max_examples=300, deadline=None)
def test_the_front_end_takes_any_bytes_in_any_declared_format(steps):
    front_end = AudioFrontEnd()
    for step in steps:
        if step[0] == "declare":
            front_end.declare(*step[1:])
            continue
        out = front_end.convert(step[1])
        assert out.dtype == np.float32 and out.ndim == 1
        assert np.all(np.isfinite(out)) and np.all(np.abs(out) <= 1.0)
    # Reasons are one line each, whatever happened before (they once nested without bound).
    assert all(len(reason) < 300 for reason in front_end.reasons.values())
    assert len(front_end.last_error) < 300


def clip(index: int, start_s: float, end_s: float, reference: str = "words") -> SoakClip:
    return SoakClip(index, 0, reference, f"clip{index}.wav", int(start_s * 16000), int(end_s * 16000))


def final(start_s: float, end_s: float, text: str) -> FinalSpan:
    return FinalSpan(int(start_s * 16000), int(end_s * 16000), text)


def test_accounting_puts_every_clip_in_one_category():
    clips = [clip(0, 1, 3, "one two"), clip(1, 5, 7), clip(2, 9, 11), clip(3, 13, 15), clip(4, 17, 19),
             clip(5, 21, 22, "both of"), clip(6, 23.5, 25)]
    finals = [
        final(0.8, 3.2, "one two"),  # clip 0, pads around its speech
        final(8.7, 11.1, ""),  # clip 2: judged no speech
        final(12.9, 14.0, "cut short"),  # clip 3 lost its end to the queue, its start still heard
        final(16.0, 16.3, "nothing here"),  # words in a silence
        final(20.8, 24.2, "both of them"),  # clips 5 and 6 in one final: both heard, clip 5 (most overlap) owns it
    ]
    accounting = account(clips, finals, dropped=[(int(14.0 * 16000), int(14.5 * 16000))])
    assert (accounting.expected, accounting.transcribed, accounting.dropped, accounting.dropped_heard,
            accounting.no_speech) == (7, 3, 1, 1, 1)
    assert [c.index for c in accounting.missing] == [1, 4] and not accounting.accounted
    assert [f.text for f in accounting.stray_finals] == ["nothing here"]
    # Clip 0 right, clip 5 with its neighbour's word inserted (1 error in 4 words); clip 6 has no text of its own.
    assert accounting.wer == 0.25


def test_overload_keeps_queue_and_result_delay_bounded_counts_drops_and_memory_flat(recognizer, sample_clips):
    # Two passes over the same clips, fed about twice as fast as this machine transcribes: the second pass meets
    # nothing new, so its memory must not grow.
    clips = list(sample_clips.values())[:10]
    soak_input = SoakInput(clips, minutes=1.0)
    pass_s = len(soak_input.recording.audio) / 16000
    soak_input = SoakInput(clips, minutes=2 * pass_s / 60 - 0.01)
    report = run_soak(recognizer, soak_input, speed=20.0, streaming=StreamingOptions(max_queue_s=2.0))
    assert report.exception_count == 0 and report.inference_errors == 0, report.exceptions
    assert report.audio_dropped_s > 5.0
    assert math.isclose(report.audio_in_s, report.audio_processed_s + report.audio_dropped_s, abs_tol=1e-3)
    assert report.max_queue_depth_s <= 2.0
    # Unbounded, the backlog would reach most of the audio; bounded, a final waits on 2 s of audio at most.
    assert report.result_delay_s["max"] < 3.0, report.result_delay_s
    accounting = report.accounting
    assert accounting.accounted and accounting.dropped > 0, accounting
    # Recognition goes on all along: most utterances still get a final, of the audio the queue kept.
    assert accounting.transcribed + accounting.dropped_heard >= accounting.expected / 2, accounting
    assert report.rss_mb["end"] <= 1.05 * report.rss_mb["middle"], report.rss_mb


def test_soak_command_prints_the_figures_and_passes(model_dir, tmp_path, capsys):
    report_path = tmp_path / "soak.json"
    status = cli_main(["soak", "--minutes", "0.5", "--model-dir", str(model_dir), "--json", str(report_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    for label in ("audio in (s)", "audio dropped (s)", "max queue depth (s)", "utterances expected",
                  "missing (unaccounted)", "resident memory middle (MB)", "exceptions", "soak passed"):
        assert label in out, out
    report = json.loads(report_path.read_text())
    accounting = report["accounting"]
    assert accounting["transcribed"] == accounting["expected"] >= 3 and report["audio_dropped_s"] == 0
    assert report["exception_count"] == 0 and accounting["wer"] < 0.2
    assert all(report["rss_mb"][moment] > 0 for moment in ("start", "middle", "end"))
