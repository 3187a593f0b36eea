"""`hailo-whisper variants`: a clip folder under segmentation variants (silence before and after, a trimmed tail),
with the loops, the loop guards fired, WER and median decode time of each (evaluation.segmentation_variants)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hailo_whisper_ros.cli.flags import (
    DECODING_FLAGS,
    add_decoding_arguments,
    add_flag,
    add_model_dir_flag,
    add_option_flags,
    options_from_flags,
)
from hailo_whisper_ros.core.errors import HailoWhisperError

HELP = "loops, loop guards, WER and decode time of a clip folder under segmentation variants"
SETUPS = ("guards-on", "guards-off", "today")
LOOP_FLAGS = ("window_lead_trim_db", "max_tokens_per_s", "min_token_budget", "repetition_stop_copies",
              "repetition_stop_max_ngram", "loop_recovery")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hailo_whisper_ros.evaluation.datasets import SPEECH_SAMPLES

    add_flag(parser, "audio_folder", type=Path, default=SPEECH_SAMPLES, metavar="DIR",
             help="folder of clips with references (layouts as for `pipeline --audio_folder`; default: the shipped "
             "speech samples)")
    add_model_dir_flag(parser)
    add_flag(parser, "cuts", metavar="LEAD,TRAIL,TRIM;...",
             help="segmentation variants in seconds (lead 0-0.5, trail 0-1, trim 0-0.2); default: the six of issue "
             "13: as is; lead 0.3; trail 0.2; trail 0.6; trim 0.15; lead 0.3 + trail 0.6")
    add_flag(parser, "setups", default="guards-on", metavar="NAME,NAME",
             help=f"decoding set-ups, of {', '.join(SETUPS)}: the options given (guards-on), the same with the loop "
             "guards off, or as before issue 13 (guards and window lead trim off); several run interleaved")
    add_flag(parser, "limit", type=int, metavar="N", help="only the first N clips")
    add_flag(parser, "json", type=Path, metavar="FILE", help="also write the figures here")
    add_decoding_arguments(parser)
    from hailo_whisper_ros.core.decoding import DecodingOptions

    add_option_flags(parser.add_argument_group("loop guards (of the guards-on set-up)"), DecodingOptions, LOOP_FLAGS)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from hailo_whisper_ros.core.audio import load_audio
    from hailo_whisper_ros.core.config import RecognizerConfig
    from hailo_whisper_ros.core.decoding import DecodingOptions
    from hailo_whisper_ros.core.recognizer import Recognizer
    from hailo_whisper_ros.evaluation.datasets import list_clips
    from hailo_whisper_ros.evaluation.segmentation_variants import (
        DEFAULT_CUTS,
        format_table,
        guards_off,
        parse_cuts,
        run_variants,
    )
    from hailo_whisper_ros.export.store import resolve_model_dir

    names = [name.strip() for name in args.setups.split(",") if name.strip()]
    unknown = [name for name in names if name not in SETUPS]
    if unknown or not names:
        raise HailoWhisperError(f"--setups takes names of {', '.join(SETUPS)}, not {args.setups!r}")
    if args.limit is not None and args.limit < 1:
        raise HailoWhisperError(f"--limit must be >= 1, not {args.limit}")
    cuts = parse_cuts(args.cuts) if args.cuts else DEFAULT_CUTS
    options = options_from_flags(args, DecodingOptions, DECODING_FLAGS + LOOP_FLAGS)
    setups = {"guards-on": options, "guards-off": guards_off(options),
              "today": replace(guards_off(options), window_lead_trim_db=0.0)}
    clips = list_clips(args.audio_folder).clips[: args.limit]
    audio = [load_audio(clip.audio_path) for clip in clips]
    recognizer = Recognizer(RecognizerConfig(resolve_model_dir(args.model_dir), threads=args.threads))
    print(f"{len(clips)} clips of {args.audio_folder}, {len(cuts)} cuts, set-ups {', '.join(names)}; "
          f"encoder {recognizer.encoder.name}; loops: decodes that reached max_new_tokens or that a guard ended")
    runs = run_variants(recognizer, {name: setups[name] for name in names}, clips, audio, cuts)
    print("\n".join(format_table(runs)))
    for run in runs:
        if run.looped:
            print(f"  {run.setup}, {run.cut.name}: {', '.join(run.looped)}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([run.as_json() for run in runs], indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
