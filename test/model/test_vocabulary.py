"""decoding.initial_prompt on the vocabulary set (test/data/vocabulary: robot commands spoken by espeak-ng): the
prompt that lists the names and places makes the model write them. `hailo-whisper vocabulary` measures the whole
set (README); this test takes three of its sentences, to stay fast."""

from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.evaluation.vocabulary import load_vocabulary_set, measure

SENTENCES = ("robot08", "robot11", "robot12")  # 7 rare words: Calypso, Marrowgate, Ravensworth, Gunnhild, ...


def test_the_vocabulary_prompt_lowers_the_rare_word_error_rate(recognizer):
    words = load_vocabulary_set()
    assert len(words.clips) >= 10 and all(clip.audio_path.is_file() for clip in words.clips)
    subset = type(words)(tuple(clip for clip in words.clips if clip.id in SENTENCES), words.prompt)
    without, with_prompt = (measure(recognizer, subset, DecodingOptions(), on) for on in (False, True))
    print(f"\nrare-word error rate without the prompt {without.rare_word_error_rate:.2f}, with "
          f"{with_prompt.rare_word_error_rate:.2f} (of {without.rare_words}); {with_prompt.hypotheses}")
    assert without.rare_words == 7
    assert with_prompt.rare_word_error_rate <= without.rare_word_error_rate - 0.4
    assert with_prompt.wer < without.wer
