"""The vocabulary check of decoding.initial_prompt: robot commands full of names, places and command words Whisper
rarely saw, transcribed without and with a prompt that lists them.

The set is test/data/vocabulary of the repository (a clone, not an install): 12 sentences spoken by espeak-ng
(make_clips.sh there says how), their transcripts.tsv, and prompt.txt, the vocabulary as a robot's configuration
would give it. The rare words are the words of the prompt; their error rate counts each of their occurrences in the
references that the aligned hypothesis does not reproduce exactly (substituted or deleted), after core.text.normalise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from hailo_whisper_ros.core.audio import load_audio
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.recognizer import Recognizer
from hailo_whisper_ros.core.text import normalise
from hailo_whisper_ros.evaluation.datasets import Clip, load_dataset
from hailo_whisper_ros.evaluation.scoring import word_errors

VOCABULARY_SET = Path(__file__).resolve().parents[2] / "test" / "data" / "vocabulary"
PROMPT_FILE = "prompt.txt"


@dataclass(frozen=True)
class VocabularySet:
    clips: tuple[Clip, ...]
    prompt: str

    @property
    def rare_words(self) -> frozenset[str]:
        return frozenset(normalise(self.prompt).split())


@dataclass(frozen=True)
class VocabularyRow:
    prompt: str  # "off" / "on"
    rare_word_error_rate: float  # fraction of the rare words' occurrences not reproduced
    rare_words: int  # their occurrences in the references
    wer: float  # over the whole sentences
    hypotheses: tuple[str, ...]


def load_vocabulary_set(folder: Path = VOCABULARY_SET) -> VocabularySet:
    folder = Path(folder)
    if not (folder / PROMPT_FILE).is_file():
        raise HailoWhisperError(f"no vocabulary set in {folder}: it needs transcripts.tsv, the clips and {PROMPT_FILE}")
    return VocabularySet(tuple(load_dataset(folder)), (folder / PROMPT_FILE).read_text().strip())


def rare_word_errors(references: Sequence[str], hypotheses: Sequence[str], rare: frozenset[str]) -> tuple[int, int]:
    """(errors, occurrences) of the rare words in the references: an occurrence is an error unless the word
    alignment (jiwer) pairs it with the same word."""
    import jiwer

    errors = occurrences = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        reference_words = normalise(reference).split()
        wanted = [index for index, word in enumerate(reference_words) if word in rare]
        if not wanted:
            continue
        occurrences += len(wanted)
        hypothesis_text = normalise(hypothesis)
        if not hypothesis_text:
            errors += len(wanted)
            continue
        matched = set()
        for chunk in jiwer.process_words(" ".join(reference_words), hypothesis_text).alignments[0]:
            if chunk.type == "equal":
                matched.update(range(chunk.ref_start_idx, chunk.ref_end_idx))
        errors += sum(index not in matched for index in wanted)
    return errors, occurrences


def measure(recognizer: Recognizer, vocabulary: VocabularySet, decoding: DecodingOptions,
            with_prompt: bool) -> VocabularyRow:
    options = replace(decoding, initial_prompt=vocabulary.prompt if with_prompt else "")
    references = [clip.reference for clip in vocabulary.clips]
    hypotheses = tuple(recognizer.transcribe(load_audio(clip.audio_path), options).text for clip in vocabulary.clips)
    errors, occurrences = rare_word_errors(references, hypotheses, vocabulary.rare_words)
    return VocabularyRow("on" if with_prompt else "off", errors / max(occurrences, 1), occurrences,
                         word_errors(references, hypotheses).wer, hypotheses)


def format_table(rows: Sequence[VocabularyRow]) -> str:
    lines = ["| initial_prompt | Rare-word error rate | WER |", "|---|---:|---:|"]
    for row in rows:
        lines.append(f"| {row.prompt} | {100 * row.rare_word_error_rate:.1f}% (of {row.rare_words}) | "
                     f"{100 * row.wer:.1f}% |")
    return "\n".join(lines)
