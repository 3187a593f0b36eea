"""`hailo-whisper rooms`: issue 30's simulated rooms (clean, a steady fan, three background talkers 10 dB below who
go on after the talker), built once from a clip folder and cached, transcribed by our recognizer as a robot runs it
and as one call per clip, each with background_trim_db off and on, and by faster-whisper int8 on the same weights
(evaluation.rooms)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hailo_whisper_ros.cli.flags import add_flag, add_model_dir_flag
from hailo_whisper_ros.core.errors import HailoWhisperError

HELP = "WER (sub/del/ins), decode time and background removed in simulated rooms, ours vs faster-whisper int8"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_dir_flag(parser)
    add_flag(parser, "audio_folder", type=Path, metavar="DIR",
             help="clips with references to put in rooms (layouts as for `pipeline --audio_folder`; more than three "
             "speakers; default: the shipped speech samples; issue 30's figures: ../shared/data/speech_dev)")
    add_flag(parser, "paths", default="stream,clip", metavar="NAME,NAME",
             help="how ours runs: stream (StreamingTranscriber with the VAD, as a robot) and/or clip (one call)")
    add_flag(parser, "trims", metavar="DB,DB",
             help="decoding.background_trim_db values to run ours with, 0 for off (default: 0 and the declared "
             "default)")
    add_flag(parser, "sets", default="clean,steady-noise,background-talkers", metavar="NAME,NAME",
             help="which rooms: clean, steady-noise, background-talkers")
    add_flag(parser, "limit", type=int, metavar="N", help="only the first N clips (their rooms are the same)")
    add_flag(parser, "no_baseline", action="store_true", help="leave faster-whisper out")
    add_flag(parser, "show", action="store_true", help="print each clip whose transcript the trim changed")
    add_flag(parser, "json", type=Path, metavar="FILE", help="also write the figures and transcripts here")


def run(args: argparse.Namespace) -> int:
    from hailo_whisper_ros.core.audio import load_audio
    from hailo_whisper_ros.core.config import RecognizerConfig
    from hailo_whisper_ros.core.decoding import DecodingOptions
    from hailo_whisper_ros.core.recognizer import Recognizer
    from hailo_whisper_ros.evaluation.datasets import SPEECH_SAMPLES, list_clips
    from hailo_whisper_ros.evaluation.room_simulation import SETS, build_rooms, rooms_cache
    from hailo_whisper_ros.evaluation.rooms import PATHS, format_table, recognizer_engines, run_rooms
    from hailo_whisper_ros.export.store import resolve_model_dir

    paths = _names(args.paths, PATHS, "--paths")
    set_names = _names(args.sets, SETS, "--sets")
    default_trim = DecodingOptions().background_trim_db
    trims = [float(value) for value in args.trims.split(",")] if args.trims else [0.0, default_trim]
    for trim in trims:  # the option's own range check
        DecodingOptions(background_trim_db=trim)
    if args.limit is not None and args.limit < 1:
        raise HailoWhisperError(f"--limit must be >= 1, not {args.limit}")
    audio_folder = args.audio_folder or SPEECH_SAMPLES
    clips = list(list_clips(audio_folder).clips)
    folder = rooms_cache(clips)
    print(f"building or reading the rooms of {len(clips)} clips of {audio_folder} in {folder}", flush=True)
    sets = build_rooms(clips, [load_audio(clip.audio_path) for clip in clips], folder)
    sets = {name: sets[name][: args.limit] for name in set_names}
    audio = {name: [load_audio(clip.audio_path) for clip in set_clips] for name, set_clips in sets.items()}
    model_dir = resolve_model_dir(args.model_dir)
    recognizer = Recognizer(RecognizerConfig(model_dir))
    engines = recognizer_engines(recognizer, paths, trims) + _baseline(args, recognizer)
    print(f"{len(audio[set_names[0]])} rooms per set; engines: {', '.join(e.label for e in engines)}; "
          f"encoder {recognizer.encoder.name}", flush=True)
    runs = run_rooms(engines, sets, audio)
    print("\n".join(format_table(runs)))
    if args.show:
        _show_changes(runs, sets)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = [dict(run.as_json(), ids=[clip.id for clip in sets[run.set_name]]) for run in runs]
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def _names(text: str, known: tuple[str, ...], flag: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names or any(name not in known for name in names):
        raise HailoWhisperError(f"{flag} takes names of {', '.join(known)}, not {text!r}")
    return names


def _baseline(args: argparse.Namespace, recognizer) -> list:
    """faster-whisper int8 on the export's weights, or nothing (saying why)."""
    from hailo_whisper_ros.evaluation.engines import FasterWhisperEngine, ct2_model_dir
    from hailo_whisper_ros.evaluation.rooms import BaselineRoomEngine

    if args.no_baseline:
        return []
    directory, reason = ct2_model_dir(None, recognizer.info)
    if directory is None:
        print(f"no faster-whisper baseline: {reason}")
        return []
    return [BaselineRoomEngine(FasterWhisperEngine("faster-whisper int8", directory, "int8", 2, "en"))]


def _show_changes(runs, sets) -> None:
    """Each clip whose transcript differs between ours with the trim off and on, per set and path."""
    for off in (run for run in runs if run.engine.endswith("trim off")):
        path = off.engine.removesuffix("trim off")
        for on in (r for r in runs if r.set_name == off.set_name and r.engine.startswith(path) and r is not off):
            print(f"\n{off.set_name}: {off.engine} -> {on.engine}")
            for clip, before, after in zip(sets[off.set_name], off.transcripts, on.transcripts):
                if before.text != after.text:
                    print(f"  {clip.id}: removed {after.removed_s:.2f} s")
                    print(f"    off: {before.text}\n    on:  {after.text}")
