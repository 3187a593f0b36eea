"""`hailo-whisper pause-ends`: can a decode at a short pause tell a finished sentence from a pause inside one? Each
pause inside the clips of a folder and each clip's end decoded as the pause decode would, and a decoder-driven end
of utterance scored against today's fixed wait: splits inside sentences and what a person waits
(evaluation.pause_ends)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from hailo_whisper_ros.cli.flags import add_flag, add_model_dir_flag

HELP = "splits and waits of a decoder-driven end of utterance against today's fixed silence, on a clip folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hailo_whisper_ros.evaluation.datasets import SPEECH_SAMPLES

    add_flag(parser, "audio_folder", type=Path, default=SPEECH_SAMPLES, metavar="DIR",
             help="folder of clips with references (default: the shipped speech samples; the dev set: "
             "../shared/data/speech_dev)")
    add_model_dir_flag(parser)
    add_flag(parser, "limit", type=int, metavar="N", help="only the first N clips")
    add_flag(parser, "json", type=Path, metavar="FILE", help="also write every pause's decode here")


def run(args: argparse.Namespace) -> int:
    from hailo_whisper_ros.core.audio import load_audio
    from hailo_whisper_ros.core.config import RecognizerConfig
    from hailo_whisper_ros.core.errors import HailoWhisperError
    from hailo_whisper_ros.core.recognizer import Recognizer
    from hailo_whisper_ros.core.vad import SileroVad, VadOptions
    from hailo_whisper_ros.evaluation.datasets import list_clips
    from hailo_whisper_ros.evaluation.machine import machine_info
    from hailo_whisper_ros.evaluation.pause_ends import decode_pauses, format_table
    from hailo_whisper_ros.export.store import resolve_model_dir

    if args.limit is not None and args.limit < 1:
        raise HailoWhisperError(f"--limit must be >= 1, not {args.limit}")
    clips = [clip for clip in list_clips(args.audio_folder).clips if clip.reference][: args.limit]
    recognizer = Recognizer(RecognizerConfig(resolve_model_dir(args.model_dir)))
    machine = machine_info(recognizer.config.threads)
    print(f"{len(clips)} clips of {args.audio_folder}; {recognizer.info.name}, encoder {recognizer.encoder.name}; "
          f"{machine['cpu']}, {machine['date']}")
    vad = SileroVad()  # one ONNX session, reset for each clip
    pauses = [pause for clip in clips
              for pause in decode_pauses(recognizer, vad, clip, load_audio(clip.audio_path), VadOptions())]
    print("\n".join(format_table(pauses)))
    if args.json:
        args.json.write_text(json.dumps([asdict(pause) for pause in pauses], indent=1))
    return 0
