"""Streaming recognition on a long real recording: finals, partials, timing, audio accounting, overload, options,
errors, reset, and the caption command."""

import dataclasses
import json
import logging
import time
from dataclasses import dataclass

import numpy as np
import pytest
import soundfile

from hailo_whisper_ros.cli.main import main as cli_main
from hailo_whisper_ros.core.audio import resample
from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.intake import AudioIntake, SpeechPaused
from hailo_whisper_ros.core.options import declared
from hailo_whisper_ros.core.streaming import ARRIVAL_PAUSE_S, StreamingTranscriber, UtteranceTranscriber
from hailo_whisper_ros.core.text import normalise
from hailo_whisper_ros.core.transcripts import FINAL, PARTIAL, StreamingOptions, stable_prefix
from hailo_whisper_ros.core.vad import SpeechAudio, SpeechEnded, SpeechStarted, VadOptions
from hailo_whisper_ros.evaluation.long_recording import build_long_recording
from hailo_whisper_ros.evaluation.scoring import word_errors

# Eight clips of six speakers and five recording set-ups, 1.5 to 11.7 s; the 11.7 s one is longer than the VAD's
# 10 s max_speech_s (the window of the 10 s encoder) and must be cut, and several have pauses inside their sentences.
MAX_SPEECH = VadOptions()
CLIPS = [
    "librispeech_testclean_fakebob61/61-70968-0016.flac",
    "lhotse_fixtures/LJ002-0020.flac",
    "librispeech_testclean_kw/1089-134691-0001.flac",
    "ljspeech_coqui/LJ001-0006.flac",
    "misc_clips/fw_stereo_right_260-123286-0001.flac",
    "lhotse_fixtures/2412-153948-0000.flac",
    "pocketsphinx_librivox/sense_and_sensibility_01_austen_64kb-0890.flac",
    "librispeech_testclean_fakebob61/61-70968-0060.flac",
]
BOUNDARY_TOLERANCE_S = 0.3
NO_PARTIALS = StreamingOptions(partial_interval_ms=0)
EVERY_SECOND = StreamingOptions(partial_interval_ms=1000, partial_budget=0.0)


def seconds(s: float) -> int:
    return int(round(s * SAMPLE_RATE))


@dataclass
class Run:
    events: list
    stats: object

    @property
    def finals(self):
        return [e for e in self.events if e.kind == FINAL]

    @property
    def partials(self):
        return [e for e in self.events if e.kind == PARTIAL]


def stream(recognizer, audio, chunk_samples, process_each_chunk=True, **options) -> Run:
    transcriber = StreamingTranscriber(recognizer, **{"vad": MAX_SPEECH, **options})
    events = []
    for start in range(0, len(audio), chunk_samples):
        transcriber.feed(audio[start : start + chunk_samples])
        if process_each_chunk:
            events += transcriber.process_pending()
    events += transcriber.flush()
    return Run(events, transcriber.stats())


def final_summary(run: Run):
    return [(e.utterance_id, e.text, e.start_sample, e.end_sample) for e in run.finals]


@pytest.fixture(scope="module")
def utterances(sample_clips):
    return [sample_clips[clip] for clip in CLIPS]


@pytest.fixture(scope="module")
def recording(utterances):
    return build_long_recording(utterances)


@pytest.fixture(scope="module")
def streamed(recognizer, recording):
    """The recording fed in 100 ms chunks, each processed at once, with partials every second (no budget to stretch
    their cadence: test_bounded_partials.py tests it)."""
    return stream(recognizer, recording.audio, seconds(0.1), streaming=EVERY_SECOND)


def finals_by_clip(run: Run, recording):
    """The finals whose speech falls around each clip's speech; every final must belong to exactly one clip."""
    grouped = [[] for _ in recording.clips]
    for final in run.finals:
        owners = [
            index
            for index, clip in enumerate(recording.clips)
            if final.speech_start_sample < clip.speech_end + seconds(0.5)
            and final.speech_end_sample > clip.speech_start - seconds(0.5)
        ]
        assert len(owners) == 1, f"final {final.text!r} at {final.speech_start_s:.2f} s belongs to clips {owners}"
        grouped[owners[0]].append(final)
    return grouped


def test_finals_reproduce_every_utterance_as_accurately_as_offline(
    recognizer, recording, utterances, streamed, sample_audio
):
    offline = [recognizer.transcribe(sample_audio(clip)).text for clip in CLIPS]
    grouped = finals_by_clip(streamed, recording)
    assert all(grouped), [clip.source for clip, finals in zip(recording.clips, grouped) if not finals]
    streamed_text = [" ".join(final.text for final in finals) for finals in grouped]
    references = [u.reference for u in utterances]
    offline_wer = word_errors(references, offline).wer
    streaming_wer = word_errors(references, streamed_text).wer
    assert streaming_wer <= offline_wer + 0.015, list(zip(map(normalise, streamed_text), map(normalise, offline)))
    # The 11.7 s clip exceeds the VAD's max_speech_s (10 s): cut, and continued without a gap.
    long_clip = grouped[CLIPS.index("lhotse_fixtures/2412-153948-0000.flac")]
    assert len(long_clip) == 2 and long_clip[0].end_sample == long_clip[1].start_sample


def test_final_times_match_the_speech_boundaries(recording, streamed):
    for clip, finals in zip(recording.clips, finals_by_clip(streamed, recording)):
        start_s = min(final.speech_start_s for final in finals)
        end_s = max(final.speech_end_s for final in finals)
        assert abs(start_s - clip.speech_start_s) <= BOUNDARY_TOLERANCE_S, (clip.source, start_s, clip.speech_start_s)
        assert abs(end_s - clip.speech_end_s) <= BOUNDARY_TOLERANCE_S, (clip.source, end_s, clip.speech_end_s)


def test_no_audio_is_lost(recording, streamed):
    finals = streamed.finals
    spans = [(f.start_sample, f.end_sample) for f in finals]
    assert spans == sorted(spans)
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:])), "utterances overlap"
    transcribed = np.zeros(len(recording.audio), dtype=bool)
    for start, end in spans:
        transcribed[start:end] = True
    untranscribed_speech = np.count_nonzero(recording.speech_mask() & ~transcribed)
    assert untranscribed_speech == 0, f"{untranscribed_speech / SAMPLE_RATE:.3f} s of speech in no utterance"
    stats = streamed.stats
    assert stats.audio_in_s == pytest.approx(recording.duration_s, abs=1e-9)
    assert stats.audio_processed_s == stats.audio_in_s and stats.audio_dropped_s == 0 and stats.queue_depth_s == 0
    assert stats.utterances == len(finals) and stats.errors == 0 and stats.no_speech_rejections == 0


def test_partials_come_before_their_final_and_grow_stably(streamed):
    stats = streamed.stats
    assert stats.partials == len(streamed.partials) >= 20 and stats.partials_skipped == 0
    final_position = {e.utterance_id: i for i, e in enumerate(streamed.events) if e.kind == FINAL}
    ids = [e.utterance_id for e in streamed.events]
    assert ids == sorted(ids)
    for index, partial in enumerate(streamed.events):
        if partial.kind == PARTIAL:
            assert index < final_position[partial.utterance_id]
            assert partial.text.startswith(partial.stable_text)
            assert partial.end_sample <= streamed.events[final_position[partial.utterance_id]].end_sample
    assert any(p.stable_text for p in streamed.partials)
    # Most finals were decoded in the pause that ended them, before the VAD decided.
    assert stats.finals_precomputed >= stats.utterances // 2
    assert stats.inference_calls >= stats.partials + stats.utterances - stats.finals_precomputed
    assert stats.final_latency_p50_ms is not None and stats.final_latency_p95_ms >= stats.final_latency_p50_ms
    # The speech's end arrived before the VAD decided the utterance had ended: a listener waits longer.
    assert len(stats.speech_end_latencies_ms) == stats.utterances + stats.no_speech_rejections
    assert stats.speech_end_latency_p50_ms >= stats.final_latency_p50_ms
    # Each decode began with the previous one's tokens as its draft: most tokens needed no pass of their own.
    assert stats.draft_tokens_accepted > stats.decoder_steps


def test_chunk_size_does_not_change_the_finals(recognizer, recording, streamed):
    tiny_chunks = stream(recognizer, recording.audio, seconds(0.01), streaming=NO_PARTIALS)
    large_chunks = stream(recognizer, recording.audio, seconds(0.5), streaming=NO_PARTIALS)
    assert final_summary(tiny_chunks) == final_summary(large_chunks) == final_summary(streamed)


def test_a_worker_that_falls_behind_skips_partials_but_no_final(recognizer, recording, streamed):
    everything_queued = dataclasses.replace(EVERY_SECOND, max_queue_s=60.0)
    behind = stream(recognizer, recording.audio, seconds(0.5), process_each_chunk=False, streaming=everything_queued)
    assert behind.stats.audio_dropped_s == 0
    assert behind.stats.partials_skipped > 0
    assert behind.stats.partials < streamed.stats.partials
    assert [(e.text, e.start_sample, e.end_sample) for e in behind.finals] == [
        (e.text, e.start_sample, e.end_sample) for e in streamed.finals
    ]


@pytest.mark.parametrize("signal", ["silence", "white noise", "100 Hz hum"])
def test_silence_noise_and_hum_give_no_final(recognizer, signal):
    rng = np.random.default_rng(7)
    t = np.arange(seconds(8.0)) / SAMPLE_RATE
    audio = {
        "silence": np.zeros_like(t),
        "white noise": 0.1 * rng.standard_normal(len(t)),
        "100 Hz hum": 0.3 * np.sin(2 * np.pi * 100 * t) + 0.1 * np.sin(2 * np.pi * 200 * t),
    }[signal].astype(np.float32)
    run = stream(recognizer, audio, seconds(0.1))
    assert run.finals == [] and run.stats.utterances == 0


def test_overload_drops_the_oldest_audio_and_counts_it_exactly(recognizer, recording):
    transcriber = StreamingTranscriber(recognizer, streaming=StreamingOptions(partial_interval_ms=0, max_queue_s=5.0))
    audio = np.concatenate([recording.audio, recording.audio])[: seconds(60.0)]
    chunk = seconds(0.3)  # 5 s is not a whole number of chunks: the oldest chunk is cut
    for start in range(0, len(audio), chunk):
        transcriber.feed(audio[start : start + chunk])
        assert transcriber.stats().queue_depth_s <= 5.0
    stats = transcriber.stats()
    assert seconds(stats.audio_in_s) == seconds(60.0)
    assert seconds(stats.audio_dropped_s) == seconds(55.0)
    assert seconds(stats.queue_depth_s) == seconds(stats.max_queue_depth_s) == seconds(5.0)
    finals = [e for e in transcriber.process_pending() + transcriber.flush() if e.kind == FINAL]
    assert finals and all(final.start_sample >= seconds(55.0) for final in finals)
    stats = transcriber.stats()
    assert seconds(stats.audio_processed_s) == seconds(5.0) and seconds(stats.audio_dropped_s) == seconds(55.0)


def test_an_utterance_whose_rest_was_dropped_is_finished_with_the_audio_it_has(recognizer, recording):
    first = recording.clips[0]  # speech from 1.1 to 4.3 s
    transcriber = StreamingTranscriber(recognizer, streaming=StreamingOptions(partial_interval_ms=0, max_queue_s=2.0))
    for start in range(0, seconds(3.0), seconds(0.1)):
        transcriber.feed(recording.audio[start : start + seconds(0.1)])
        transcriber.process_pending()
    transcriber.feed(recording.audio[seconds(3.0) : seconds(8.0)])  # 5 s at once: 3.0 .. 6.0 s are dropped
    finals = [e for e in transcriber.process_pending() + transcriber.flush() if e.kind == FINAL]
    assert seconds(transcriber.stats().audio_dropped_s) == seconds(3.0)
    cut_short = finals[0]
    assert cut_short.start_sample < first.speech_start and cut_short.end_sample <= seconds(3.0)
    assert normalise(cut_short.text).split()[:3] == ["and", "then", "they"]
    assert all(final.start_sample >= seconds(6.0) for final in finals[1:])


def test_options_updated_mid_utterance_apply_from_the_next_utterance(recognizer, recording, streamed):
    first, second = recording.clips[:2]
    transcriber = StreamingTranscriber(recognizer, streaming=StreamingOptions(partial_interval_ms=1000))
    middle_of_first = (first.speech_start + first.speech_end) // 2
    events = []
    for start in range(0, middle_of_first, seconds(0.1)):
        transcriber.feed(recording.audio[start : min(start + seconds(0.1), middle_of_first)])
        events += transcriber.process_pending()
    transcriber.update_options(
        vad=VadOptions(speech_pad_ms=0.0, pre_roll_ms=0.0),
        decoding=DecodingOptions(max_new_tokens=2),
        streaming=NO_PARTIALS,
    )
    after_second = second.speech_end + seconds(1.0)
    for start in range(middle_of_first, after_second, seconds(0.1)):
        transcriber.feed(recording.audio[start : min(start + seconds(0.1), after_second)])
        events += transcriber.process_pending()
    events += transcriber.flush()
    finals = [e for e in events if e.kind == FINAL]
    assert len(finals) == 2
    old, new = finals
    # The open utterance finished with the options it started with ...
    assert (old.text, old.start_sample, old.end_sample) == (
        streamed.finals[0].text, streamed.finals[0].start_sample, streamed.finals[0].end_sample
    )
    assert old.speech_start_sample - old.start_sample >= seconds(0.25)  # pads and pre-roll
    assert any(e.kind == PARTIAL and e.utterance_id == old.utterance_id for e in events)
    # ... the next one used the new ones: at most 2 tokens, no pads, no partials.
    assert 1 <= len(new.result.tokens) <= 2
    assert new.start_sample == new.speech_start_sample and new.end_sample - new.speech_end_sample < seconds(0.15)
    assert not any(e.kind == PARTIAL and e.utterance_id == new.utterance_id for e in events)


class FlakyRecognizer:
    """The real recognizer, raising while ``failing`` is set."""

    def __init__(self, recognizer):
        self._recognizer = recognizer
        self.failing = False

    def __getattr__(self, name):
        return getattr(self._recognizer, name)

    def transcribe(self, audio, options, context=(), draft=()):
        if self.failing:
            raise RuntimeError("simulated NPU failure")
        return self._recognizer.transcribe(audio, options, context, draft)


def test_an_inference_error_skips_its_utterance_only(recognizer, recording, caplog):
    flaky = FlakyRecognizer(recognizer)
    transcriber = StreamingTranscriber(flaky, streaming=NO_PARTIALS)
    clips = recording.clips
    # Each stretch ends just before a clip's speech, long after the VAD closed the previous utterance: the first
    # clip is transcribed, the next two fail, the fourth is transcribed.
    stretches = [(clips[1].speech_start, False), (clips[3].speech_start, True), (clips[4].speech_start, False)]
    events, fed = [], 0
    with caplog.at_level(logging.ERROR, logger="hailo_whisper_ros.core.streaming"):
        for end, failing in stretches:
            flaky.failing = failing
            end -= seconds(0.05)
            transcriber.feed(recording.audio[fed:end])
            fed = end
            events += transcriber.process_pending()
    texts = [normalise(e.text) for e in events if e.kind == FINAL]
    assert len(texts) == 2 and "vexed" in texts[0] and "typography" in texts[1]
    assert transcriber.stats().errors == 2  # one per failed utterance: a failed utterance is not retried
    assert len([r for r in caplog.records if "RuntimeError" in r.getMessage()]) == 1


def test_reset_drops_the_queued_audio_and_the_open_utterance(recognizer, recording):
    second = recording.clips[1]
    transcriber = StreamingTranscriber(recognizer, streaming=NO_PARTIALS)
    transcriber.feed(recording.audio[: seconds(2.5)])  # into the first clip's speech
    assert transcriber.process_pending() == []
    transcriber.reset()
    transcriber.feed(recording.audio[seconds(2.5) : seconds(4.8)])
    transcriber.reset()
    transcriber.feed(recording.audio[seconds(4.8) : second.speech_end + seconds(1.0)])
    finals = [e for e in transcriber.process_pending() + transcriber.flush() if e.kind == FINAL]
    stats = transcriber.stats()
    assert seconds(stats.audio_dropped_s) == seconds(2.3)
    assert len(finals) == 1 and finals[0].utterance_id == 2  # utterance 1 was dropped
    assert abs(finals[0].speech_start_sample - second.speech_start) <= seconds(BOUNDARY_TOLERANCE_S)


def test_invalid_options_and_input_are_rejected_with_the_reason(recognizer):
    for bad in ({"partial_interval_ms": 100}, {"partial_interval_ms": 1.5}, {"max_queue_s": 0.5}, {"max_queue_s": 1e9}):
        with pytest.raises(HailoWhisperError, match=next(iter(bad))):
            StreamingOptions(**bad)
    assert len(declared(StreamingOptions)) == len(dataclasses.fields(StreamingOptions))
    for option, spec in declared(StreamingOptions):
        assert spec.description and spec.unit and spec.range, option.name
    transcriber = StreamingTranscriber(recognizer)
    with pytest.raises(HailoWhisperError, match="English-only"):
        transcriber.update_options(decoding=DecodingOptions(language="de"))
    with pytest.raises(HailoWhisperError, match="1-D float"):
        transcriber.feed(np.zeros(10, dtype=np.int16))
    with pytest.raises(HailoWhisperError, match="1-D float"):
        transcriber.feed(np.zeros((10, 2), dtype=np.float32))


def test_stable_prefix_is_the_agreed_leading_words():
    assert stable_prefix("", "If the reader") == ""
    assert stable_prefix("If the reader will accept it,", "If the reader will excuse me.") == "If the reader will"
    assert stable_prefix("say nothing.", "Say nothing of my") == "Say nothing"


def segmented(audio, chunk_samples, vad=MAX_SPEECH):
    """(utterance id, event) as the ROS audio_subscriber node publishes them (its AudioIntake's), per chunk of audio."""
    intake, chunks = AudioIntake(vad=vad), []
    for start in range(0, len(audio), chunk_samples):
        chunk = intake.segment(audio[start : start + chunk_samples])
        chunks.append([(speech.utterance_id, speech.event) for speech in chunk])
    chunks.append([(speech.utterance_id, speech.event) for speech in intake.end_utterance()])
    return chunks


def test_utterances_cut_elsewhere_are_transcribed_as_the_stream_is(recognizer, recording, streamed):
    transcriber = UtteranceTranscriber(recognizer, DecodingOptions(), NO_PARTIALS)
    events = []
    for chunk in segmented(recording.audio, seconds(0.1)):
        for utterance_id, event in chunk:
            transcriber.submit(utterance_id, event)
        events += transcriber.process_pending()
    finals = [e for e in events if e.kind == FINAL]
    assert [(f.utterance_id, f.text, f.start_sample, f.end_sample) for f in finals] == final_summary(streamed)
    # Where speech was last heard comes with each end, so a final's wait counts from the same sample as in-process
    assert [f.speech_end_sample for f in finals] == [f.speech_end_sample for f in streamed.finals]
    assert all(f.speech_end_sample <= f.end_sample for f in finals)
    assert any(f.speech_end_sample < f.end_sample for f in finals)  # a trailing pad is not speech
    stats = transcriber.stats()
    assert stats.utterances == len(finals) and stats.errors == 0 and stats.audio_dropped_s == 0
    utterance_audio = sum(f.end_sample - f.start_sample for f in finals)
    assert seconds(stats.audio_in_s) == seconds(stats.audio_processed_s) == utterance_audio


def test_a_partial_is_skipped_when_the_end_of_its_utterance_is_already_queued(recognizer, sample_audio):
    # The partial due at 1 s has only 0.5 s of input behind it, so being behind is not what skips it.
    audio = sample_audio("jfk/jfk.flac")[: seconds(1.5)]
    transcriber = UtteranceTranscriber(recognizer, DecodingOptions(), StreamingOptions(partial_interval_ms=1000))
    transcriber.submit(1, SpeechStarted(0))
    for start in range(0, len(audio), seconds(0.5)):
        transcriber.submit(1, SpeechAudio(start, audio[start : start + seconds(0.5)]))
    transcriber.submit(1, SpeechEnded(0, len(audio), forced=False))
    events = transcriber.process_pending()
    stats = transcriber.stats()
    assert [e.kind for e in events] == [FINAL] and stats.partials == 0 and stats.partials_skipped == 1
    assert stats.inference_calls == 1


def test_utterance_transcriber_decodes_in_the_pause_and_drops_exactly_when_behind(recognizer, recording):
    chunks = segmented(recording.audio[: recording.clips[1].speech_start], seconds(0.1))
    # The first utterance, and the end of the next; without the intake's pause hints: the pause is seen by arrival.
    events = [item for chunk in chunks for item in chunk if not isinstance(item[1], SpeechPaused)]
    end = next(i for i, (_, e) in enumerate(events) if not isinstance(e, (SpeechStarted, SpeechAudio)))

    transcriber = UtteranceTranscriber(recognizer, DecodingOptions(), NO_PARTIALS)
    for utterance_id, event in events[:end]:
        transcriber.submit(utterance_id, event)
    assert transcriber.process_pending() == []  # the audio just arrived: no pause yet
    time.sleep(ARRIVAL_PAUSE_S)
    assert transcriber.process_pending() == [] and transcriber.stats().inference_calls == 1  # decoded in the pause
    transcriber.submit(*events[end])
    (final,) = transcriber.process_pending()
    assert "vexed" in normalise(final.text) and transcriber.stats().finals_precomputed == 1

    # Behind: after the first second of the utterance, the rest arrives with room for 1 s of audio queued.
    small_queue = StreamingOptions(partial_interval_ms=0, max_queue_s=1.0)
    transcriber = UtteranceTranscriber(recognizer, DecodingOptions(), small_queue)
    utterance_start = events[0][1].start
    first_second = next(
        i for i, (_, e) in enumerate(events) if isinstance(e, SpeechAudio) and e.start - utterance_start >= seconds(1.0)
    )
    for utterance_id, event in events[:first_second]:
        transcriber.submit(utterance_id, event)
        assert transcriber.process_pending() == []
    gap_at = events[first_second][1].start
    for utterance_id, event in events[first_second : end + 1]:
        transcriber.submit(utterance_id, event)
    rest_audio = sum(len(e.audio) for _, e in events[first_second:end])
    stats = transcriber.stats()
    assert seconds(stats.audio_dropped_s) == rest_audio - seconds(1.0) and seconds(stats.queue_depth_s) == seconds(1.0)
    (cut_short,) = transcriber.process_pending()  # ends at the gap; the audio after it is dropped too
    assert cut_short.end_sample == gap_at and normalise(cut_short.text).split()[:2] == ["and", "then"]
    stats = transcriber.stats()
    assert seconds(stats.audio_dropped_s) == rest_audio
    assert seconds(stats.audio_in_s) == seconds(stats.audio_processed_s) + rest_audio


def test_a_pause_told_by_the_intake_has_the_final_decoded_before_the_end(recognizer, recording):
    """As over DDS: the AudioIntake announces the pause once it reaches final_decode_pause (SpeechPaused), and the
    UtteranceTranscriber decodes at once (no waiting for the audio to stop arriving); the end then finds its final
    ready."""
    intake = AudioIntake(vad=MAX_SPEECH)
    transcriber = UtteranceTranscriber(recognizer, DecodingOptions(), NO_PARTIALS)
    first_utterance = recording.audio[: recording.clips[1].speech_start]
    told, finals = [], []
    for start in range(0, len(first_utterance), seconds(0.1)):
        for speech in intake.segment(first_utterance[start : start + seconds(0.1)]):
            transcriber.submit(speech.utterance_id, speech.event)
            if isinstance(speech.event, SpeechPaused):
                told.append(speech.event.end)
                assert transcriber.process_pending() == []  # no partials: the decode is kept for the final
                assert transcriber.stats().inference_calls == 1
            elif isinstance(speech.event, SpeechEnded):
                assert told and transcriber.stats().inference_calls == 1  # decoded on the hint, before the end
                finals += transcriber.process_pending()
                assert "vexed" in normalise(finals[0].text) and transcriber.stats().finals_precomputed == 1
    # One final; the hint came once, in the pause that ended it, its audio complete (the pad included).
    assert len(finals) == 1 and told == [finals[0].end_sample]
    assert finals[0].end_sample - finals[0].speech_end_sample >= seconds(MAX_SPEECH.speech_pad_ms / 1000)


def test_caption_command_prints_lines_and_writes_the_figures(model_dir, recording, tmp_path, capsys):
    # Any rate and channel count: 44.1 kHz stereo of the first two clips.
    excerpt = recording.audio[: recording.clips[1].speech_end + seconds(1.0)]
    at_44k = resample(excerpt, SAMPLE_RATE, 44100)
    sound_file, report_file = tmp_path / "two_clips.wav", tmp_path / "captions.json"
    soundfile.write(sound_file, np.stack([at_44k, 0.5 * at_44k], axis=1), 44100)
    arguments = ["--model-dir", str(model_dir), "--partial-interval-ms", "500", "--json", str(report_file),
                 "--word-timestamps"]
    assert cli_main(["caption", str(sound_file), *arguments]) == 0
    output = capsys.readouterr().out
    lines = output.splitlines()
    assert sum(line.startswith("final ") for line in lines) == 2 and any(line.startswith("partial ") for line in lines)
    assert "RTFx" in output
    report = json.loads(report_file.read_text())
    final_fields = {"id", "text", "start_s", "end_s", "latency_ms", "language", "language_prob", "words"}
    assert [set(final) for final in report["finals"]] == [final_fields] * 2
    for final in report["finals"]:  # the words in seconds of the file, around the final's speech
        assert normalise(" ".join(word["text"] for word in final["words"])) == normalise(final["text"])
        first, last = final["words"][0], final["words"][-1]
        assert final["start_s"] - 1.0 <= first["start_s"] <= last["end_s"] <= final["end_s"] + 1.0
    assert [(final["language"], final["language_prob"]) for final in report["finals"]] == [("en", None)] * 2
    assert "vexed" in normalise(report["finals"][0]["text"])
    assert report["finals"][1]["start_s"] == pytest.approx(recording.clips[1].speech_start_s, abs=BOUNDARY_TOLERANCE_S)
    assert report["partials"] > 0
    assert report["figures"]["rtfx"] > 0 and report["figures"]["frames_transcribed"] > 0
    assert report["figures"]["model_memory_mb"] > 0
