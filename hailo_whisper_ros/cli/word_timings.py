"""`hailo-whisper word-timings`: word timings against faster-whisper's, word confidence on noisy clips, and the cost
of decoding.word_timestamps (evaluation/word_timings.py)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from hailo_whisper_ros.cli.flags import add_flag, add_model_dir_flag
from hailo_whisper_ros.cli.long_form import DEFAULT_SPEECH_DEV
from hailo_whisper_ros.core.config import RecognizerConfig
from hailo_whisper_ros.core.errors import HailoWhisperError

HELP = "word timings vs faster-whisper, word-confidence AUROC on noisy clips, and the cost of word timestamps"
DEFAULT_CONDITIONS = "white:20,white:10,babble:10"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "audio_folder", type=Path, default=DEFAULT_SPEECH_DEV, metavar="DIR",
             help=f"speech folder with references (default: the dev set, {DEFAULT_SPEECH_DEV})")
    add_model_dir_flag(parser)
    add_flag(parser, "conditions", default=DEFAULT_CONDITIONS, metavar="NOISE:SNR,...",
             help=f"noisy variants for the confidence AUROC, NOISE white or babble (default: {DEFAULT_CONDITIONS})")
    add_flag(parser, "limit", type=int, metavar="N", help="only the first N clips")
    add_flag(parser, "threads", type=int, default=RecognizerConfig.threads, help="ONNX Runtime and CTranslate2 threads")
    add_flag(parser, "json", type=Path, metavar="FILE", help="also write the figures and every clip's words here")


def run(args: argparse.Namespace) -> int:
    from hailo_whisper_ros.core.audio import load_audio
    from hailo_whisper_ros.core.decoding import DecodingOptions
    from hailo_whisper_ros.core.recognizer import Recognizer
    from hailo_whisper_ros.evaluation import word_timings
    from hailo_whisper_ros.evaluation.datasets import list_clips
    from hailo_whisper_ros.evaluation.engines import ct2_model_dir
    from hailo_whisper_ros.evaluation.machine import machine_info
    from hailo_whisper_ros.export.store import resolve_model_dir

    if args.limit is not None and args.limit < 1:
        raise HailoWhisperError(f"--limit must be >= 1, not {args.limit}")
    conditions = [condition.strip() for condition in args.conditions.split(",") if condition.strip()]
    clips = list_clips(args.audio_folder).clips[: args.limit]
    audio = [load_audio(clip.audio_path) for clip in clips]
    recognizer = Recognizer(RecognizerConfig(resolve_model_dir(args.model_dir), threads=args.threads))
    ct2_dir, reason = ct2_model_dir(None, recognizer.info)
    if ct2_dir is None:
        raise HailoWhisperError(f"the faster-whisper reference cannot run: {reason}")
    from faster_whisper import WhisperModel

    reference = WhisperModel(str(ct2_dir), device="cpu", compute_type="float32", cpu_threads=args.threads)
    machine = machine_info(args.threads)
    print(f"{len(clips)} clips of {args.audio_folder}; {recognizer.info.name}, encoder {recognizer.encoder.name}, "
          f"decoder {recognizer.decoder.name}; faster-whisper float32 on the same weights; {machine['cpu']}, "
          f"{args.threads} threads, {machine['date']}, load {machine['load_average_1min']:.1f}")
    options = DecodingOptions()
    timing, cost, clip_words = word_timings.measure_timings(recognizer, reference, clips, audio, options)
    confidence = word_timings.measure_confidence(recognizer, clips, audio, conditions, options)
    print("\n".join(word_timings.format_report(timing, cost, confidence)))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"machine": machine, "timings": asdict(timing), "cost": asdict(cost),
                  "confidence": [asdict(figure) for figure in confidence], "clips": clip_words}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
