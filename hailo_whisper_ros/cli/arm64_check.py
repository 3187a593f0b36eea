"""`hailo-whisper arm64-check`: `pipeline` on a folder of clips under an emulated Raspberry Pi CPU (qemu-user, the
aarch64 wheels, build/arm64 made by tools/arm64.sh) and natively, with the same export: prints the WER of each and
which transcripts differ (evaluation/arm64.py). Emulation is tens of times slower than native.

Exit status 0 when every transcript is byte-identical, 1 when some differ, 2 when a run fails or qemu-user is missing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hailo_whisper_ros.cli.flags import add_flag, add_model_dir_flag

HELP = "transcripts under an emulated arm64 CPU (Raspberry Pi 5's Cortex-A76 by default) against this machine's"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hailo_whisper_ros.evaluation.arm64 import CPUS
    from hailo_whisper_ros.evaluation.datasets import SPEECH_SAMPLES

    add_flag(parser, "audio_folder", type=Path, default=SPEECH_SAMPLES, metavar="DIR",
             help=f"clips with references, as `pipeline --audio_folder` reads them (default: {SPEECH_SAMPLES})")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N clips")
    parser.add_argument("--cpu", choices=CPUS, default=CPUS[0],
                        help="the emulated CPU (QEMU_CPU and its /proc/cpuinfo): cortex-a76 is a Raspberry Pi 5's, "
                        "cortex-a72 a Raspberry Pi 4's (default: %(default)s)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write both runs' reports here")
    add_model_dir_flag(parser)


def run(args: argparse.Namespace) -> int:
    from hailo_whisper_ros.evaluation import arm64
    from hailo_whisper_ros.evaluation.machine import machine_info
    from hailo_whisper_ros.export.store import resolve_model_dir

    model_dir = resolve_model_dir(args.model_dir)
    emulated_cpu = arm64.prepare(args.cpu)
    print(f"{args.audio_folder}: pipeline under QEMU_CPU={args.cpu}, then natively; model {model_dir}", flush=True)
    comparison = arm64.compare(emulated_cpu, args.audio_folder, model_dir, args.limit)
    machine = machine_info(threads=comparison.native["summary"]["configuration"]["threads"])
    print(f"finished {machine['date']} on {machine['cpu']} ({machine['cpu_count']} cores, load average "
          f"{machine['load_average_1min']:.1f})\n")
    print(arm64.format_table(comparison, machine["cpu"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"cpu": args.cpu, "machine": machine, "native": comparison.native,
                                         "emulated": comparison.emulated}, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 1 if comparison.differing else 0
