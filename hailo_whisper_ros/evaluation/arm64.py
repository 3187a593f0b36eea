"""The recognizer on an emulated arm64 CPU beside this machine's (issue 32): `hailo-whisper pipeline --json` on the
same clips with the same export, once under ``qemu-aarch64-static`` with ``QEMU_CPU`` a Raspberry Pi's CPU and once
natively, and the transcripts held against each other.

tools/arm64.sh builds what runs under emulation in build/arm64: Debian's arm64 CPython 3.11, the aarch64 wheels of
requirements.txt, and per CPU a qemu prefix with that CPU's /proc/cpuinfo. ONNX Runtime runs its aarch64 kernels there
(NEON, and on the Cortex-A76 the dot-product instructions of its INT8 MatMuls), emulated instruction by instruction:
the sums are the Pi's, the speed is not (tens of times slower than native).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.evaluation.scoring import normalise

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "tools" / "arm64.sh"
BUILD = REPO / "build" / "arm64"
CPUS = ("cortex-a76", "cortex-a72")  # Raspberry Pi 5; Raspberry Pi 4 / CM4
UNAVAILABLE_EXIT = 3  # tools/arm64.sh: no qemu-user, apt or downloads (one line on stderr says what to install)
BUILD_TIMEOUT_S = 900  # cold: 16 MB of .debs, 370 MB of wheels, an import check per CPU on a loaded machine


class Arm64Unavailable(HailoWhisperError):
    """qemu-user or the arm64 packages cannot be had here; the message says what to install."""


@dataclass(frozen=True)
class EmulatedCpu:
    """An arm64 Python under qemu-user emulating ``cpu``, with the wheels and this checkout on its path."""

    cpu: str
    prefix: Path  # qemu's -L: the arm64 root, whose proc/cpuinfo is the CPU's
    site: Path

    def python(self) -> list[str]:
        return ["qemu-aarch64-static", "-L", str(self.prefix), str(self.prefix / "usr" / "bin" / "python3.11")]

    def environment(self) -> dict[str, str]:
        return {**os.environ, "QEMU_CPU": self.cpu, "PYTHONPATH": os.pathsep.join((str(REPO), str(self.site)))}


def prepare(cpu: str = "cortex-a76") -> EmulatedCpu:
    """Builds or brings up to date build/arm64 for ``cpu`` (tools/arm64.sh; near-instant when nothing changed)."""
    if cpu not in CPUS:
        raise HailoWhisperError(f"the CPU is one of {', '.join(CPUS)}, not {cpu!r}")
    if not BUILD_SCRIPT.is_file():
        raise Arm64Unavailable(f"no {BUILD_SCRIPT}: the arm64 check runs from the repository's checkout")
    completed = subprocess.run(["bash", str(BUILD_SCRIPT), cpu], capture_output=True, text=True,
                               timeout=BUILD_TIMEOUT_S, env={**os.environ, "HAILO_WHISPER_HOST_PYTHON": sys.executable})
    if completed.returncode == UNAVAILABLE_EXIT:
        raise Arm64Unavailable(completed.stderr.strip().splitlines()[-1])
    if completed.returncode != 0:
        raise HailoWhisperError(f"tools/arm64.sh {cpu} failed (exit {completed.returncode}):\n"
                                f"{completed.stdout}{completed.stderr}")
    return EmulatedCpu(cpu, BUILD / cpu, BUILD / "site")


def run_pipeline(python: list[str], environment: dict[str, str], label: str, folder: Path, model_dir: Path,
                 limit: int | None = None, timeout_s: float | None = None) -> dict:
    """`hailo-whisper pipeline --audio_folder folder --json` run by ``python``: its report (clips and summary)."""
    with tempfile.TemporaryDirectory(prefix="arm64_check_") as scratch:
        report = Path(scratch) / "pipeline.json"
        command = [*python, "-m", "hailo_whisper_ros", "pipeline", "--model_dir", str(model_dir),
                   "--audio_folder", str(folder), "--json", str(report)]
        if limit is not None:
            command += ["--limit", str(limit)]
        completed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=timeout_s)
        if completed.returncode != 0:
            raise HailoWhisperError(f"pipeline {label} {_exit_description(completed.returncode)}:\n"
                                    f"{completed.stderr[-2000:]}")
        return json.loads(report.read_text())


def _exit_description(returncode: int) -> str:
    if returncode < 0:
        return f"ended by {signal.Signals(-returncode).name}"
    return f"exited {returncode}"


@dataclass(frozen=True)
class TranscriptPair:
    clip: str
    reference: str
    native: str
    emulated: str

    @property
    def identical(self) -> bool:
        return self.native == self.emulated

    @property
    def same_words(self) -> bool:
        """The same after the WER's normalisation (case, punctuation, spelling of numbers)."""
        return normalise(self.native) == normalise(self.emulated)


@dataclass(frozen=True)
class Comparison:
    """Both runs' reports on the same clips, and their transcripts side by side."""

    cpu: str
    native: dict
    emulated: dict

    @property
    def pairs(self) -> list[TranscriptPair]:
        emulated = {clip["id"]: clip for clip in self.emulated["clips"]}
        missing = [clip["id"] for clip in self.native["clips"] if clip["id"] not in emulated]
        if missing or len(emulated) != len(self.native["clips"]):
            raise HailoWhisperError(f"the runs transcribed different clips (not under emulation: {missing})")
        return [TranscriptPair(clip["id"], clip["reference"], clip["hypothesis"], emulated[clip["id"]]["hypothesis"])
                for clip in self.native["clips"]]

    @property
    def differing(self) -> list[TranscriptPair]:
        return [pair for pair in self.pairs if not pair.identical]


def compare(emulated_cpu: EmulatedCpu, folder: Path, model_dir: Path, limit: int | None = None,
            timeout_s: float | None = None) -> Comparison:
    """The clips transcribed under emulation of ``emulated_cpu`` and natively (emulated first: it breaks first)."""
    emulated = run_pipeline(emulated_cpu.python(), emulated_cpu.environment(), f"under QEMU_CPU={emulated_cpu.cpu}",
                            folder, model_dir, limit, timeout_s)
    native = run_pipeline([sys.executable], dict(os.environ), "natively", folder, model_dir, limit, timeout_s)
    return Comparison(emulated_cpu.cpu, native, emulated)


def format_table(comparison: Comparison, native_cpu: str) -> str:
    """The README's table: WER and CER of each run, identical transcripts, and the clips whose transcripts differ."""
    pairs = comparison.pairs
    rows = [("CPU", "WER", "CER", "median ms/clip"), ("---", "---:", "---:", "---:")]
    for name, report in ((f"arm64 `QEMU_CPU={comparison.cpu}` (emulated)", comparison.emulated),
                         (f"x86-64 ({native_cpu})", comparison.native)):
        summary = report["summary"]
        rows.append((name, _percent(summary["wer"]), _percent(summary["cer"]),
                     f"{summary['total_ms']['median']:.0f}"))
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    identical = sum(pair.identical for pair in pairs)
    same_words = sum(pair.same_words for pair in pairs)
    lines += ["", f"Identical transcripts (byte for byte): {identical} of {len(pairs)}; the same after the WER's "
                  f"normalisation: {same_words} of {len(pairs)}."]
    for pair in comparison.differing:
        lines += [f"- `{pair.clip}`", f"  - x86-64: {pair.native}", f"  - arm64:  {pair.emulated}"]
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"
