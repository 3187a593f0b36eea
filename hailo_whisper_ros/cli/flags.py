"""Command-line flags shared by the subcommands, made from the core's option declarations (``core/options.py``):
the same name, default, range and description as the ROS parameter of each option."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hailo_whisper_ros.core.config import CPU_ENCODER_KINDS, RecognizerConfig
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.options import declared

# The decoding controls that pipeline and compare offer (the others keep their declared defaults there).
DECODING_FLAGS = ("pad_encoder_output_to", "repetition_penalty", "eos_boost_threshold", "language", "word_timestamps")
_TYPES = {"int": int, "float": float, "str": str, "path": Path}


def add_flag(parser, name: str, **kwargs) -> None:
    """--name_with_underscores as the Pi 5 Hailo-8L study's whisper_on_hailo_pipeline.py spells it (README, Sources),
    and --name-with-dashes as the other commands do."""
    dashed = name.replace("_", "-")
    flags = [f"--{name}"] + ([f"--{dashed}"] if dashed != name else [])
    parser.add_argument(*flags, dest=name, **kwargs)


def add_option_flags(parser, options_type: type, names: Sequence[str], unset_is_none: bool = False) -> None:
    """One flag per named option of ``options_type``, defaulting to the declared default (or, with
    ``unset_is_none``, to None, so that a command can tell a flag left out from one given)."""
    specs = {f.name: (f, spec) for f, spec in declared(options_type)}
    for name in names:
        declared_field, spec = specs[name]
        default = declared_field.default
        help_text = f"{spec.help_text(with_none_as=False)} Default: {'none' if default is None else default}."
        help_text = help_text.replace("%", "%%")  # argparse formats help strings with %
        flag_default = None if unset_is_none else default
        if spec.kind == "bool":
            add_flag(parser, name, action=argparse.BooleanOptionalAction, default=flag_default, help=help_text)
        else:
            metavar = spec.unit.upper() if spec.unit else name.split("_")[-1].upper()
            add_flag(parser, name, type=_TYPES[spec.kind], default=flag_default, metavar=metavar,
                     choices=spec.choices, help=help_text)


def options_from_flags(args: argparse.Namespace, options_type: type, names: Sequence[str], **fixed: Any):
    """The options object of the given flags' values (and ``fixed`` ones); flags left out (None) and the other
    options keep their declared defaults. Invalid values raise HailoWhisperError naming the option."""
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    return options_type(**given, **fixed)


def add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    """Decoding and runtime controls shared by pipeline and compare."""
    group = parser.add_argument_group("decoding")
    add_option_flags(group, DecodingOptions, DECODING_FLAGS)
    add_option_flags(group, RecognizerConfig, ("threads",))


def decoding_options(args: argparse.Namespace) -> DecodingOptions:
    return options_from_flags(args, DecodingOptions, DECODING_FLAGS)


def add_model_dir_flag(parser) -> None:
    add_flag(parser, "model_dir", type=Path, metavar="DIR",
             help="exported model directory (default: $HAILO_WHISPER_MODEL_DIR, else tiny.en in the user's cache, "
             "exported there on first use)")


def add_decoder_hef_flags(parser) -> None:
    """Hailo's fixed-sequence decoder HEF and the embedding files it needs."""
    add_option_flags(parser, RecognizerConfig, (
        "decoder_hef_file", "decoder_hef_token_embedding", "decoder_hef_positional_embedding"
    ))


STREAMING_FLAGS = ("partial_interval_ms", "max_queue_s")


def add_streaming_flags(parser, names: Sequence[str] = STREAMING_FLAGS) -> None:
    """Flags of the streaming options (left out: the declared default, told apart as None)."""
    from hailo_whisper_ros.core.transcripts import StreamingOptions

    add_option_flags(parser, StreamingOptions, names, unset_is_none=True)


def streaming_options(args: argparse.Namespace, names: Sequence[str] = STREAMING_FLAGS):
    from hailo_whisper_ros.core.transcripts import StreamingOptions

    return options_from_flags(args, StreamingOptions, names)


def add_cpu_encoder_flag(parser: argparse.ArgumentParser) -> None:
    """--encoder, restricted to the CPU kinds (commands that run no HEF)."""
    default = next(f.default for f, _ in declared(RecognizerConfig) if f.name == "encoder")
    parser.add_argument("--encoder", choices=CPU_ENCODER_KINDS, default=default,
                        help=f"CPU encoder (default: {default})")
