"""`hailo-whisper vocabulary`: the vocabulary check of decoding.initial_prompt (evaluation/vocabulary.py): robot
commands with rare names and places (test/data/vocabulary, made with espeak-ng), transcribed without and with the
prompt that lists their vocabulary; prints the rare-word error rate and the WER of each.

Exit status 0 when the prompt lowers the rare-word error rate.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "rare-word error rate of robot commands without and with decoding.initial_prompt listing their vocabulary"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hailo_whisper_ros.cli.flags import add_cpu_encoder_flag, add_model_dir_flag
    from hailo_whisper_ros.evaluation.vocabulary import VOCABULARY_SET

    parser.add_argument("--folder", type=Path, default=VOCABULARY_SET, metavar="DIR",
                        help=f"clips, transcripts.tsv and prompt.txt (default: {VOCABULARY_SET})")
    parser.add_argument("--prompt", metavar="TEXT", help="the initial prompt (default: the folder's prompt.txt)")
    parser.add_argument("--show", action="store_true", help="print every transcript too")
    add_model_dir_flag(parser)
    add_cpu_encoder_flag(parser)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from hailo_whisper_ros.core.config import RecognizerConfig
    from hailo_whisper_ros.core.decoding import DecodingOptions
    from hailo_whisper_ros.core.recognizer import Recognizer
    from hailo_whisper_ros.evaluation import vocabulary
    from hailo_whisper_ros.export.store import resolve_model_dir

    words = vocabulary.load_vocabulary_set(args.folder)
    if args.prompt is not None:
        words = replace(words, prompt=args.prompt)
    recognizer = Recognizer(RecognizerConfig(resolve_model_dir(args.model_dir), encoder=args.encoder))
    rows = [vocabulary.measure(recognizer, words, DecodingOptions(), with_prompt) for with_prompt in (False, True)]
    print(f"{len(words.clips)} sentences, {len(words.rare_words)} rare words; prompt: {words.prompt!r}")
    print(vocabulary.format_table(rows))
    if args.show:
        for clip, without, with_prompt in zip(words.clips, rows[0].hypotheses, rows[1].hypotheses):
            print(f"\n{clip.id}: {clip.reference}\n  without: {without}\n  with:    {with_prompt}")
    return 0 if rows[1].rare_word_error_rate < rows[0].rare_word_error_rate else 1
