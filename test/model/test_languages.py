"""decoding.language auto on the real models: tiny.en refuses it, base detects the language of the multilingual TTS
clips of test/data/languages (base runs where an export of it is found, see the base_model_dir fixture)."""

import math

import pytest

from hailo_whisper_ros.core.decoding import LANGUAGE_AUTO, DecodingOptions
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.streaming import UtteranceTranscriber
from hailo_whisper_ros.core.text import normalise
from hailo_whisper_ros.evaluation.languages import LANGUAGE_CLIPS, load_language_clips

AUTO = DecodingOptions(language=LANGUAGE_AUTO)
# The detection does not depend on how many tokens follow it: the accuracy test decodes only a few.
AUTO_FEW_TOKENS = DecodingOptions(language=LANGUAGE_AUTO, max_new_tokens=3)


def test_tiny_en_refuses_auto_saying_it_is_english_only(recognizer, sample_audio):
    audio = sample_audio("jfk/jfk.flac")
    with pytest.raises(HailoWhisperError, match="tiny.en is English-only.*needs a multilingual model"):
        recognizer.transcribe(audio, AUTO)
    with pytest.raises(HailoWhisperError, match="English-only"):
        UtteranceTranscriber(recognizer, AUTO)
    given = recognizer.transcribe(audio)
    assert given.language == "en" and math.isnan(given.language_prob) and given.timings.language_detection_ms == 0


@pytest.fixture(scope="module")
def base(base_model_dir):
    from hailo_whisper_ros.core.config import RecognizerConfig
    from hailo_whisper_ros.core.recognizer import Recognizer

    return Recognizer(RecognizerConfig(base_model_dir))


@pytest.fixture(scope="module")
def language_clips():
    from hailo_whisper_ros.core.audio import load_audio

    return [(clip, load_audio(clip.audio_path)) for clip in load_language_clips(LANGUAGE_CLIPS)]


def test_base_detects_the_language_of_most_clips_and_english_surely(base, language_clips):
    # Measured (dynamic INT8 encoder): 14 of 20, every language at least 2 of its 4, as faster-whisper float32 on
    # the same weights; English 4 of 4 with p >= 0.88. espeak-ng's voices are far from people's, so the bar is low.
    detected = {}
    for clip, audio in language_clips:
        result = base.transcribe(audio, AUTO_FEW_TOKENS)
        assert 0.0 < result.language_prob <= 1.0 and result.timings.language_detection_ms > 0
        detected.setdefault(clip.language, []).append((result.language, result.language_prob))
    assert set(detected) >= {"en", "de", "fr", "es", "it"}
    assert all(language == "en" and probability > 0.8 for language, probability in detected["en"]), detected["en"]
    for spoken, found in detected.items():
        assert sum(language == spoken for language, _ in found) >= 2, (spoken, found)
    assert sum(language == spoken for spoken, found in detected.items() for language, _ in found) >= 13, detected


def test_base_decodes_in_the_detected_language(base, language_clips):
    clip, audio = next((clip, audio) for clip, audio in language_clips if clip.id == "es_04")
    detected = base.transcribe(audio, AUTO)
    assert detected.language == "es" and detected.language_prob > 0.5
    assert {"mañana", "ingenieros"} <= set(normalise(detected.text).split()), detected.text
    given = base.transcribe(audio, DecodingOptions(language="es"))
    assert given.language == "es" and math.isnan(given.language_prob)
