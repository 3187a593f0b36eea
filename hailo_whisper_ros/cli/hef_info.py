"""`hailo-whisper hef-info FILE`: what a HEF is and whether it fits a model directory, before a robot runs it."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = ("a HEF's architecture, compiler, inputs and outputs, window and positional embedding, and whether it fits a "
        "model directory (the check the recognizer runs at start)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("hef", type=Path, metavar="FILE", help="the .hef file")
    parser.add_argument("--model_dir", type=Path, metavar="DIR",
                        help="exported model directory to check the HEF against (d_model, mel bins, vocabulary)")


def run(args: argparse.Namespace) -> int:
    from hailo_whisper_ros.core.backends.hailort import HailoUnavailable, describe_hef
    from hailo_whisper_ros.core.hef_file import (
        FRAMES_PER_SECOND,
        PUBLISHED_HEFS,
        architecture_mismatch,
        model_mismatch,
        read_hef_header,
    )
    from hailo_whisper_ros.core.model_dir import MODEL_INFO, ModelInfo

    header = read_hef_header(args.hef)
    print(f"{args.hef}")
    print(f"  architecture          {header.architecture}  (a Hailo-8 HEF does not run on a Hailo-8L; an 8L one "
          f"runs on both)")
    print(f"  Dataflow Compiler     {header.sdk_version or 'unknown'}  (HailoRT must be of the same release)")
    published = PUBLISHED_HEFS.get(args.hef.name)
    if published:
        print(f"  published by Hailo    Whisper {published.model} {published.part} for {published.architecture}")
    try:
        description = describe_hef(args.hef)
    except HailoUnavailable as unavailable:
        print(f"  streams               not readable here: {unavailable}")
        return 0
    for kind, streams in (("input", description.inputs), ("output", description.outputs)):
        for stream in streams:
            print(f"  {kind:<7} {stream.name:<40} {list(stream.shape)} {stream.format_type} (read as FLOAT32)")
    if description.part == "encoder":
        frames = description.window_frames
        print(f"  encoder window        {frames / FRAMES_PER_SECOND:g} s ({frames} mel frames)")
    else:
        print(f"  decoder positions     {description.sequence_length} tokens, {description.vocabulary} logits over "
              f"{len(description.logit_outputs)} 'conv' outputs")
        embedded = "inside the HEF" if published else "inside the HEF if compiled as Hailo's (since Dec 2025)"
        print(f"  positional embedding  {embedded}; model.decoder_hef_positional_embedding only for a decoder "
              f"compiled without it")
    device = _device_architecture()
    if device is not None:
        mismatch = architecture_mismatch(header.architecture, device)
        print(f"  this device           {device}: " + (f"does NOT run it: {mismatch}" if mismatch else "runs it"))
    if args.model_dir is None:
        return 0
    info = ModelInfo.load(args.model_dir / MODEL_INFO)
    mismatch = model_mismatch(description, info)
    print(f"  fits {args.model_dir}: " + (f"NO: {mismatch}" if mismatch else f"yes ({info.name})"))
    return 1 if mismatch else 0


def _device_architecture() -> str | None:
    """The NPU's architecture, through the VDevice the recognizer would open (None, and a line, if it cannot)."""
    from hailo_whisper_ros.core.backends.hailort import (
        HailoDeviceOptions,
        HailoUnavailable,
        acquire_vdevice,
        device_architecture,
        release_vdevice,
    )

    try:
        _, vdevice = acquire_vdevice(HailoDeviceOptions())
    except HailoUnavailable as unavailable:
        print(f"  this device           not reachable: {unavailable}")
        return None
    try:
        return device_architecture(vdevice)
    finally:
        release_vdevice()
