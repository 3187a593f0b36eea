"""`hailo-whisper languages`: language detection (decoding.language auto) on multilingual clips, per language."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hailo_whisper_ros.cli.flags import add_model_dir_flag, add_option_flags
from hailo_whisper_ros.core.config import RecognizerConfig
from hailo_whisper_ros.evaluation.languages import LANGUAGE_CLIPS

HELP = ("language detection accuracy, mean probability, cost and WER per spoken language with decoding.language "
        "auto (a multilingual model such as base)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_dir_flag(parser)
    parser.add_argument("--audio_folder", type=Path, default=LANGUAGE_CLIPS, metavar="DIR",
                        help="folder with languages.tsv (id, language, text) and id.flac (default: the TTS clips "
                        "of test/data/languages in a clone)")
    parser.add_argument("--encoders", default="dynamic", metavar="KINDS",
                        help="comma-separated model.encoder kinds to measure, one table each (dynamic, 10s, 30s)")
    add_option_flags(parser, RecognizerConfig, ("threads",))
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the tables and the machine as JSON")


def run(args: argparse.Namespace) -> int:
    from hailo_whisper_ros.core.decoding import LANGUAGE_AUTO, DecodingOptions
    from hailo_whisper_ros.core.recognizer import Recognizer
    from hailo_whisper_ros.evaluation.languages import figures_table, load_language_clips, measure_detection
    from hailo_whisper_ros.evaluation.machine import machine_info
    from hailo_whisper_ros.export.store import resolve_model_dir

    model_dir = resolve_model_dir(args.model_dir)
    clips = load_language_clips(args.audio_folder)
    options = DecodingOptions(language=LANGUAGE_AUTO)
    machine = machine_info(args.threads)
    print(f"{len(clips)} clips of {args.audio_folder}, model {model_dir}; {machine['cpu']}, {machine['date']}, "
          f"load {machine['load_average_1min']:.1f}")
    report = {"machine": machine, "model_dir": str(model_dir), "tables": {}}
    for encoder in args.encoders.split(","):
        recognizer = Recognizer(RecognizerConfig(model_dir, encoder=encoder, threads=args.threads))
        recognizer.check_options(options)  # the model's language rules and the initial prompt's bound
        table = figures_table(measure_detection(recognizer, clips, options))
        report["tables"][encoder] = table
        print(f"\nencoder {encoder}:")
        print("| Language | Clips | Detected | Mean probability | Wrong detections | WER | Detection pass ms | "
              "Utterance ms, auto / given (medians) | Cost of auto ms (median) |")
        print("|---|---:|---:|---:|---|---:|---:|---:|---:|")
        for row in table:
            print(f"| {row['language']} | {row['clips']} | {row['accuracy']:.0%} | {row['mean_probability']:.2f} | "
                  f"{row['misses'] or '-'} | {row['wer']:.1%} | {row['detection_ms_mean']:.1f} | "
                  f"{row['total_ms_median']:.0f} / {row['given_ms_median']:.0f} | {row['cost_ms_median']:.0f} |")
        recognizer.close()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0
