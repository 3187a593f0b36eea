"""`make demo`: the composed speech_recognition node and a wav_source playing real speech over real DDS; prints
each partial and final transcript as it arrives on the topics, then the diagnostics of every node.

Traffic stays on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) in a domain of its own.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from hailo_whisper_ros.evaluation.datasets import SPEECH_SAMPLES

DEFAULT_CLIPS = [
    "jfk/jfk.flac",
    "librispeech_testclean_kw/1089-134686-0000.flac",
    "ljspeech_coqui/LJ001-0005.flac",
    "pocketsphinx_librivox/sense_and_sensibility_01_austen_64kb-0870.flac",
]
STARTUP_TIMEOUT_S = 120.0  # loading the model, exporting it first on a fresh machine
PLAYBACK_TIMEOUT_S = 3600.0
GAP_S = 1.0  # silence after each file: the VAD's pause that ends its last utterance
SETTLE_S = 3.0  # done once the nodes' queues are empty and no result came this long after the audio
SETTLE_TIMEOUT_S = 120.0
LEVELS = ("OK", "WARN", "ERROR", "STALE")  # diagnostic_msgs/DiagnosticStatus levels 0..3

HELP = "real speech through the composed ROS node over DDS on this machine: transcripts and diagnostics"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", help=f"sound files (default: {len(DEFAULT_CLIPS)} shipped clips)")
    parser.add_argument("--speed", type=float, default=1.0, help="playback pace, a multiple of real time")
    parser.add_argument("--params-file", help="parameter file of the nodes (default: the declared defaults)")


def print_record(record) -> None:
    """A partial or final hailo_whisper_msgs/Transcript as it arrives."""
    if not record.final:
        print(f"  partial #{record.utterance_id}: {record.text}", flush=True)
    else:
        print(
            f"FINAL   #{record.utterance_id} [{record.start_s:6.2f}-{record.end_s:6.2f} s, "
            f"{record.latency_ms:.0f} ms after end of speech]: {record.text or '(no speech)'}",
            flush=True,
        )


def run(args: argparse.Namespace) -> int:
    from hailo_whisper_ros.evaluation.ros_session import Listener, NodeProcess, local_context, play

    files = args.files or [str(SPEECH_SAMPLES / clip) for clip in DEFAULT_CLIPS]
    with local_context() as context:
        listener = Listener(context, node_name="demo_listener", on_record=print_record)
        print(f"starting speech_recognition (ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}) ...", flush=True)
        recognition = NodeProcess("speech_recognition", "--log-level", "warn",
                                  *(["--params-file", args.params_file] if args.params_file else []), echo=True)
        try:
            listener.wait_for(lambda: listener.latest("recognizer") is not None or not recognition.running(),
                              STARTUP_TIMEOUT_S)
            if listener.latest("recognizer") is None:
                print("speech_recognition did not come up", file=sys.stderr)
                return 1
            print(f"playing {len(files)} file(s) at {args.speed:g}x real time on 'audio'", flush=True)
            play(files, args.speed, GAP_S, PLAYBACK_TIMEOUT_S, "--log-level", "warn", echo=True)
            # The last utterance's final follows the closing silence.
            listener.wait_until_caught_up(time.monotonic(), SETTLE_S, SETTLE_TIMEOUT_S)
            print("\ndiagnostics:")
            statuses = listener.latest_statuses()
            for name in sorted(statuses):
                status = statuses[name]
                print(f"  {name}: {LEVELS[status.level]} - {status.message}")
                for key, value in status.values.items():
                    print(f"      {key}: {value}")
        finally:
            recognition.stop()
            listener.close()
        return 0 if any(record.final for record in listener.events) else 1
