"""decoding.language: auto and language codes, accepted or refused by the kind of model (no model files needed:
the two ModelInfo below hold the special tokens of Whisper's English-only and multilingual vocabularies)."""

import pytest

from hailo_whisper_ros.core.decoding import LANGUAGE_AUTO, DecodingOptions
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.model_dir import ModelInfo

DIMENSIONS = dict(n_mels=80, n_audio_ctx=1500, n_audio_state=384, n_audio_head=6, n_audio_layer=4, n_text_ctx=448,
                  n_text_state=384, n_text_head=6, n_text_layer=4)
ENGLISH_ONLY = ModelInfo(name="tiny.en", n_vocab=51864, multilingual=False, sot=50257, eot=50256,
                         no_timestamps=50362, no_speech=50361, transcribe=50358, translate=50357,
                         timestamp_begin=50363, sot_prev=50360, sot_lm=50359, **DIMENSIONS)
MULTILINGUAL = ModelInfo(name="base", n_vocab=51865, multilingual=True, sot=50258, eot=50257, no_timestamps=50363,
                         no_speech=50362, transcribe=50359, translate=50358, timestamp_begin=50364, sot_prev=50361,
                         sot_lm=50360, languages={"en": 50259, "de": 50261, "fr": 50265}, **DIMENSIONS)


def test_auto_is_a_valid_language_value_and_names_detection():
    assert DecodingOptions(language=LANGUAGE_AUTO).detects_language
    assert not DecodingOptions().detects_language and not DecodingOptions(language="de").detects_language


def test_a_multilingual_model_takes_auto_and_decodes_in_the_detected_language():
    options = DecodingOptions(language=LANGUAGE_AUTO)
    options.check_model(MULTILINGUAL)
    info = MULTILINGUAL
    assert options.forced_prefix(info, detected="de") == [info.sot, 50261, info.transcribe, info.no_timestamps]
    with pytest.raises(HailoWhisperError, match="detect the language first"):
        options.forced_prefix(info)
    # A given language ignores a detection.
    assert DecodingOptions(language="fr").forced_prefix(info, detected="de")[1] == 50265


@pytest.mark.parametrize("language", [LANGUAGE_AUTO, "de"])
def test_an_english_only_model_refuses_auto_and_other_languages_saying_why(language):
    with pytest.raises(HailoWhisperError, match="tiny.en is English-only") as refused:
        DecodingOptions(language=language).check_model(ENGLISH_ONLY)
    if language == LANGUAGE_AUTO:
        assert "needs a multilingual model" in str(refused.value)
    for given in (None, "en"):
        DecodingOptions(language=given).check_model(ENGLISH_ONLY)


def test_a_language_the_model_lacks_is_refused_with_the_ones_it_knows():
    with pytest.raises(HailoWhisperError, match="unknown language 'xx'.*'de'"):
        DecodingOptions(language="xx").check_model(MULTILINGUAL)
