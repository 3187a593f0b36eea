"""Which ONNX Runtime kernels multiply the INT8 MatMuls on this CPU, from its instruction-set flags: said in the
recognizer's load log and /diagnostics, so that per-token figures of different machines can be told apart.

The INT8 decoders and the dynamic encoder quantize weights and activations as unsigned 8-bit
(export/writer.quantize_decoder says why: u8 x u8 does not saturate in AVX2's 16-bit sums). MLAS (onnxruntime
1.31, core/mlas/lib/platform.cpp) multiplies u8 x u8 through 16-bit products on AVX2 and AVX-512 alike; its VNNI
kernels (AVX512-VNNI, AVX-VNNI) serve u8 x s8 only, and only AVX-VNNI-INT8 has a u8 x u8 kernel. So a CPU's VNNI does
not speed these decoders up. Linux does not list AVX-VNNI-INT8 (Arrow Lake, Sierra Forest and later) among
/proc/cpuinfo's flags, so such a CPU is described by its AVX2 or AVX-512 kernels, which MLAS then does not use.

No CPU gets the FP32 decoder instead: per token it reads four times the bytes (the logits projection alone 80
instead of 20 MB), and it took 2.3 times as long per token on the Xeon (AVX-512, VNNI, AMX) and 2.4 times on the
EPYC (AVX-512, VNNI) of the README's "Performance targets", where the figures are.
"""

from __future__ import annotations

import platform
from collections.abc import Collection
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni")  # what MLAS uses for u8 x s8 only
AVX512_CORE = ("avx512bw", "avx512dq", "avx512vl")  # MLAS's "AVX-512 core", its condition for the AVX-512 kernels


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The instruction-set flags of /proc/cpuinfo's text: x86's "flags" line, arm64's "Features"."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def int8_kernels(flags: Collection[str], machine: str) -> str:
    """MLAS's u8 x u8 kernels for a CPU of these flags and architecture (platform.machine()), in words."""
    if machine in ("aarch64", "arm64"):
        if "asimddot" in flags:
            return "u8 x u8 with the Armv8.2 dot product (UDOT)"
        return "u8 x u8 with NEON (no dot-product instructions)"
    if machine not in ("x86_64", "AMD64"):
        return f"u8 x u8 on {machine or 'an unknown CPU'}: kernels not known here"
    if all(flag in flags for flag in AVX512_CORE):
        kernels = "u8 x u8 with AVX-512, 16-bit products"
    elif "avx2" in flags:
        kernels = "u8 x u8 with AVX2, 16-bit products"
    else:
        kernels = "u8 x u8 with SSE"
    unused = [flag for flag in VNNI_FLAGS if flag in flags]
    if unused:
        kernels += f" ({', '.join(unused)} present: MLAS uses it for u8 x s8 only)"
    return kernels


def this_cpu_int8_kernels() -> str:
    try:
        text = CPUINFO.read_text()
    except OSError:
        text = ""
    return int8_kernels(cpu_flags(text), platform.machine())
