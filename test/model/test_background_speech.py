"""Background speech after the talker (issue 30, decoding.background_trim_db) on a shipped clip with three other
shipped speakers 10 dB below it who talk on for 2 s after it: what they say is left out and counted, in a call, a
stream's final, its Transcript message and /diagnostics; with the option off the whole audio is decoded."""

import numpy as np
import pytest

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.text import normalise

TALKER = "misc_clips/fw_stereo_right_260-123286-0001.flac"  # "The horizon seems extremely distant."
OTHERS = ("librispeech_testclean_kw/1089-134686-0000.flac", "librispeech_testclean_fakebob61/61-70968-0004.flac",
          "jfk/jfk.flac")
BELOW_DB, TAIL_S = 10.0, 2.0
OFF = DecodingOptions(background_trim_db=0.0)


@pytest.fixture(scope="module")
def mixture(sample_audio) -> np.ndarray:
    """The talker, and the three others together BELOW_DB under its power, from its start to TAIL_S after its end."""
    talker = sample_audio(TALKER).astype(np.float64)
    length = len(talker) + int(TAIL_S * SAMPLE_RATE)
    others = [np.resize(sample_audio(path).astype(np.float64), length) for path in OTHERS]
    background = sum(other / np.sqrt(np.mean(np.square(other))) for other in others)
    background *= np.sqrt(np.mean(np.square(talker)) * 10 ** (-BELOW_DB / 10) / np.mean(np.square(background)))
    background[: len(talker)] += talker
    return background.astype(np.float32)


def test_the_others_after_the_talker_are_left_out_and_counted(recognizer, mixture):
    trimmed, whole = recognizer.transcribe(mixture), recognizer.transcribe(mixture, OFF)
    assert normalise(trimmed.text).endswith("extremely distant"), trimmed.text
    assert len(normalise(whole.text).split()) > len(normalise(trimmed.text).split()) + 3, whole.text  # the others
    assert TAIL_S <= trimmed.background_removed_s < len(mixture) / SAMPLE_RATE - 1.0
    assert trimmed.segments[-1].frames < whole.segments[-1].frames  # the decoder saw less: not a text filter


def test_off_decodes_all_of_the_audio_and_counts_nothing(recognizer, mixture):
    from hailo_whisper_ros.core.recognizer import window_frames

    whole = recognizer.transcribe(mixture, OFF)
    assert whole.background_removed_s == 0.0 and whole.segments[-1].background_removed_s == 0.0
    onset = int(whole.segments[0].window_start_s * SAMPLE_RATE)
    assert whole.segments[0].frames == window_frames(recognizer.encoder, len(mixture) - onset)


def test_a_streams_final_message_and_diagnostics_count_what_was_left_out(recognizer, mixture):
    from builtin_interfaces.msg import Time

    from hailo_whisper_ros.core.streaming import StreamingTranscriber
    from hailo_whisper_ros.core.transcripts import FINAL, StreamingOptions
    from hailo_whisper_ros.ros.diagnostics import BACKGROUND_REMOVALS, BACKGROUND_REMOVED_S, transcriber_values
    from hailo_whisper_ros.ros.topics import transcript_message

    transcriber = StreamingTranscriber(recognizer, streaming=StreamingOptions(partial_interval_ms=0))
    transcriber.feed(mixture)
    finals = [event for event in transcriber.process_pending() + transcriber.flush() if event.kind == FINAL]
    removed = [event.background_removed_s for event in finals]
    assert sum(removed) > 1.0 and "distant" in normalise(" ".join(event.text for event in finals))
    message = transcript_message(finals[removed.index(max(removed))], Time())
    assert message.background_removed_s == pytest.approx(max(removed))
    stats = transcriber.stats()
    assert stats.background_removed_s == pytest.approx(sum(removed))
    assert stats.background_removals == sum(r > 0 for r in removed) >= 1
    values = transcriber_values(stats)
    assert values[BACKGROUND_REMOVED_S] == stats.background_removed_s
    assert values[BACKGROUND_REMOVALS] == stats.background_removals
