"""`hailo-whisper bursts`: speech published to a speech_recognition process it starts as a 48 kHz stereo S16LE
driver publishes it (20 ms chunks), at 1x, 4x and 10x real time, from a reliable and from a best-effort publisher;
prints the messages published and received, the audio lost by cause and the WER of each run.

Exit status 0 when every message arrived and the WER at each speed is within --wer-tolerance points of 1x's.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from hailo_whisper_ros.evaluation.datasets import SPEECH_SAMPLES

HELP = "publish speech in fast bursts over DDS and count every message and the WER"
STARTUP_TIMEOUT_S = 180.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--speeds", default="1,4,10", metavar="S,S",
                        help="multiples of real time, the first the reference of the WER (default: 1,4,10)")
    parser.add_argument("--publishers", default="reliable,best_effort", metavar="Q,Q",
                        help="publisher QoS kinds: reliable (depth 50), best_effort (SensorDataQoS) (default: both)")
    parser.add_argument("--dataset", type=Path, default=SPEECH_SAMPLES, metavar="DIR",
                        help=f"speech clips with references (default: {SPEECH_SAMPLES})")
    parser.add_argument("--clips", type=int, default=8, metavar="N", help="the first N speech clips (default: 8)")
    parser.add_argument("--params-file", help="parameter file of the nodes (default: the declared defaults)")
    parser.add_argument("--wer-tolerance", type=float, default=1.5, metavar="POINTS",
                        help="WER above the first speed's that still passes (default: 1.5)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures to this JSON file")


def run(args: argparse.Namespace) -> int:
    from hailo_whisper_ros.core.errors import HailoWhisperError
    from hailo_whisper_ros.evaluation.datasets import load_dataset
    from hailo_whisper_ros.evaluation.ros_bursts import PUBLISHER_QOS, BurstInput, format_result, run_bursts
    from hailo_whisper_ros.evaluation.ros_session import NodeProcess, local_context

    speeds = [float(speed) for speed in args.speeds.split(",")]
    publishers = args.publishers.split(",")
    unknown = [publisher for publisher in publishers if publisher not in PUBLISHER_QOS]
    if unknown or not speeds or min(speeds) <= 0:
        raise HailoWhisperError(f"--publishers takes {', '.join(PUBLISHER_QOS)} and --speeds positive numbers")
    burst = BurstInput(load_dataset(args.dataset)[: args.clips])
    print(f"burst input: {burst.duration_s:.1f} s of audio, {len(burst.references)} clips, "
          f"{len(burst.payload)} bytes as 48 kHz stereo S16LE", flush=True)
    with local_context() as context:
        recognition = NodeProcess("speech_recognition",
                                  *(["--params-file", args.params_file] if args.params_file else []))
        try:
            if not recognition.wait_for_output("ready: encoder", STARTUP_TIMEOUT_S):
                raise HailoWhisperError(f"speech_recognition did not come up:\n{recognition.log}")
            results = run_bursts(context, burst, speeds, publishers, lambda result: print(format_result(result),
                                                                                          flush=True))
        finally:
            recognition.stop()
    passed = True
    for publisher in publishers:
        runs = [result for result in results if result.publisher == publisher]
        worst = max(100 * (result.wer - runs[0].wer) for result in runs)
        complete = all(result.received == result.published for result in runs)
        passed &= complete and worst <= args.wer_tolerance
        print(f"{publisher}: {'every message received' if complete else 'MESSAGES MISSING'}; WER at most "
              f"{worst:+.1f} points from {runs[0].speed:g}x (tolerance {args.wer_tolerance:g})")
    if args.json:
        args.json.write_text(json.dumps([asdict(result) for result in results], indent=2) + "\n")
    return 0 if passed else 1
