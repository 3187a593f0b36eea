"""`hailo-whisper compare`: every encoder/decoder set-up available here, faster-whisper and whisper.cpp (through
pywhispercpp, on the model directory's ggml-model-f16.bin from `export --ggml`), on the same clips. whisper.cpp's
threads spin-wait for work: run compare un-niced.

All configurations are loaded in one process and run interleaved clip by clip, the order rotating by one each clip,
so machine noise (other processes, thermal state) hits all of them alike. Each is warmed up on the first clip
before any timing. Peak memory is measured separately, in a fresh process per configuration (see
evaluation.memory).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hailo_whisper_ros.cli.flags import (
    add_decoder_hef_flags,
    add_decoding_arguments,
    add_flag,
    add_model_dir_flag,
    decoding_options,
)
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.export.store import resolve_model_dir

HELP = "compare WER, latency and memory of the ONNX, Hailo and faster-whisper set-ups on a folder of clips"

BASELINE_KEY = "fw-int8"  # every configuration's speed is given relative to faster-whisper int8 ...
WHISPER_CPP_KEY = "cpp-f16"  # ... and to whisper.cpp
DEFAULT_KEY = "dynamic-int8"  # the default set-up, whose figures are set beside the offline targets
# "dynamic" is the model's dynamic encoder with INT8 MatMuls (core/model_dir.ONNX_ENCODER_FILES), "dynamic32" its
# FP32 original.
ONNX_ENCODERS = (("30s", "ONNX 30 s encoder"), ("10s", "ONNX 10 s encoder"),
                 ("dynamic32", "ONNX dynamic FP32 encoder"), ("dynamic", "ONNX dynamic encoder, INT8 MatMuls"))
DECODERS = (("fp32", "FP32 decoder"), ("int8", "INT8 decoder"))
FASTER_WHISPER_TYPES = ("int8", "float32")
CONFIG_KEYS = (
    *(f"{encoder}-{decoder}" for encoder, _ in ONNX_ENCODERS for decoder, _ in DECODERS),
    *(f"hef-{decoder}" for decoder, _ in DECODERS), "hef-hef",
    *(f"fw-{compute_type}" for compute_type in FASTER_WHISPER_TYPES), WHISPER_CPP_KEY,
)


@dataclass(frozen=True)
class Candidate:
    """A configuration this machine might run: its spec, or why it cannot run here."""

    key: str
    spec: object | None  # RecognizerSpec or FasterWhisperSpec
    unavailable: str | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "audio_folder", type=Path, required=True, metavar="DIR",
             help="folder of clips with references (layouts as for `pipeline --audio_folder`)")
    add_model_dir_flag(parser)
    add_flag(parser, "configs", metavar="KEY,KEY",
             help=f"only these configurations, of {', '.join(CONFIG_KEYS)} (default: all that can run here)")
    add_flag(parser, "limit", type=int, metavar="N", help="only the first N clips")
    add_flag(parser, "out", type=Path, default=Path("out/compare"), metavar="DIR",
             help="where compare.md, compare.json and compare.png go (default: out/compare)")
    add_flag(parser, "ct2_model_dir", type=Path, metavar="DIR",
             help="CTranslate2 model of the same weights for the faster-whisper baselines "
             "(default: the packaged one for tiny.en)")
    add_flag(parser, "encoder_hef_file", type=Path, metavar="HEF",
             help="also run this encoder HEF with the FP32 and INT8 decoders, if a Hailo device is present")
    add_decoder_hef_flags(parser)  # with --encoder_hef_file: also run the HEF pair
    add_decoding_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from hailo_whisper_ros.core.audio import load_audio
    from hailo_whisper_ros.core.constants import SAMPLE_RATE
    from hailo_whisper_ros.evaluation.datasets import list_clips
    from hailo_whisper_ros.evaluation.machine import machine_info

    started = time.perf_counter()
    if args.limit is not None and args.limit < 1:
        raise HailoWhisperError(f"--limit must be >= 1, not {args.limit}")
    if args.threads < 1:
        raise HailoWhisperError(f"--threads must be >= 1, not {args.threads}")
    _require_matplotlib()
    model_dir = resolve_model_dir(args.model_dir)
    info = _model_info(model_dir)
    options = decoding_options(args)
    candidates = _select(_candidates(args, model_dir, info, options), args.configs)

    folder = list_clips(args.audio_folder)
    clips = folder.clips[: args.limit]
    audio = [load_audio(clip.audio_path) for clip in clips]
    longest = max(range(len(clips)), key=lambda i: len(audio[i]))
    memory_clip = {"id": clips[longest].id, "duration_s": round(len(audio[longest]) / SAMPLE_RATE, 3)}
    machine = machine_info(args.threads)
    print(f"{len(clips)} clips of {folder.root} ({folder.describe()}); model {info.name} ({model_dir}); "
          f"{args.threads} threads; load average {machine['load_average_1min']:.2f}")
    skipped = {c.key: c.unavailable for c in candidates if c.unavailable}
    # Measured before anything is loaded here, so a HEF configuration's child process can open the Hailo device.
    memory = _peak_memory([c for c in candidates if c.key not in skipped], clips[longest], skipped)
    for key, reason in skipped.items():
        print(f"skipped {key}: {reason}")

    specs = [c.spec for c in candidates if c.key not in skipped]
    if not specs:
        raise HailoWhisperError("no configuration can run here")
    runs = _run_interleaved(specs, clips, audio)

    wall_s = time.perf_counter() - started
    machine["load_average_1min_end"] = os.getloadavg()[0]
    report = _report(specs, runs, memory, skipped, memory_clip, folder, machine, wall_s)
    _write(args.out, report, specs, runs)
    print(f"wrote {args.out / 'compare.md'}, compare.json, compare.png ({wall_s:.0f} s wall time)")
    return 0


def _model_info(model_dir: Path):
    from hailo_whisper_ros.core.model_dir import MODEL_INFO, ModelInfo, find_beside

    try:
        return ModelInfo.load(find_beside(model_dir, MODEL_INFO))
    except FileNotFoundError as error:
        raise HailoWhisperError(str(error)) from None


def _run_interleaved(specs: list, clips, audio) -> dict:
    """Each spec's engine, all loaded first, run interleaved on the clips: key -> its ClipRuns."""
    from hailo_whisper_ros.evaluation.engines import run_interleaved

    engines = []
    for spec in specs:
        print(f"loading {spec.key}...", file=sys.stderr)
        engines.append(spec.create())
    return dict(zip((spec.key for spec in specs), run_interleaved(engines, clips, audio)))


def _write(out: Path, report: dict, specs: list, runs: dict) -> None:
    """compare.md (printed too), compare.json and compare.png into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    table = _markdown(report)
    (out / "compare.md").write_text(table)
    (out / "compare.json").write_text(json.dumps(report, indent=2) + "\n")
    _plot(specs, runs, out / "compare.png")
    print()
    print(table)


def _peak_memory(candidates: list[Candidate], clip, skipped: dict[str, str]) -> dict:
    """Each configuration's PeakMemory by key; a HEF one that falls back to the CPU is moved to skipped."""
    from hailo_whisper_ros.evaluation.memory import measure_peak_memory

    memory = {}
    for candidate in candidates:
        print(f"peak memory of {candidate.key} (fresh process, longest clip {clip.id})...", file=sys.stderr)
        figures = measure_peak_memory(candidate.spec, [clip.audio_path])
        if figures.fallback_reason:  # no usable Hailo device on this machine
            skipped[candidate.key] = f"Hailo HEF not usable: {figures.fallback_reason}"
        else:
            memory[candidate.key] = figures
    return memory


def _candidates(args: argparse.Namespace, model_dir: Path, info, options) -> list[Candidate]:
    """Every configuration in table order, each with its spec or the reason it cannot run here."""
    return [*_recognizer_candidates(args, model_dir, options), *_baseline_candidates(args, model_dir, info, options)]


def _recognizer_candidates(args: argparse.Namespace, model_dir: Path, options) -> list[Candidate]:
    """Our set-ups: each ONNX encoder with each decoder, then with --encoder_hef_file the HEF ones."""

    def candidate(key: str, label: str, encoder: str, decoder: str, **hef) -> Candidate:
        return _recognizer_candidate(key, label, model_dir, encoder, decoder, args.threads, options, **hef)

    candidates = [
        candidate(f"{encoder}-{decoder}", f"{encoder_label} + {decoder_label}", encoder, decoder)
        for encoder, encoder_label in ONNX_ENCODERS
        for decoder, decoder_label in DECODERS
    ]
    if args.encoder_hef_file is not None:
        candidates += [
            candidate(f"hef-{decoder}", f"Hailo encoder HEF + {decoder_label}", "hef", decoder,
                      encoder_file=args.encoder_hef_file)
            for decoder, decoder_label in DECODERS
        ]
        if args.decoder_hef_file is not None:
            if args.decoder_hef_token_embedding is None:
                raise HailoWhisperError("--decoder_hef_file needs --decoder_hef_token_embedding")
            candidates.append(candidate(
                "hef-hef", "Hailo encoder HEF + Hailo decoder HEF", "hef", "int8",
                encoder_file=args.encoder_hef_file, decoder_hef_file=args.decoder_hef_file,
                decoder_hef_token_embedding=args.decoder_hef_token_embedding,
                decoder_hef_positional_embedding=args.decoder_hef_positional_embedding,
            ))
    return candidates


def _recognizer_candidate(key: str, label: str, model_dir: Path, encoder: str, decoder: str, threads: int, options,
                          **hef) -> Candidate:
    """One of our set-ups; it cannot run when a file it reads is missing ("dynamic32": the dynamic encoder's FP32
    original, passed as the encoder file)."""
    from hailo_whisper_ros.core.config import RecognizerConfig
    from hailo_whisper_ros.core.model_dir import (
        DECODER,
        DECODER_WITH_PAST,
        ENCODER_DYNAMIC,
        INT8_SUBDIR,
        ONNX_ENCODER_FILES,
    )
    from hailo_whisper_ros.evaluation.engines import RecognizerSpec

    decoder_dir = {"fp32": model_dir, "int8": model_dir / INT8_SUBDIR}[decoder]
    needed = [decoder_dir / DECODER, decoder_dir / DECODER_WITH_PAST]
    if encoder == "dynamic32":
        encoder, hef = "dynamic", {"encoder_file": model_dir / ENCODER_DYNAMIC}
        needed.append(hef["encoder_file"])
    else:
        needed.append(model_dir / ONNX_ENCODER_FILES[encoder if encoder != "hef" else "10s"])  # HEF: the fallback
    missing = next((path for path in needed if not path.is_file()), None)
    config = RecognizerConfig(model_dir, encoder=encoder, decoder_dir=decoder_dir, threads=threads, **hef)
    return Candidate(key, RecognizerSpec(key, label, config, options), f"{missing} not found" if missing else None)


def _baseline_candidates(args: argparse.Namespace, model_dir: Path, info, options) -> list[Candidate]:
    """faster-whisper in each compute type, then whisper.cpp."""
    from hailo_whisper_ros.evaluation.engines import FasterWhisperSpec, WhisperCppSpec, ct2_model_dir, ggml_model_file

    language = options.language or "en"
    ct2_dir, ct2_problem = ct2_model_dir(args.ct2_model_dir, info)
    candidates = []
    for compute_type in FASTER_WHISPER_TYPES:
        key = f"fw-{compute_type}"
        spec = None
        if ct2_dir is not None:
            spec = FasterWhisperSpec(key, f"faster-whisper {compute_type}", ct2_dir, compute_type, args.threads,
                                     language)
        candidates.append(Candidate(key, spec, ct2_problem))
    ggml_file, ggml_problem = ggml_model_file(model_dir)
    spec = ggml_file and WhisperCppSpec(WHISPER_CPP_KEY, "whisper.cpp f16", ggml_file, args.threads, language)
    candidates.append(Candidate(WHISPER_CPP_KEY, spec, ggml_problem))
    return candidates


def _select(candidates: list[Candidate], configs: str | None) -> list[Candidate]:
    if configs is None:
        return candidates
    known = {c.key: c for c in candidates}
    wanted = [key.strip() for key in configs.split(",") if key.strip()]
    unknown = [key for key in wanted if key not in known]
    if unknown or not wanted:
        raise HailoWhisperError(f"unknown configuration(s) {', '.join(unknown) or '(none)'}; available here: "
                                f"{', '.join(known)}")
    chosen = [known[key] for key in dict.fromkeys(wanted)]
    unavailable = next((c for c in chosen if c.unavailable), None)
    if unavailable:
        raise HailoWhisperError(f"configuration {unavailable.key} cannot run: {unavailable.unavailable}")
    return chosen


def _report(specs, runs, memory, skipped, memory_clip, folder, machine, wall_s) -> dict:
    from hailo_whisper_ros.evaluation.stats import NORMALISATION, summarise

    summaries = {spec.key: summarise(runs[spec.key]) for spec in specs}
    baseline, whisper_cpp = summaries.get(BASELINE_KEY), summaries.get(WHISPER_CPP_KEY)
    configurations = []
    for spec in specs:
        summary = summaries[spec.key]
        peak = memory[spec.key]
        configurations.append({
            "key": spec.key,
            "label": spec.label,
            "speed_vs_faster_whisper_int8": baseline.total_ms.median / summary.total_ms.median if baseline else None,
            "speed_vs_whisper_cpp": whisper_cpp.total_ms.median / summary.total_ms.median if whisper_cpp else None,
            "peak_memory": {"peak_rss_mb": peak.peak_rss_mb, "loaded_rss_mb": peak.loaded_rss_mb,
                            "base_rss_mb": peak.base_rss_mb},
            "summary": summary.as_json(),
            "clips": [run.as_json() for run in runs[spec.key]],
        })
    return {
        "audio_folder": str(folder.root),
        "layout": folder.describe(),
        "clips": summaries[specs[0].key].clips,
        "audio_s": round(summaries[specs[0].key].audio_s, 3),
        "normalisation": NORMALISATION,
        "memory_clip": memory_clip,
        "machine": machine,
        "wall_time_s": round(wall_s, 1),
        "skipped": skipped,
        "configurations": configurations,
    }


def _markdown(report: dict) -> str:
    """compare.md: the table, then the numbered notes that say how each column was measured."""
    notes = _notes(report)
    return (
        "\n".join(_table(report["configurations"])) + "\n\n"
        + "\n".join(f"{i}. {note}" for i, note in enumerate(notes, start=1)) + "\n"
    )


def _table(configurations: list[dict]) -> list[str]:
    def percent(value) -> str:
        return "–" if value is None else f"{value:.1%}"

    def ms(stats) -> str:
        return "–" if stats is None else f"{stats['median']:.0f}"

    rows = [
        "| Configuration | WER | CER | Encoder ms | Decoder ms | Total ms | Peak memory MB | Speed vs faster-whisper "
        "int8 | Speed vs whisper.cpp |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for config in configurations:
        summary = config["summary"]
        ratio, cpp_ratio = config["speed_vs_faster_whisper_int8"], config["speed_vs_whisper_cpp"]
        rows.append(
            f"| {config['label']} (`{config['key']}`) | {percent(summary['wer'])} | {percent(summary['cer'])} | "
            f"{ms(summary['encoder_ms'])} | {ms(summary['decoder_ms'])} | {ms(summary['total_ms'])} | "
            f"{config['peak_memory']['peak_rss_mb']:.0f} | {_times(ratio)} | {_times(cpp_ratio)} |"
        )
    return rows


def _notes(report: dict) -> list[str]:
    machine = report["machine"]
    versions = ", ".join(f"{name} {version}" for name, version in machine["versions"].items() if version)
    bases = [c["peak_memory"]["base_rss_mb"] for c in report["configurations"]]
    notes = [
        f"{report['clips']} clips, {report['audio_s']:.1f} s of audio, from {report['audio_folder']} "
        f"({report['layout']}).",
        f"WER / CER: corpus-level, counted with jiwer after normalisation ({report['normalisation']}); CER counts the "
        "characters of the normalised text, spaces included.",
        "Encoder / Decoder / Total ms: median over the clips. Total is the wall time of one whole transcription: "
        "features + encoder + decoder (`Recognizer.transcribe`) for ours, `model.transcribe` plus reading its segments "
        "for faster-whisper (greedy, beam 1, no timestamps, no VAD, no previous-text conditioning, temperature 0), "
        "which reports no stage times (–). All configurations run interleaved clip by clip in one process, the order "
        "rotating each clip, after one untimed warm-up clip each.",
        "Speed vs faster-whisper int8 / whisper.cpp: its median total divided by the configuration's (2.00× = twice "
        "as fast). whisper.cpp (pywhispercpp, the export's ggml F16 file of the same weights) runs greedy, without "
        "timestamps, context or temperature fallback.",
        f"Peak memory: peak resident set size (VmHWM) of a fresh process that loads only this configuration, "
        f"warms it up and transcribes the longest clip ({report['memory_clip']['id']}, "
        f"{report['memory_clip']['duration_s']:.1f} s); it includes the Python interpreter and libraries (that "
        f"process held {_span(bases)} MB before creating the engine).",
        f"Machine: {machine['cpu']}, {machine['cpu_count']} cores, {machine['threads']} threads per engine; "
        f"{versions}; Python {machine['python']}; {machine['date']}; load average {machine['load_average_1min']:.2f} "
        f"at the start, {machine['load_average_1min_end']:.2f} at the end; "
        f"compare wall time {report['wall_time_s']:.0f} s.",
    ]
    if any(c["summary"]["non_speech_clips"] > 0 for c in report["configurations"]):
        counts = ", ".join(f"{c['key']} {c['summary']['hallucinations']}" for c in report["configurations"])
        non_speech = report["configurations"][0]["summary"]["non_speech_clips"]
        notes.insert(2, f"{non_speech} non-speech clip(s) (empty reference) are left out of WER/CER; "
                        f"hallucinations on them: {counts}.")
    default = next((c for c in report["configurations"] if c["key"] == DEFAULT_KEY), None)
    if default is not None:
        notes.append(_offline_targets(default, report["configurations"]))
    if report["skipped"]:
        skipped = "; ".join(f"`{key}` ({reason})" for key, reason in report["skipped"].items())
        notes.append(f"Not run here: {skipped}.")
    return notes


def _times(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio:.2f}×"


def _offline_targets(default: dict, configurations: list[dict]) -> str:
    """Issue 14's target 5 for the default set-up: >= 6x faster-whisper int8, >= 15x whisper.cpp, WER <= +0.5."""
    fw = next((c for c in configurations if c["key"] == BASELINE_KEY), None)
    wer_points = fw and 100 * (default["summary"]["wer"] - fw["summary"]["wer"])
    parts = []
    for name, ratio, goal in (("faster-whisper int8", default["speed_vs_faster_whisper_int8"], 6.0),
                              ("whisper.cpp", default["speed_vs_whisper_cpp"], 15.0)):
        verdict = "n/a" if ratio is None else ("met" if ratio >= goal else "NOT met")
        parts.append(f"{_times(ratio)} {name} (target ≥ {goal:g}×: {verdict})")
    verdict = "n/a" if wer_points is None else ("met" if wer_points <= 0.5 else "NOT met")
    wer = "–" if wer_points is None else f"{wer_points:+.2f}"
    return (f"Offline target (`{DEFAULT_KEY}`, the default): " + ", ".join(parts)
            + f", WER {wer} points vs faster-whisper int8 (target ≤ +0.5: {verdict}).")


def _span(values: list[float]) -> str:
    low, high = f"{min(values):.0f}", f"{max(values):.0f}"
    return low if low == high else f"{low}–{high}"


def _require_matplotlib() -> None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise HailoWhisperError("compare draws its plot with matplotlib: pip install matplotlib")


def _plot(specs, runs, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 6))
    markers = "os^vD<>ph*"
    for number, spec in enumerate(specs):
        clip_runs = runs[spec.key]
        axes.scatter([r.duration_s for r in clip_runs], [r.measurement.total_ms for r in clip_runs],
                     label=spec.label, marker=markers[number % len(markers)], s=22, alpha=0.75)
    axes.set_xlim(left=0)
    axes.set_ylim(bottom=0)
    axes.set_xlabel("clip duration (s)")
    axes.set_ylabel("total latency per clip (ms)")
    axes.set_title("Transcription latency against clip duration")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
