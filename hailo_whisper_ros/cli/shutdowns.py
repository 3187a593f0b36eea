"""`hailo-whisper shutdowns`: Ctrl-C the composed speech_recognition process N times while real speech flows to it
and it transcribes, directly or through the launch file (`--launch`); one line per stop: exit status, time to exit
and every line it printed that is not an INFO log line.

Exit status 0 when every stop was clean: status 0, within --max_seconds, no such line.
"""

from __future__ import annotations

import argparse

HELP = "stop speech_recognition with Ctrl-C N times while audio flows and check each exits cleanly and in time"


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=positive_int, default=20, metavar="N", help="stops to make (default: 20)")
    parser.add_argument("--launch", action="store_true",
                        help="start it with launch/speech_recognition.launch.py in a LaunchService, as `ros2 launch` "
                        "does, and Ctrl-C that (needs launch and launch_ros installed)")
    parser.add_argument("--max_seconds", type=float, default=2.0, metavar="S",
                        help="longest clean time from SIGINT to exit (default: 2)")


def run(args: argparse.Namespace) -> int:
    from hailo_whisper_ros.evaluation.shutdowns import passed, report_line, stops, summary

    results = []
    for index, stop in enumerate(stops(args.runs, args.launch), start=1):
        results.append(stop)
        print(report_line(index, stop), flush=True)
    print(summary(results, args.max_seconds))
    return 0 if all(passed(stop, args.max_seconds) for stop in results) else 1
