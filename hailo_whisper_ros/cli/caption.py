"""`hailo-whisper caption`: live captions of a sound file through the streaming recognizer, then its figures."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hailo_whisper_ros.cli.flags import (
    add_cpu_encoder_flag,
    add_model_dir_flag,
    add_option_flags,
    add_streaming_flags,
    options_from_flags,
    streaming_options,
)
from hailo_whisper_ros.core.decoding import DecodingOptions

if TYPE_CHECKING:  # the subcommands import their machinery when run, so that --help stays quick
    from hailo_whisper_ros.evaluation.captioning import CaptionFigures

DECODING_FLAGS = ("language", "initial_prompt", "condition_on_previous", "context_max_tokens", "word_timestamps")
CAPTION_STREAMING_FLAGS = ("partial_interval_ms", "partial_window_s", "partial_budget", "context_reset_silence_s")
HELP = "caption a sound file as a live stream (partial and final lines), then print the captioning figures"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", type=Path, metavar="FILE", help="sound file (wav, flac...; any sample rate and channel count)"
    )
    parser.add_argument(
        "--realtime", action="store_true", help="feed the audio at real-time pace (default: as fast as it is processed)"
    )
    add_streaming_flags(parser, CAPTION_STREAMING_FLAGS)
    add_option_flags(parser, DecodingOptions, DECODING_FLAGS, unset_is_none=True)
    parser.add_argument("--chunk-ms", type=int, default=100, metavar="N", help="audio per feed, in ms (default: 100)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the finals and figures to this JSON file")
    add_model_dir_flag(parser)
    add_cpu_encoder_flag(parser)


def run(args: argparse.Namespace) -> int:
    from hailo_whisper_ros.core.audio import load_audio
    from hailo_whisper_ros.core.config import RecognizerConfig
    from hailo_whisper_ros.evaluation.captioning import caption_stream
    from hailo_whisper_ros.evaluation.memory import load_recognizer
    from hailo_whisper_ros.export.store import resolve_model_dir

    streaming = streaming_options(args, CAPTION_STREAMING_FLAGS)
    decoding = options_from_flags(args, DecodingOptions, DECODING_FLAGS)
    audio = load_audio(args.file)
    model_dir = resolve_model_dir(args.model_dir)
    recognizer, memory = load_recognizer(RecognizerConfig(model_dir, encoder=args.encoder))
    captions = caption_stream(
        recognizer, memory, audio, streaming, args.chunk_ms, args.realtime, CaptionPrinter(sys.stdout).show, decoding
    )

    pace = "real time" if args.realtime else "as fast as possible"
    partials = f"partials every {streaming.partial_interval_ms} ms" if streaming.partial_interval_ms else "no partials"
    print(f"\ncaptioning figures ({model_dir.name}, encoder {args.encoder} on {recognizer.encoder_backend}, "
          f"{partials}, fed {pace} in {args.chunk_ms} ms chunks):")
    print(format_figures(captions.figures))
    if args.json:
        from hailo_whisper_ros.evaluation.languages import language_figures
        from hailo_whisper_ros.evaluation.word_timings import words_as_json

        report = {
            "finals": [
                {
                    "id": event.utterance_id,
                    "text": event.text,
                    "start_s": round(event.speech_start_s, 3),
                    "end_s": round(event.speech_end_s, 3),
                    "latency_ms": round(event.latency_ms, 1),
                    **language_figures(event.result),
                    **({"words": words_as_json(event.words)} if decoding.word_timestamps else {}),
                }
                for event in captions.finals
            ],
            "partials": captions.stats.partials,
            "figures": captions.figures.as_json(),
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


class CaptionPrinter:
    """Final lines with their times; partial lines overwritten in place on a terminal, plain lines otherwise."""

    def __init__(self, out):
        self.out = out
        self.tty = out.isatty()

    def show(self, event) -> None:
        times = f"[{event.speech_start_s:7.2f} - {event.speech_end_s:7.2f}]"
        if event.kind == "final":
            line = f"{times} {event.text or '(no speech)'}  ({event.latency_ms:.0f} ms)"
            self.out.write(f"\r\x1b[K{line}\n" if self.tty else f"final   {line}\n")
        elif self.tty:
            # \r can only overwrite a line that did not wrap.
            width = shutil.get_terminal_size().columns - 1
            self.out.write(f"\r\x1b[K{times} {event.text} ..."[: width + 4])
        else:
            self.out.write(f"partial {times} {event.text}\n")
        self.out.flush()


# CaptionFigures' fields as the command prints them.
FIGURE_LABELS = {
    "audio_s": "audio duration (s)",
    "model_memory_mb": "model memory (MB)",
    "inference_calls": "inference calls total",
    "partial_segments": "partial segments transcribed",
    "full_segments": "full segments transcribed",
    "finals_decoded_in_pause": "  of which decoded in the final pause",
    "frames_transcribed": "frames transcribed",
    "speech_s_transcribed": "speech time transcribed (s)",
    "inference_s": "total inference time (s)",
    "processing_s": "total processing wall time (s)",
    "rtfx": "RTFx (audio / processing wall time)",
    "final_latency_p50_ms": "final latency p50 (ms)",
    "final_latency_p95_ms": "final latency p95 (ms)",
    "partials_skipped": "partials skipped (behind)",
    "partial_events": "partial results published",
    "no_speech_rejections": "utterances rejected as no speech",
    "errors": "inference errors",
    "audio_dropped_s": "audio dropped (s)",
    "decoder_steps": "decoder one-token passes",
    "draft_tokens_accepted": "tokens verified from drafts",
    "decoder_ms_per_token": "decoder ms per token, drafts included",
    "final_delay_after_speech_p50_ms": "final delay after end of speech p50 (ms)",
    "final_delay_after_speech_p95_ms": "final delay after end of speech p95 (ms)",
}


def format_figures(figures: CaptionFigures) -> str:
    def value(number) -> str:
        if number is None:
            return "-"
        return f"{number:.2f}" if isinstance(number, float) else str(number)

    return "\n".join(f"  {FIGURE_LABELS[name]:<40} {value(number)}" for name, number in figures.as_json().items())
