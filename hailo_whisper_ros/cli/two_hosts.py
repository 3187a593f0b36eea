"""`hailo-whisper two-hosts`: a robot and a base station over a lossy link (issue 31). Two network namespaces joined
by a 20 Mbit/s veth link, the server's ingress losing UDP packets at random (nftables), the dev clips played at 1x on
the robot and recognized on the server, for each design (today's messages and DDS defaults; the Fast DDS profile of
config/ with 300-sample speech messages) at one host and each loss rate, interleaved; then three robots on one
server. Needs root, iproute2 and nftables (evaluation/netns.py); every packet stays in the namespaces it makes."""

from __future__ import annotations

import argparse
from pathlib import Path

from hailo_whisper_ros.cli.flags import add_flag, add_model_dir_flag

HELP = "WER, finals and person waits of a robot + base station over a lossy link; three robots on one server"
DEFAULT_SPEECH_DEV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "speech_dev"
ROBOTS = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "audio_folder", type=Path, default=DEFAULT_SPEECH_DEV, metavar="DIR",
             help="clips with references (default: ../shared/data/speech_dev)")
    add_model_dir_flag(parser)
    add_flag(parser, "limit", type=int, default=30, metavar="N", help="the first N clips with speech (default: 30)")
    add_flag(parser, "loss", type=int, nargs="+", default=[3, 10], metavar="PERCENT",
             help="random UDP loss rates at the server's ingress (default: 3 10)")
    add_flag(parser, "loss_units", nargs="+", default=["datagram", "packet"], choices=("datagram", "packet"),
             help="what is lost: whole UDP datagrams (the input hook, after reassembly: issue 31's table) and/or IP "
             "packets, each fragment on its own (netdev ingress: a radio's frames) (default: both)")
    add_flag(parser, "designs", default="today,new", help="some of today,new (default: both, interleaved)")
    add_flag(parser, "robots_loss", type=int, default=10, metavar="PERCENT",
             help="loss of the three-robot run, new design (default: 10; -1 skips it)")
    add_flag(parser, "threads", type=int, default=2, metavar="N", help="each recognizer's threads (default: 2)")


def run(args: argparse.Namespace) -> int:
    import tempfile

    from hailo_whisper_ros.core.errors import HailoWhisperError
    from hailo_whisper_ros.evaluation import netns, two_hosts
    from hailo_whisper_ros.evaluation.datasets import list_clips
    from hailo_whisper_ros.evaluation.machine import machine_info
    from hailo_whisper_ros.export.store import resolve_model_dir

    if reason := netns.unavailable():
        raise HailoWhisperError(reason)
    designs = [{"today": two_hosts.TODAY, "new": two_hosts.NEW}[name] for name in args.designs.split(",")]
    clips = [clip for clip in list_clips(args.audio_folder).clips if clip.reference.strip()][: args.limit]
    model_dir = resolve_model_dir(args.model_dir)
    machine = machine_info(args.threads)
    print(f"two-hosts: {len(clips)} clips of {args.audio_folder} at 1x; {machine['cpu']}; {machine['date']}; "
          f"load average {machine['load_average_1min']:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as scratch, netns.lossy_link() as link:
        robot = _robot(clips, "", Path(scratch))
        links = [(None, "packet")] + [(loss, unit) for unit in args.loss_units for loss in args.loss]
        runs = [two_hosts.measure_link(link, design, loss, [robot], model_dir, args.threads, unit)
                for loss, unit in links for design in designs if _announce(design, loss, unit)]
        print("\n".join(_table(runs, len(clips))))
        if args.robots_loss >= 0:
            _three_robots(link, clips, Path(scratch), args, model_dir)
    return 0


def _announce(design, loss, unit) -> bool:
    print(f"  {design.name}, {_link(loss, unit)} ...", flush=True)
    return True


def _link(loss, unit) -> str:
    return "one host" if loss is None else f"{loss} % of UDP {unit}s lost"


def _robot(clips, namespace: str, scratch: Path):
    from hailo_whisper_ros.evaluation.long_recording import build_long_recording
    from hailo_whisper_ros.evaluation.ros_layouts import write_driver_wav
    from hailo_whisper_ros.evaluation.two_hosts import Robot

    recording = build_long_recording(clips)
    return Robot(namespace, recording, write_driver_wav(recording, scratch / f"{namespace or 'robot'}.wav"))


def _table(runs, clips: int) -> list[str]:
    lines = ["\n| design | link | WER | finals | clips waited for | person waits p50 | p95 | UDP packets dropped "
             "| robot -> server | server -> robot | recognizer RTF |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        figures, counters = run.robots[0], run.counters
        link = _link(run.loss_percent, run.loss_unit)
        lines.append(
            f"| {run.design} | {link} | {100 * figures.wer:.2f} % | {figures.finals} | {figures.clips_waited_for}/"
            f"{clips} | {_ms(figures.waits_p50_ms)} | {_ms(figures.waits_p95_ms)} | {counters.dropped_packets} | "
            f"{counters.robot_to_server_bytes / 1e6:.2f} MB | {counters.server_to_robot_bytes / 1e6:.2f} MB | "
            f"{figures.real_time_factor:.3f} |")
    return lines


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def _three_robots(link, clips, scratch: Path, args, model_dir: Path) -> None:
    from hailo_whisper_ros.evaluation import two_hosts

    groups = [clips[index::ROBOTS] for index in range(ROBOTS)]
    robots = [_robot(group, f"robot{index + 1}", scratch) for index, group in enumerate(groups)]
    print(f"\nthree robots on one server, {two_hosts.NEW.name}, {_link(args.robots_loss, 'packet')} ...", flush=True)
    run = two_hosts.measure_link(link, two_hosts.NEW, args.robots_loss, robots, model_dir, args.threads, "packet")
    for robot, figures in zip(robots, run.robots):
        print(f"  {robot.namespace}: WER {100 * figures.wer:.2f} %, {figures.finals} finals, "
              f"{figures.clips_waited_for}/{len(robot.recording.clips)} clips waited for, person waits p50 "
              f"{_ms(figures.waits_p50_ms)}, p95 {_ms(figures.waits_p95_ms)}, recognizer RTF "
              f"{figures.real_time_factor:.3f}")
    print(f"  finals nearer another robot's clip than their own: {two_hosts.crossings(run, robots)}")
    print(f"  server RTF (its recognizers' inference per second of audio, summed): "
          f"{sum(figures.real_time_factor for figures in run.robots):.3f}")
