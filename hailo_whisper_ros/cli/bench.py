"""`hailo-whisper bench`: the performance targets of the default set-up (tiny.en, CPU, INT8 decoder), each figure
printed next to its target.

1. Median latency per clip against faster-whisper int8 (greedy, same weights, same threads), run interleaved clip
   by clip in this process, and the WER difference.
2. Decoder time per generated token (cross-attention over the 1500 padded positions included), next to the
   encoder's achieved GFLOP/s and a 1024x1024 FP32 GEMM measured in the same run: the machine's yardstick.
3. Streaming: from the VAD's end-of-utterance decision to the final transcript, p50 over utterances up to 5 s.
4. Live captioning of a long recording (the clips with their speech trimmed, joined by pauses): RTFx with partial
   results every 1.0 s and with none.
5. Peak resident memory of the composed ROS process (speech_recognition) while a wav_source plays that recording
   to it over DDS on this machine only.

Timings are wall times on a shared machine: compare the ratios of one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hailo_whisper_ros.core import HailoWhisperError
from hailo_whisper_ros.core.datasets import SPEECH_DEV

HELP = "measure the performance targets (latency vs faster-whisper, ms/token, streaming, RTFx, ROS memory)"

TARGETS = ("1", "2", "3", "4", "5")
SHORT_UTTERANCE_S = 5.0  # target 3 counts utterances up to this long
ROS_SETTLE_S = 3.0  # the composed process counts as done once idle this long after the audio ended
ROS_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Figure:
    target: str  # "1", "2", ... "4b"
    name: str
    value: float | None  # None: not measured (the reason in note)
    goal: float
    higher_is_better: bool
    unit: str
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.goal if self.higher_is_better else self.value <= self.goal

    def line(self) -> str:
        value = "n/a" if self.value is None else f"{self.value:.2f}"
        goal = f"{'>=' if self.higher_is_better else '<='} {self.goal:g}"
        verdict = {True: "met", False: "NOT met", None: "-"}[self.met]
        return f"  {self.target:<3} {self.name:<54} {value:>9} {self.unit:<8} target {goal:<8} {verdict:<8} {self.note}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--audio_folder", "--audio-folder", type=Path, default=SPEECH_DEV, metavar="DIR",
                        help=f"clips with references (pipeline's layouts; default: {SPEECH_DEV})")
    parser.add_argument("--model_dir", "--model-dir", type=Path, metavar="DIR",
                        help="exported model directory (default: the embedded tiny.en model)")
    parser.add_argument("--threads", type=int, default=2, metavar="N",
                        help="CPU threads of every engine (default: 2)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N clips")
    parser.add_argument("--targets", default=",".join(TARGETS), metavar="N,N",
                        help="which targets to measure (default: all)")
    parser.add_argument("--ros_speed", "--ros-speed", type=float, default=4.0, metavar="S",
                        help="target 5: play the recording at S times real time (default: 4)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures to this JSON file")


def run(args: argparse.Namespace) -> int:
    from hailo_whisper_ros.core.audio import load_audio
    from hailo_whisper_ros.core.benchmark import machine_info
    from hailo_whisper_ros.core.datasets import list_clips
    from hailo_whisper_ros.core.model_files import MODEL_INFO, ModelInfo, find_beside
    from hailo_whisper_ros.core.model_store import resolve_model_dir

    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown or not targets:
        raise HailoWhisperError(f"--targets takes some of {','.join(TARGETS)}, not {args.targets!r}")
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
    if "1" in targets or "2" in targets:
        audio = [load_audio(clip.audio_path) for clip in clips]
        figures += _offline(args, model_dir, info, clips, audio, targets, details)
    if {"3", "4", "5"} & set(targets):
        recording = _long_recording(clips)
        if "3" in targets or "4" in targets:
            figures += _streaming(args, model_dir, recording, targets, details)
        if "5" in targets:
            figures.append(_ros_memory(args, model_dir, recording, details))

    print(f"\ntargets (load average {os.getloadavg()[0]:.2f} at the end):")
    for figure in figures:
        print(figure.line())
    if args.json:
        report = {"figures": [dict(vars(f), met=f.met) for f in figures], **details}
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0


def _offline(args, model_dir: Path, info, clips, audio, targets, details) -> list[Figure]:
    """Targets 1 and 2: our default set-up and faster-whisper int8, interleaved on the clips."""
    from hailo_whisper_ros.core.benchmark import (
        FasterWhisperEngine,
        RecognizerEngine,
        ct2_model_dir,
        run_interleaved,
        summarise,
    )
    from hailo_whisper_ros.core.decoding import DecodingOptions
    from hailo_whisper_ros.core.recognizer import RecognizerConfig

    ours = RecognizerEngine("ours", RecognizerConfig(model_dir, threads=args.threads), DecodingOptions())
    engines = [ours]
    ct2_dir, unavailable = ct2_model_dir(None, info)
    if "1" in targets and ct2_dir is not None:
        engines.append(FasterWhisperEngine("faster-whisper int8", ct2_dir, "int8", args.threads, "en"))
    print(f"target 1/2: {' and '.join(e.label for e in engines)} on {len(clips)} clips, interleaved", flush=True)
    runs = run_interleaved(engines, clips, audio)
    summaries = [summarise(r) for r in runs]
    ours_summary = summaries[0]
    details["offline"] = {e.label: s.as_json() for e, s in zip(engines, summaries)}
    figures = []
    if "1" in targets:
        if len(engines) == 1:
            figures.append(Figure("1", "median latency per clip, faster-whisper int8 / ours", None, 10.0, True, "x",
                                  f"baseline unavailable: {unavailable}"))
            figures.append(Figure("1", "WER ours - faster-whisper int8", None, 1.0, False, "points"))
        else:
            baseline = summaries[1]
            ratio = baseline.total_ms.median / ours_summary.total_ms.median
            figures.append(Figure(
                "1", "median latency per clip, faster-whisper int8 / ours", ratio, 10.0, True, "x",
                f"{ours_summary.total_ms.median:.0f} vs {baseline.total_ms.median:.0f} ms",
            ))
            figures.append(Figure(
                "1", "WER ours - faster-whisper int8", 100 * (ours_summary.wer - baseline.wer), 1.0, False, "points",
                f"{100 * ours_summary.wer:.2f}% vs {100 * baseline.wer:.2f}%",
            ))
    if "2" in targets:
        per_token = ours.decoder_steps_ms / ours.decoder_steps if ours.decoder_steps else None
        encoder_gflops = _encoder_gflops(ours.recognizer, audio, info)
        gemm_gflops = _gemm_gflops(args.threads)
        details["decoder"] = {"steps": ours.decoder_steps, "per_token_ms": per_token,
                              "encoder_gflops": encoder_gflops, "gemm_1024_gflops": gemm_gflops}
        figures.append(Figure(
            "2", "decoder ms per generated token (1500 padded positions)", per_token, 1.0, False, "ms",
            f"encoder {encoder_gflops:.1f} GFLOP/s, 1024x1024 FP32 GEMM {gemm_gflops:.1f} GFLOP/s "
            f"({100 * encoder_gflops / gemm_gflops:.0f}%)",
        ))
    return figures


def _encoder_gflops(recognizer, audio, info, repeats: int = 10) -> float:
    """The encoder's achieved rate on a 10 s window of the longest clip: its FLOPs over the median run time."""
    import numpy as np

    from hailo_whisper_ros.core.benchmark import encoder_flops
    from hailo_whisper_ros.core.features import HOP_LENGTH

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
    from hailo_whisper_ros.core.benchmark import gemm_seconds

    return 2 * size**3 / gemm_seconds(size, threads, repeats) / 1e9


def _long_recording(clips):
    from hailo_whisper_ros.core.evaluation import Utterance
    from hailo_whisper_ros.core.long_recording import build_long_recording

    speech = [Utterance(clip.audio_path, clip.reference) for clip in clips if clip.reference.strip()]
    if not speech:
        raise HailoWhisperError("targets 3-5 need speech clips with references")
    return build_long_recording(speech)


def _streaming(args, model_dir: Path, recording, targets, details) -> list[Figure]:
    """Targets 3 and 4: the recording captioned as fast as it is processed, with partials every second and none."""
    import numpy as np

    from hailo_whisper_ros.core.audio import SAMPLE_RATE
    from hailo_whisper_ros.core.captioning import caption_stream
    from hailo_whisper_ros.core.recognizer import Recognizer, RecognizerConfig
    from hailo_whisper_ros.core.streaming import StreamingOptions

    recognizer = Recognizer(RecognizerConfig(model_dir, threads=args.threads))
    duration_s = len(recording.audio) / SAMPLE_RATE
    figures = []
    runs = {}
    for label, interval_ms in (("partials every 1.0 s", 1000), ("no partials", 0)):
        print(f"target 3/4: captioning {duration_s:.0f} s ({len(recording.clips)} utterances), {label}", flush=True)
        runs[label] = caption_stream(recognizer, recording.audio, StreamingOptions(partial_interval_ms=interval_ms))
        details.setdefault("captioning", {})[label] = runs[label].figures
    if "3" in targets:
        run = runs["partials every 1.0 s"]
        short = [e for e in run.finals if e.speech_end_s - e.speech_start_s <= SHORT_UTTERANCE_S]
        latencies = [e.latency_ms for e in short]
        p50 = float(np.percentile(latencies, 50)) if latencies else None
        figures.append(Figure(
            "3", f"end of utterance -> final p50, utterances <= {SHORT_UTTERANCE_S:g} s", p50, 45.0, False, "ms",
            f"{len(short)} utterances; p95 {np.percentile(latencies, 95):.0f} ms; "
            f"{run.figures['finals_decoded_in_pause']} of {run.figures['full_segments']} finals decoded in the pause"
            if latencies else "no short utterance",
        ))
    if "4" in targets:
        for label, goal, target in (("partials every 1.0 s", 20.0, "4a"), ("no partials", 40.0, "4b")):
            figures_of = runs[label].figures
            figures.append(Figure(
                target, f"captioning RTFx, {label}", figures_of["rtfx"], goal, True, "x",
                f"{figures_of['inference_calls']} inference calls, {figures_of['audio_s']:.0f} s of audio",
            ))
    return figures


def _ros_memory(args, model_dir: Path, recording, details) -> Figure:
    """Target 5: VmHWM of speech_recognition (default parameters) after a wav_source played the recording."""
    import random
    import subprocess
    import tempfile

    import psutil
    import soundfile

    from hailo_whisper_ros.core.audio import SAMPLE_RATE

    name = "peak RSS of the composed ROS process (speech_recognition)"
    bin_dir = Path(sys.executable).parent
    executables = [bin_dir / "speech_recognition", bin_dir / "wav_source"]
    missing = [str(path) for path in executables if not path.is_file()]
    if missing:
        return Figure("5", name, None, 200.0, False, "MB", f"not installed here: {', '.join(missing)}")
    # On this machine only, in the caller's domain or else a random one, so other ROS traffic stays apart.
    environment = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    environment.setdefault("ROS_DOMAIN_ID", str(random.randint(101, 200)))
    print(f"target 5: speech_recognition with wav_source at {args.ros_speed:g}x "
          f"(ROS_DOMAIN_ID={environment['ROS_DOMAIN_ID']})", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        wav = Path(scratch) / "recording.wav"
        soundfile.write(wav, recording.audio, SAMPLE_RATE, subtype="PCM_16")
        recognition = subprocess.Popen(
            [str(executables[0]), "--ros-args", "--log-level", "warn", "-p", f"model.dir:={model_dir}",
             "-p", f"model.threads:={args.threads}"],
            env=environment,
        )
        try:
            source = subprocess.run(
                [str(executables[1]), "--ros-args", "--log-level", "warn", "-p", f"files:=['{wav}']",
                 "-p", f"speed:={args.ros_speed}", "-p", "exit_when_done:=true", "-p", "wait_for_subscribers:=1"],
                env=environment, timeout=ROS_TIMEOUT_S,
            )
            if source.returncode != 0:
                raise HailoWhisperError(f"wav_source exited with {source.returncode}")
            process = psutil.Process(recognition.pid)
            deadline = time.monotonic() + ROS_TIMEOUT_S
            idle_since = None
            while time.monotonic() < deadline and recognition.poll() is None:  # until transcription is done
                busy = process.cpu_percent(interval=0.5) > 10.0
                idle_since = None if busy else (idle_since or time.monotonic())
                if idle_since is not None and time.monotonic() - idle_since >= ROS_SETTLE_S:
                    break
            if recognition.poll() is not None:
                raise HailoWhisperError(f"speech_recognition exited with {recognition.returncode}")
            with open(f"/proc/{recognition.pid}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
            peak_mb = int(fields["VmHWM"].split()[0]) / 1024
            end_mb = int(fields["VmRSS"].split()[0]) / 1024
        finally:
            recognition.terminate()
            try:
                recognition.wait(timeout=10)
            except subprocess.TimeoutExpired:
                recognition.kill()
    details["ros_memory_mb"] = {"peak": peak_mb, "end": end_mb}
    return Figure("5", name, peak_mb, 200.0, False, "MB", f"{end_mb:.0f} MB at the end")
