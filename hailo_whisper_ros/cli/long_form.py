"""`hailo-whisper long-form`: the long-form check of decoding.condition_on_previous (evaluation/long_form.py): 32
consecutive LJSpeech sentences joined by 0.5 s pauses, streamed through the caption path and (--ros) the ROS nodes
without and with the context, beside our recognizer and faster-whisper offline; then (unless --no-dev-clips) the
61 unrelated dev clips streamed one after another, without and with. Prints the tables.

Exit status 0 when the streamed WER with the context is at most --tolerance points above faster-whisper's offline
(conditioned on its previous text, its default) and the context makes neither stream worse.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "WER of long-form speech streamed with and without the previous finals as context, beside faster-whisper"
DEFAULT_SPEECH_DEV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "speech_dev"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hailo_whisper_ros.cli.flags import add_cpu_encoder_flag, add_model_dir_flag

    parser.add_argument("--speech_dev", "--speech-dev", type=Path, default=DEFAULT_SPEECH_DEV, metavar="DIR",
                        help=f"the development set (default: {DEFAULT_SPEECH_DEV})")
    parser.add_argument("--ros", action="store_true", help="also stream it through the ROS nodes over DDS")
    parser.add_argument("--no-dev-clips", action="store_true", help="skip the stream of the 61 dev clips")
    parser.add_argument("--tolerance", type=float, default=1.0, metavar="POINTS",
                        help="streamed WER above faster-whisper offline that still passes (default: 1.0)")
    add_model_dir_flag(parser)
    add_cpu_encoder_flag(parser)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from hailo_whisper_ros.core.config import RecognizerConfig
    from hailo_whisper_ros.core.decoding import DecodingOptions
    from hailo_whisper_ros.evaluation import long_form
    from hailo_whisper_ros.evaluation.machine import machine_info
    from hailo_whisper_ros.evaluation.memory import load_recognizer
    from hailo_whisper_ros.export.store import resolve_model_dir

    recording = long_form.long_form_recording(args.speech_dev)
    recognizer, memory = load_recognizer(RecognizerConfig(resolve_model_dir(args.model_dir), encoder=args.encoder))
    print(f"machine: {machine_info(recognizer.config.threads)}")
    print(f"long-form input: {len(recording.clips)} sentences, {recording.duration_s:.1f} s, "
          f"{long_form.PAUSE_S:g} s pauses", flush=True)
    ways = [replace(DecodingOptions(), condition_on_previous=on) for on in (False, True)]
    rows, notes = [], []
    for decoding in ways:
        rows.append(long_form.streamed(recognizer, memory, recording, decoding))
        print(f"  {rows[-1].path}, context {rows[-1].context}: WER {100 * rows[-1].wer:.2f}%", flush=True)
    if args.ros:
        for decoding in ways:
            rows.append(long_form.ros_streamed(recording, decoding.condition_on_previous))
            print(f"  {rows[-1].path}, context {rows[-1].context}: WER {100 * rows[-1].wer:.2f}%", flush=True)
    for decoding in ways:
        rows.append(long_form.offline(recognizer, recording, decoding))
    baseline = None
    for condition in (False, True):
        row = long_form.faster_whisper_offline(recording, recognizer.info, condition, recognizer.config.threads)
        if isinstance(row, str):
            notes.append(f"faster-whisper not run: {row}")
            break
        rows.append(row)
        baseline = row
    print(long_form.format_table(f"\nlong-form check ({recording.duration_s:.0f} s, "
                                 f"{rows[0].reference_words} words):", rows))
    streams = [rows[i : i + 2] for i in range(0, 4 if args.ros else 2, 2)]
    if not args.no_dev_clips:
        dev = long_form.dev_recording(args.speech_dev)
        dev_rows = [long_form.streamed(recognizer, memory, dev, decoding) for decoding in ways]
        print(long_form.format_table(f"\ndev clips streamed one after another ({dev.duration_s:.0f} s, "
                                     f"{len(dev.clips)} clips):", dev_rows))
        streams.append(dev_rows)
    for note in notes:
        print(note)
    never_worse = all(with_context.wer <= without.wer for without, with_context in streams)
    close_enough = baseline is not None and 100 * (rows[1].wer - baseline.wer) <= args.tolerance
    print(f"\ncontext never worse: {'yes' if never_worse else 'NO'}; streamed with context "
          f"{'within' if close_enough else 'NOT within'} {args.tolerance:g} points of faster-whisper offline")
    return 0 if never_worse and close_enough else 1
