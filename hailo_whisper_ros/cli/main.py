"""`hailo-whisper`: one command, a subcommand per job (export, hef-info, pipeline, compare, variants, caption, bench,
soak, bursts, shutdowns, demo, languages, long-form, vocabulary, pause-ends, arm64-check,
word-timings, two-hosts, rooms).

Each subcommand lives in ``hailo_whisper_ros/cli/<name>.py`` with ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; heavy imports happen inside ``run`` so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from hailo_whisper_ros.core.errors import HailoWhisperError

SUBCOMMANDS = (
    "export", "hef-info", "pipeline", "compare", "variants", "caption", "bench", "soak", "bursts", "shutdowns", "demo",
    "languages", "long-form", "vocabulary", "pause-ends", "arm64-check", "word-timings", "two-hosts", "rooms",
)


def _command_modules():
    for name in SUBCOMMANDS:
        yield name, importlib.import_module(f"hailo_whisper_ros.cli.{name.replace('-', '_')}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hailo-whisper", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in _command_modules():
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except HailoWhisperError as error:
        print(f"hailo-whisper {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
