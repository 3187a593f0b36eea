"""`hailo-whisper soak`: minutes or hours of real speech and silence through the streaming recognizer (in this
process, or over DDS through running ROS nodes), then the figures: audio in, processed and dropped, the deepest
queue, every utterance of the input accounted for, resident memory at start, middle and end, exceptions.

Exit status 0 when the soak passed (no exception, no inference error, no utterance missing), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict
from pathlib import Path

from hailo_whisper_ros.cli.flags import (
    add_cpu_encoder_flag,
    add_model_dir_flag,
    add_streaming_flags,
    streaming_options,
)
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.evaluation.datasets import SPEECH_SAMPLES

HELP = "stream real speech and silence for M minutes through the recognizer and account for every utterance"


def positive_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=positive_float, default=1.0, metavar="M",
                        help="audio to stream, in minutes of audio time (default: 1)")
    parser.add_argument("--speed", type=positive_float, metavar="S",
                        help="feed at S times real time, dropping what recognition cannot take in time (default: as "
                        "fast as recognition takes it; with --ros: 1, a microphone's pace)")
    parser.add_argument("--chunk-ms", type=int, default=100, metavar="N", help="audio per feed/message (default: 100)")
    add_streaming_flags(parser)  # of the in-process transcriber; with --ros they are the nodes' parameters
    parser.add_argument("--dataset", type=Path, default=SPEECH_SAMPLES, metavar="DIR",
                        help=f"speech clips with references, cycled (default: {SPEECH_SAMPLES})")
    add_model_dir_flag(parser)
    add_cpu_encoder_flag(parser)
    parser.add_argument("--progress-s", type=positive_float, default=30.0, metavar="S",
                        help="print a progress line every S seconds of wall time (default: 30)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures to this JSON file")
    ros = parser.add_argument_group("ROS (a running speech_recognition, or its three nodes)")
    ros.add_argument("--ros", action="store_true",
                     help="publish AudioData on `audio` and read `transcript/events` and /diagnostics, instead of "
                     "transcribing in this process")
    ros.add_argument("--namespace", default="", metavar="NS", help="namespace of the nodes (default: none)")
    ros.add_argument("--pid", type=int, action="append", metavar="PID",
                     help="process(es) whose resident memory to watch (default: the one running "
                     "speech_recognition, if exactly one does)")


def run(args: argparse.Namespace) -> int:
    from hailo_whisper_ros.evaluation.datasets import load_dataset
    from hailo_whisper_ros.evaluation.soak import SoakInput, format_report

    if not 5 <= args.chunk_ms <= 10000:
        raise HailoWhisperError(f"--chunk-ms must be in [5, 10000], not {args.chunk_ms}")
    if args.ros and (args.max_queue_s is not None or args.partial_interval_ms is not None):
        raise HailoWhisperError("with --ros the queue and partials are the nodes' parameters (queue.max_audio_s, "
                                "streaming.partial_interval_ms)")
    soak_input = SoakInput(load_dataset(args.dataset), args.minutes)
    print(f"soak input: {soak_input.duration_s:.1f} s of audio, {len(soak_input.clips)} utterances "
          f"({len(soak_input.recording.clips)} clips of {args.dataset}, cycled)", flush=True)

    def progress(fed_s: float, state: str) -> None:
        print(f"  ... {fed_s:.0f} of {soak_input.duration_s:.0f} s fed; {state}", flush=True)

    report = run_ros(args, soak_input, progress) if args.ros else run_in_process(args, soak_input, progress)
    print(format_report(report), flush=True)
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2, default=str) + "\n")
    return 0 if report.passed else 1


def run_in_process(args: argparse.Namespace, soak_input, progress):
    from hailo_whisper_ros.core.config import RecognizerConfig
    from hailo_whisper_ros.core.recognizer import Recognizer
    from hailo_whisper_ros.evaluation.soak import run_soak
    from hailo_whisper_ros.export.store import resolve_model_dir

    streaming = streaming_options(args)
    recognizer = Recognizer(RecognizerConfig(resolve_model_dir(args.model_dir), encoder=args.encoder))

    def show(fed_s: float, stats) -> None:
        progress(fed_s, f"queue {stats.queue_depth_s:.1f} s, dropped {stats.audio_dropped_s:.1f} s, "
                 f"{stats.utterances} finals, {stats.errors} errors")

    return run_soak(recognizer, soak_input, args.speed, args.chunk_ms, streaming, show, args.progress_s)


def run_ros(args: argparse.Namespace, soak_input, progress):
    from hailo_whisper_ros.evaluation.ros_soak import run_ros_soak

    return run_ros_soak(soak_input, args.speed or 1.0, args.chunk_ms, args.namespace, args.pid, progress,
                        args.progress_s)
