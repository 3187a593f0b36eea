"""`hailo-whisper bench`: the performance targets of the default set-up (tiny.en, CPU, INT8 decoder), each figure
printed next to its target.

1 and 2. The live ROS path: the recording below played by a wav_source at 1x real time as 48 kHz stereo, partials
   every second (the default parameters), to the composed speech_recognition process and to the three nodes as
   three processes, one after the other (evaluation/ros_layouts.py): the recognizer's real-time factor (its
   /diagnostics; 1), end of utterance -> final p50 and p95 over utterances up to 5 s (Transcript.latency_ms; 2a,
   2b), what a person waits (the clip's last speech sample published -> its final received on `transcript`,
   measured here; 2c), WER and peak resident memory per process, side by side. 2d: the same end of utterance ->
   final in-process, on the captioning run of 3a. Before them, the composed process with partials of the whole
   utterance and no budget (as before issue 29: WHOLE_UTTERANCE_PARTIALS), printed in a column of its own, with
   the partials' freshness and the audio transcribed per audio received of each.
3. Live captioning of a long recording (the clips with their speech trimmed, joined by pauses): RTFx with partial
   results every 1.0 s and with none.
4. Decoder time per token: (a) of that captioning with partials, first passes and draft passes included, per
   token decoded (drafts verified included); (b) cold, a one-token step after the offline run's first pass
   (cross-attention over the 1500 padded positions included), next to the FP32 decoder's on the same clips (the
   decoder not chosen, interleaved), the CPU's INT8 kernels (core/int8_kernels), the encoder's achieved GFLOP/s
   and a 1024x1024 FP32 GEMM measured in the same run: the machine's yardstick.
5. Offline: median latency per clip against faster-whisper int8 and whisper.cpp (pywhispercpp on the model's
   ggml-model-f16.bin from `export --ggml`; greedy, same weights, same threads), all run interleaved clip by clip
   in this process, and the WER difference from faster-whisper. whisper.cpp's threads spin-wait: run bench
   un-niced.
7. Continuous speech (evaluation/continuous.py): the dev set's clips joined by 0.1-0.3 s gaps (seeded), captioned
   as fast as processed with partials every 1.0 s of the whole utterance (as before issue 29), with bounded partials
   under the budget (the declared defaults) and with none, in --rounds interleaved rounds: RTFx, audio transcribed
   per audio received, WER, partial freshness p95, final latency.
6. Peak resident memory of the composed ROS process (speech_recognition) while a wav_source plays that recording
   to it over DDS on this machine only.

Timings are wall times on a shared machine: compare the ratios of one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

from hailo_whisper_ros.cli.flags import add_model_dir_flag, add_option_flags
from hailo_whisper_ros.cli.long_form import DEFAULT_SPEECH_DEV
from hailo_whisper_ros.cli.targets import (
    CAPTIONING_RTFX_NO_PARTIALS,
    CAPTIONING_RTFX_WITH_PARTIALS,
    CONTINUOUS_FINAL_LATENCY,
    CONTINUOUS_RTFX,
    CONTINUOUS_TRANSCRIBED,
    CONTINUOUS_WER,
    DECODER_MS_PER_TOKEN,
    FINAL_LATENCY,
    LATENCY_VS_FASTER_WHISPER,
    LATENCY_VS_WHISPER_CPP,
    PARTIAL_FRESHNESS,
    ROS_FINAL_LATENCY_P50,
    ROS_FINAL_LATENCY_P95,
    ROS_PEAK_MEMORY,
    ROS_REAL_TIME_FACTOR,
    ROS_WAITS_P50,
    SHORT_UTTERANCE_S,
    STREAMING_MS_PER_TOKEN,
    TARGET_NUMBERS,
    WER_VS_FASTER_WHISPER,
    Figure,
)
from hailo_whisper_ros.core.config import RecognizerConfig
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.evaluation.datasets import SPEECH_SAMPLES

HELP = "measure the performance targets (latency vs faster-whisper, ms/token, streaming, RTFx, ROS memory)"

ROS_SETTLE_S = 3.0  # the composed process counts as done once its queues are empty and no result came this long
ROS_TIMEOUT_S = 600.0
ROS_GAP_S = 1.0  # silence after the recording: the VAD's pause that ends its last utterance
# Target 4's runs: (label, partial interval, target).
# The ROS parameters of partials as they were before issue 29: the whole utterance, no budget.
WHOLE_UTTERANCE_PARTIALS = ("streaming.partial_window_s:=0.0", "streaming.partial_budget:=0.0")
CAPTIONING_RUNS = (("partials every 1.0 s", 1000, CAPTIONING_RTFX_WITH_PARTIALS),
                   ("no partials", 0, CAPTIONING_RTFX_NO_PARTIALS))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--audio_folder", "--audio-folder", type=Path, default=SPEECH_SAMPLES, metavar="DIR",
                        help=f"clips with references (pipeline's layouts; default: {SPEECH_SAMPLES})")
    add_model_dir_flag(parser)
    add_option_flags(parser, RecognizerConfig, ("threads",))  # of every engine, faster-whisper's too
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N clips")
    parser.add_argument("--targets", default=",".join(TARGET_NUMBERS), metavar="N,N",
                        help="which targets to measure (default: all)")
    parser.add_argument("--ros_speed", "--ros-speed", type=float, default=4.0, metavar="S",
                        help="target 6: play the recording at S times real time (default: 4)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures to this JSON file")
    parser.add_argument("--speech_dev", "--speech-dev", type=Path, default=DEFAULT_SPEECH_DEV, metavar="DIR",
                        help=f"target 7: the development set (default: {DEFAULT_SPEECH_DEV})")
    parser.add_argument("--rounds", type=int, default=1, metavar="N",
                        help="target 7: interleaved rounds of the partial schemes (default: 1)")


def run(args: argparse.Namespace) -> int:
    from hailo_whisper_ros.core.audio import load_audio
    from hailo_whisper_ros.core.model_dir import MODEL_INFO, ModelInfo, find_beside
    from hailo_whisper_ros.evaluation.datasets import list_clips
    from hailo_whisper_ros.evaluation.machine import machine_info
    from hailo_whisper_ros.export.store import resolve_model_dir

    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = sorted(set(targets) - set(TARGET_NUMBERS))
    if unknown or not targets:
        raise HailoWhisperError(f"--targets takes some of {','.join(TARGET_NUMBERS)}, not {args.targets!r}")
    if args.threads < 1 or (args.limit is not None and args.limit < 1) or not args.ros_speed > 0:
        raise HailoWhisperError("--threads and --limit must be >= 1 and --ros_speed > 0")
    model_dir = resolve_model_dir(args.model_dir)
    try:
        info = ModelInfo.load(find_beside(model_dir, MODEL_INFO))
    except FileNotFoundError as error:
        raise HailoWhisperError(str(error)) from None
    folder = list_clips(args.audio_folder)
    clips = folder.clips[: args.limit]
    machine = machine_info(args.threads)
    print(f"bench: {len(clips)} clips of {folder.root}; model {info.name} ({model_dir}); {args.threads} threads; "
          f"load average {machine['load_average_1min']:.2f}", flush=True)

    figures: list[Figure] = []
    details: dict = {"machine": machine}
    if {"4", "5"} & set(targets):
        audio = [load_audio(clip.audio_path) for clip in clips]
        figures += _offline(args, model_dir, info, clips, audio, targets, details)
    if {"1", "2", "3", "4", "6"} & set(targets):
        recording = _long_recording(clips)
        if {"1", "2"} & set(targets):
            figures += _ros_layouts(args, model_dir, recording, details)
        if {"2", "3", "4"} & set(targets):
            figures += _streaming(args, model_dir, recording, details)
        if "6" in targets:
            figures.append(_ros_memory(args, model_dir, recording, details))
    if "7" in targets:
        figures += _continuous(args, model_dir, details)
    figures = [figure for figure in figures if figure.target.number in targets]

    print(f"\ntargets (load average {os.getloadavg()[0]:.2f} at the end):")
    for figure in figures:
        print(figure.line())
    if args.json:
        report = {"figures": [figure.as_json() for figure in figures], **details}
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0


def _offline(args, model_dir: Path, info, clips, audio, targets, details) -> list[Figure]:
    """Targets 5 and 4b: our default set-up, faster-whisper int8 and whisper.cpp, interleaved on the clips."""
    from hailo_whisper_ros.core.decoding import DecodingOptions
    from hailo_whisper_ros.core.recognizer import Recognizer
    from hailo_whisper_ros.evaluation.engines import RecognizerEngine, run_interleaved
    from hailo_whisper_ros.evaluation.stats import summarise

    ours = RecognizerEngine("ours", Recognizer(RecognizerConfig(model_dir, threads=args.threads)), DecodingOptions())
    baselines, unavailable = _offline_baselines(args, model_dir, info, targets)
    fp32 = []  # target 4b beside the decoder not chosen, the FP32 one (core/int8_kernels says why no CPU gets it)
    if "4" in targets:
        fp32_config = RecognizerConfig(model_dir, decoder_dir=model_dir, threads=args.threads)
        fp32.append(RecognizerEngine("ours, FP32 decoder", Recognizer(fp32_config), DecodingOptions()))
    engines = [ours, *baselines.values(), *fp32]
    print(f"target 5/2: {', '.join(e.label for e in engines)} on {len(clips)} clips, interleaved", flush=True)
    runs = run_interleaved(engines, clips, audio)
    summaries = dict(zip((e.label for e in engines), (summarise(r) for r in runs)))
    details["offline"] = {label: summary.as_json() for label, summary in summaries.items()}
    figures = []
    if "5" in targets:
        figures += _against_baselines(summaries, ours.label, baselines, unavailable)
    if "4" in targets:
        figures.append(_decoder_step_figure(args, ours, fp32[0], audio, info, details))
    return figures


def _offline_baselines(args, model_dir: Path, info, targets) -> tuple[dict, dict[str, str | None]]:
    """The baselines target 5 compares with, by target, and why each that cannot run here cannot."""
    from hailo_whisper_ros.evaluation.engines import (
        FasterWhisperEngine,
        WhisperCppEngine,
        ct2_model_dir,
        ggml_model_file,
    )

    baselines = {}  # target -> engine
    ct2_dir, fw_unavailable = ct2_model_dir(None, info)
    ggml_file, cpp_unavailable = ggml_model_file(model_dir)
    if "5" in targets:
        if ct2_dir is not None:
            baselines[LATENCY_VS_FASTER_WHISPER] = FasterWhisperEngine("faster-whisper int8", ct2_dir, "int8",
                                                                       args.threads, "en")
        if ggml_file is not None:
            baselines[LATENCY_VS_WHISPER_CPP] = WhisperCppEngine("whisper.cpp f16", ggml_file, args.threads, "en")
    return baselines, {LATENCY_VS_FASTER_WHISPER: fw_unavailable, LATENCY_VS_WHISPER_CPP: cpp_unavailable}


def _against_baselines(summaries: dict, ours_label: str, baselines: dict, unavailable: dict) -> list[Figure]:
    """Target 5: our median latency against each baseline's, and our WER against faster-whisper's."""
    ours_summary = summaries[ours_label]
    figures = []
    for target in (LATENCY_VS_FASTER_WHISPER, LATENCY_VS_WHISPER_CPP):
        if target not in baselines:
            figures.append(Figure(target, None, f"baseline unavailable: {unavailable[target]}"))
            continue
        baseline = summaries[baselines[target].label]
        figures.append(Figure(
            target, baseline.total_ms.median / ours_summary.total_ms.median,
            f"{ours_summary.total_ms.median:.0f} vs {baseline.total_ms.median:.0f} ms; WER "
            f"{100 * ours_summary.wer:.2f}% vs {100 * baseline.wer:.2f}%",
        ))
    fw = baselines.get(LATENCY_VS_FASTER_WHISPER)
    figures.append(Figure(
        WER_VS_FASTER_WHISPER, fw and 100 * (ours_summary.wer - summaries[fw.label].wer),
        f"{100 * ours_summary.wer:.2f}% vs {100 * summaries[fw.label].wer:.2f}%" if fw else "",
    ))
    return figures


def _decoder_step_figure(args, ours, fp32, audio, info, details) -> Figure:
    """Target 4b: the one-token decoder steps of the offline run, beside the FP32 decoder's on the same clips (the
    path not chosen), the CPU's INT8 kernels and the encoder's and a GEMM's GFLOP/s."""
    per_token, fp32_per_token = (engine.decoder_steps_ms / engine.decoder_steps if engine.decoder_steps else None
                                 for engine in (ours, fp32))
    encoder_gflops = _encoder_gflops(ours.recognizer, audio, info)
    gemm_gflops = _gemm_gflops(args.threads)
    kernels = ours.recognizer.int8_kernels
    details["decoder"] = {"steps": ours.decoder_steps, "per_token_ms": per_token, "int8_kernels": kernels,
                          "fp32_steps": fp32.decoder_steps, "fp32_per_token_ms": fp32_per_token,
                          "encoder_gflops": encoder_gflops, "gemm_1024_gflops": gemm_gflops}
    return Figure(
        DECODER_MS_PER_TOKEN, per_token,
        f"FP32 decoder {fp32_per_token:.2f} ms; INT8 MatMuls: {kernels}; encoder {encoder_gflops:.1f} GFLOP/s, "
        f"1024x1024 FP32 GEMM {gemm_gflops:.1f} GFLOP/s ({100 * encoder_gflops / gemm_gflops:.0f}%)",
    )


def _encoder_gflops(recognizer, audio, info, repeats: int = 10) -> float:
    """The encoder's achieved rate on a 10 s window of the longest clip: its FLOPs over the median run time."""
    import numpy as np

    from hailo_whisper_ros.core.constants import HOP_LENGTH
    from hailo_whisper_ros.evaluation.machine import encoder_flops

    frames = recognizer.encoder.window_frames or 1000  # a dynamic encoder: 10 s, as the 10 s export
    longest = max(audio, key=len)
    mel = recognizer.features.log_mel(longest[: frames * HOP_LENGTH], n_frames=frames)
    recognizer.encoder.encode(mel)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        recognizer.encoder.encode(mel)
        times.append(time.perf_counter() - started)
    return encoder_flops(info, frames) / float(np.median(times)) / 1e9


def _gemm_gflops(threads: int, size: int = 1024, repeats: int = 20) -> float:
    from hailo_whisper_ros.evaluation.machine import gemm_seconds

    return 2 * size**3 / gemm_seconds(size, threads, repeats) / 1e9


def _long_recording(clips):
    from hailo_whisper_ros.evaluation.long_recording import build_long_recording

    speech = [clip for clip in clips if clip.reference.strip()]
    if not speech:
        raise HailoWhisperError("targets 1, 2, 3, 4 and 6 need speech clips with references")
    return build_long_recording(speech)


def _streaming(args, model_dir: Path, recording, details) -> list[Figure]:
    """Targets 2d, 3 and 4a: the recording captioned as fast as it is processed, with partials every second and
    none."""
    import numpy as np

    from hailo_whisper_ros.core.config import RecognizerConfig
    from hailo_whisper_ros.core.transcripts import StreamingOptions
    from hailo_whisper_ros.evaluation.captioning import caption_stream
    from hailo_whisper_ros.evaluation.memory import load_recognizer

    recognizer, memory = load_recognizer(RecognizerConfig(model_dir, threads=args.threads))
    figures = []
    runs = {}
    for label, interval_ms, _ in CAPTIONING_RUNS:
        print(f"targets 2d/3/4a: captioning {recording.duration_s:.0f} s ({len(recording.clips)} utterances), {label}",
              flush=True)
        runs[label] = caption_stream(recognizer, memory, recording.audio,
                                     StreamingOptions(partial_interval_ms=interval_ms))
        details.setdefault("captioning", {})[label] = runs[label].figures.as_json()
    run = runs[CAPTIONING_RUNS[0][0]]
    short = [e for e in run.finals if e.speech_end_s - e.speech_start_s <= SHORT_UTTERANCE_S]
    latencies = [e.latency_ms for e in short]
    figures.append(Figure(
        FINAL_LATENCY, float(np.percentile(latencies, 50)) if latencies else None,
        f"{len(short)} utterances; p95 {np.percentile(latencies, 95):.0f} ms; "
        f"{run.figures.finals_decoded_in_pause} of {run.figures.full_segments} finals decoded in the pause"
        if latencies else "no short utterance",
    ))
    for label, _, target in CAPTIONING_RUNS:
        captioned = runs[label].figures
        figures.append(Figure(
            target, captioned.rtfx,
            f"{captioned.inference_calls} inference calls, {captioned.audio_s:.0f} s of audio; decoder "
            f"{captioned.decoder_ms_per_token:.2f} ms per token",
        ))
    captioned = run.figures
    figures.append(Figure(
        STREAMING_MS_PER_TOKEN, captioned.decoder_ms_per_token,
        f"{captioned.decoder_steps} steps + {captioned.draft_tokens_accepted} tokens verified from drafts",
    ))
    return figures


def _ros_layouts(args, model_dir: Path, recording, details) -> list[Figure]:
    """Targets 1 and 2a-2c: the live ROS path in both layouts, printed side by side; each layout's figures against
    the targets."""
    from hailo_whisper_ros.evaluation.ros_layouts import measure_layouts, missing_executables

    if missing := missing_executables():
        return [Figure(ROS_REAL_TIME_FACTOR, None, f"not installed here: {', '.join(missing)}")]
    # The composed process with partials of the whole utterance and no budget (before issue 29) first, then both
    # layouts with the defaults.
    before = measure_layouts(recording, model_dir, args.threads, ("composed",), parameters=WHOLE_UTTERANCE_PARTIALS)
    layouts = [replace(before[0], layout="composed, before"), *measure_layouts(recording, model_dir, args.threads)]
    details["ros_layouts"] = [layout.as_json() for layout in layouts]
    rows = (
        ("recognizer real-time factor", lambda f: f.real_time_factor, "{:.3f}", ROS_REAL_TIME_FACTOR),
        ("end of utterance -> final p50 (ms)", lambda f: f.node_latency_p50_ms, "{:.0f}", ROS_FINAL_LATENCY_P50),
        ("end of utterance -> final p95 (ms)", lambda f: f.node_latency_p95_ms, "{:.0f}", ROS_FINAL_LATENCY_P95),
        ("recognizer's speech end -> final p50 (ms)", lambda f: f.recognizer_latency_p50_ms, "{:.0f}", None),
        ("recognizer's speech end -> final p95 (ms)", lambda f: f.recognizer_latency_p95_ms, "{:.0f}", None),
        ("partial freshness p95 (ms)", lambda f: f.partial_freshness_p95_ms, "{:.0f}", None),
        ("audio transcribed / received", lambda f: f.audio_transcribed_s / recording.duration_s, "{:.2f}", None),
        ("last speech published -> final p50 (ms)", lambda f: f.waits_p50_ms, "{:.0f}", ROS_WAITS_P50),
        ("last speech published -> final p95 (ms)", lambda f: f.waits_p95_ms, "{:.0f}", None),
        ("WER (%)", lambda f: 100 * f.wer, "{:.2f}", None),
        ("peak RSS, processes summed (MB)", lambda f: f.peak_rss_total_mb, "{:.0f}", None),
        ("peak RSS per process (MB)", lambda f: " + ".join(f"{v:.0f}" for v in f.peak_rss_mb.values()), "{}",
         None),
    )
    print(f"\nlive ROS path at 1x, partials every 1 s, {recording.duration_s:.0f} s, {len(recording.clips)} clips "
          f"(load average {os.getloadavg()[0]:.2f} at the end):")
    print(f"  {'':<44}" + "".join(f"{layout.layout:>18}" for layout in layouts) + "   target")
    for label, value, form, target in rows:
        cells = "".join(f"{'n/a' if value(f) is None else form.format(value(f)):>18}" for f in layouts)
        goal = f"{'>=' if target.higher_is_better else '<='} {target.goal:g}" if target else ""
        print(f"  {label:<44}{cells}   {goal}")
    figures = []
    for layout in layouts:
        for target, value, note in (
            (ROS_REAL_TIME_FACTOR, layout.real_time_factor, f"{layout.audio_transcribed_s:.0f} s transcribed"),
            (ROS_FINAL_LATENCY_P50, layout.node_latency_p50_ms, f"{layout.finals} finals, {layout.partials} partials"),
            (ROS_FINAL_LATENCY_P95, layout.node_latency_p95_ms, ""),
            (ROS_WAITS_P50, layout.waits_p50_ms, f"{layout.clips_waited_for} of {len(recording.clips)} clips; p95 "
             f"{layout.waits_p95_ms:.0f} ms" if layout.waits_p95_ms is not None else "no clip's final found"),
        ):
            figures.append(Figure(target, value, f"[{layout.layout}] {note}"))
    return figures


def _ros_memory(args, model_dir: Path, recording, details) -> Figure:
    """Target 6: VmHWM of speech_recognition (default parameters) once it transcribed the recording a wav_source
    played to it."""
    import tempfile

    import soundfile

    from hailo_whisper_ros.core.constants import SAMPLE_RATE
    from hailo_whisper_ros.core.resources import peak_resident_mb, resident_mb
    from hailo_whisper_ros.evaluation.ros_session import BIN_DIR, Listener, NodeProcess, local_context, play

    missing = [str(BIN_DIR / name) for name in ("speech_recognition", "wav_source") if not (BIN_DIR / name).is_file()]
    if missing:
        return Figure(ROS_PEAK_MEMORY, None, f"not installed here: {', '.join(missing)}")
    with tempfile.TemporaryDirectory() as scratch, local_context() as context:
        print(f"target 6: speech_recognition with wav_source at {args.ros_speed:g}x "
              f"(ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']})", flush=True)
        wav = Path(scratch) / "recording.wav"
        soundfile.write(wav, recording.audio, SAMPLE_RATE, subtype="PCM_16")
        listener = Listener(context, node_name="hailo_whisper_bench")
        recognition = NodeProcess("speech_recognition", "--log-level", "warn", "-p", f"model.dir:={model_dir}",
                                  "-p", f"model.threads:={args.threads}", echo=True)
        try:
            played = play([wav], args.ros_speed, ROS_GAP_S, ROS_TIMEOUT_S, "--log-level", "warn", echo=True)
            if played != 0:
                raise HailoWhisperError(f"wav_source exited with {played}")
            caught_up = listener.wait_until_caught_up(time.monotonic(), ROS_SETTLE_S, ROS_TIMEOUT_S, recognition)
            if not recognition.running():
                raise HailoWhisperError(f"speech_recognition exited with {recognition.process.returncode}")
            if not caught_up:
                raise HailoWhisperError(f"speech_recognition still transcribing {ROS_TIMEOUT_S:g} s after the audio")
            peak_mb, end_mb = peak_resident_mb(recognition.pid), resident_mb(recognition.pid)
        finally:
            recognition.stop()
            listener.close()
    details["ros_memory_mb"] = {"peak": peak_mb, "end": end_mb}
    return Figure(ROS_PEAK_MEMORY, peak_mb, f"{end_mb:.0f} MB at the end")


def _continuous(args, model_dir: Path, details) -> list[Figure]:
    """Target 7: continuous speech captioned with each partial scheme, in interleaved rounds, printed side by side;
    the bounded scheme's figures against the targets, and against the whole-utterance partials of the same run."""
    from hailo_whisper_ros.evaluation import continuous
    from hailo_whisper_ros.evaluation.memory import load_recognizer

    if args.rounds < 1:
        raise HailoWhisperError("--rounds must be >= 1")
    recording = continuous.continuous_recording(args.speech_dev, limit=args.limit)
    recognizer, memory = load_recognizer(RecognizerConfig(model_dir, threads=args.threads))
    runs: dict[str, list] = {scheme: [] for scheme in continuous.SCHEMES}
    for round_number in range(args.rounds):
        for scheme in continuous.SCHEMES:
            print(f"target 7: continuous speech, {recording.duration_s:.0f} s ({len(recording.clips)} clips), "
                  f"{scheme}, round {round_number + 1}", flush=True)
            runs[scheme].append(continuous.caption_continuous(recognizer, memory, recording, scheme))
    rows = {scheme: continuous.median_figures(scheme_runs) for scheme, scheme_runs in runs.items()}
    details["continuous"] = {scheme: row.as_json() for scheme, row in rows.items()}
    _print_continuous(rows, recording.duration_s)
    before, ours = (rows[scheme] for scheme in list(continuous.SCHEMES)[:2])
    return [
        Figure(CONTINUOUS_RTFX, ours.rtfx, f"whole-utterance partials {before.rtfx:.2f}"),
        Figure(CONTINUOUS_TRANSCRIBED, ours.transcribed_per_received,
               f"whole-utterance partials {before.transcribed_per_received:.2f}"),
        Figure(CONTINUOUS_WER, 100 * (ours.wer - before.wer), f"{100 * ours.wer:.2f}% vs {100 * before.wer:.2f}%"),
        Figure(PARTIAL_FRESHNESS, ours.partial_freshness_p95_ms,
               f"whole-utterance partials {before.partial_freshness_p95_ms:.0f} ms"),
        Figure(CONTINUOUS_FINAL_LATENCY, ours.final_latency_p95_ms / before.final_latency_p95_ms,
               f"{ours.final_latency_p95_ms:.0f} vs {before.final_latency_p95_ms:.0f} ms"),
    ]


def _print_continuous(rows: dict, duration_s: float) -> None:
    """One line per scheme: RTFx, audio transcribed / received, WER, partials (deferred by the budget, skipped
    late), the partials' compute share, partial freshness p95, final latency p50 / p95, encoder frames."""
    print(f"\ncontinuous speech, {duration_s:.0f} s, partials every 1.0 s (load average {os.getloadavg()[0]:.2f}):")
    print(f"  {'':<36}{'RTFx':>6}{'trans/recv':>11}{'WER %':>7}{'partials (def, skip)':>22}{'share':>7}"
          f"{'fresh p95':>10}{'final p50/p95 ms':>18}{'frames':>8}")

    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0f}"

    for scheme, row in rows.items():
        partials = f"{row.partials} ({row.partials_deferred}, {row.partials_skipped})"
        finals = f"{ms(row.final_latency_p50_ms)} / {ms(row.final_latency_p95_ms)}"
        print(f"  {scheme:<36}{row.rtfx:>6.2f}{row.transcribed_per_received:>11.2f}{100 * row.wer:>7.2f}"
              f"{partials:>22}{row.partial_share:>7.3f}{ms(row.partial_freshness_p95_ms):>10}{finals:>18}"
              f"{row.frames_transcribed:>8}")
