"""`hailo-whisper caption`: live captions of a sound file through the streaming recognizer, then its figures."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from hailo_whisper_ros.core import HailoWhisperError

HELP = "caption a sound file as a live stream (partial and final lines), then print the captioning figures"

ENCODERS = ("10s", "30s", "dynamic")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", type=Path, metavar="FILE", help="sound file (wav, flac...; any sample rate and channel count)"
    )
    parser.add_argument(
        "--realtime", action="store_true", help="feed the audio at real-time pace (default: as fast as it is processed)"
    )
    parser.add_argument(
        "--partial-interval-ms", type=int, metavar="N", default=None,
        help="partial transcript every N ms of new speech; 0 = no partials (default: StreamingOptions' 1000)",
    )
    parser.add_argument("--chunk-ms", type=int, default=100, metavar="N", help="audio per feed, in ms (default: 100)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the finals and figures to this JSON file")
    parser.add_argument(
        "--model-dir", type=Path, metavar="DIR",
        help="exported model directory (default: $HAILO_WHISPER_MODEL_DIR, else the source tree's models/tiny.en, "
        "else tiny.en exported to ~/.cache/hailo_whisper_ros on first use)",
    )
    parser.add_argument("--encoder", choices=ENCODERS, default="10s", help="CPU encoder (default: 10s)")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from hailo_whisper_ros.core.audio import SAMPLE_RATE, load_audio
    from hailo_whisper_ros.core.model_store import resolve_model_dir
    from hailo_whisper_ros.core.recognizer import Recognizer, RecognizerConfig
    from hailo_whisper_ros.core.streaming import StreamingOptions, StreamingTranscriber

    if not 5 <= args.chunk_ms <= 10000:
        raise HailoWhisperError(f"--chunk-ms must be in [5, 10000], not {args.chunk_ms}")
    streaming = StreamingOptions() if args.partial_interval_ms is None else StreamingOptions(args.partial_interval_ms)
    audio = load_audio(args.file)
    model_dir = resolve_model_dir(args.model_dir)
    recognizer = Recognizer(RecognizerConfig(model_dir, encoder=args.encoder))
    transcriber = StreamingTranscriber(recognizer, streaming=streaming)
    printer = CaptionPrinter(sys.stdout)

    chunk = args.chunk_ms * SAMPLE_RATE // 1000
    chunk_s = chunk / SAMPLE_RATE
    n_chunks = -(-len(audio) // chunk)
    finals = []
    delays_after_speech_ms = []  # real time only: from the end of the speech to its final on screen
    processing_s = 0.0
    fed = 0
    started = time.perf_counter()
    while fed < n_chunks:
        # Real time: a chunk can be fed once its last sample was "recorded"; everything due is fed before the
        # worker runs, so a slow worker finds a backlog, as it would behind a microphone.
        due = min(int((time.perf_counter() - started) / chunk_s), n_chunks) if args.realtime else fed + 1
        if due <= fed:
            time.sleep(max(started + (fed + 1) * chunk_s - time.perf_counter(), 0.0))
            continue
        work_started = time.perf_counter()
        for index in range(fed, due):
            transcriber.feed(audio[index * chunk : (index + 1) * chunk])
        fed = due
        events = transcriber.process_pending() if fed < n_chunks else transcriber.flush()
        processing_s += time.perf_counter() - work_started
        for event in events:
            printer.show(event)
            if event.kind == "final" and event.text:  # an empty final held no speech
                finals.append(event)
                delays_after_speech_ms.append((time.perf_counter() - started - event.speech_end_s) * 1e3)

    stats = transcriber.stats()
    audio_s = len(audio) / SAMPLE_RATE
    memory = recognizer.memory
    full_segments = stats.utterances + stats.no_speech_rejections  # one decode per final
    figures = {
        "audio_s": audio_s,
        "model_memory_mb": memory.after_warmup_mb - memory.before_load_mb,
        "inference_calls": stats.inference_calls,
        # Every other successful decode was of a part of an utterance (a partial, or a pause that went on).
        "partial_segments": stats.inference_calls - stats.errors - full_segments,
        "full_segments": full_segments,
        "finals_decoded_in_pause": stats.finals_precomputed,
        "frames_transcribed": stats.frames_transcribed,
        "speech_s_transcribed": stats.speech_s_transcribed,
        "inference_s": stats.inference_s,
        "processing_s": processing_s,
        "rtfx": audio_s / processing_s if processing_s else 0.0,
        "final_latency_p50_ms": stats.final_latency_p50_ms,
        "final_latency_p95_ms": stats.final_latency_p95_ms,
        "partial_events": stats.partials,
        "partials_skipped": stats.partials_skipped,
        "no_speech_rejections": stats.no_speech_rejections,
        "errors": stats.errors,
        "audio_dropped_s": stats.audio_dropped_s,
    }
    if args.realtime and finals:
        # What a listener waits for: the VAD's min_silence_ms, then the latency above.
        figures["final_delay_after_speech_p50_ms"] = float(np.percentile(delays_after_speech_ms, 50))
        figures["final_delay_after_speech_p95_ms"] = float(np.percentile(delays_after_speech_ms, 95))
    pace = "real time" if args.realtime else "as fast as possible"
    partials = f"partials every {streaming.partial_interval_ms} ms" if streaming.partial_interval_ms else "no partials"
    print(f"\ncaptioning figures ({model_dir.name}, encoder {args.encoder} on {recognizer.encoder_backend}, "
          f"{partials}, fed {pace} in {args.chunk_ms} ms chunks):")
    print(format_figures(figures))
    if args.json:
        report = {
            "finals": [
                {
                    "id": event.utterance_id,
                    "text": event.text,
                    "start_s": round(event.speech_start_s, 3),
                    "end_s": round(event.speech_end_s, 3),
                    "latency_ms": round(event.latency_ms, 1),
                }
                for event in finals
            ],
            "partials": stats.partials,
            "figures": figures,
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
    "final_delay_after_speech_p50_ms": "final delay after end of speech p50 (ms)",
    "final_delay_after_speech_p95_ms": "final delay after end of speech p95 (ms)",
}


def format_figures(figures: dict) -> str:
    def value(number) -> str:
        if number is None:
            return "-"
        return f"{number:.2f}" if isinstance(number, float) else str(number)

    return "\n".join(f"  {FIGURE_LABELS[key]:<40} {value(number)}" for key, number in figures.items())
