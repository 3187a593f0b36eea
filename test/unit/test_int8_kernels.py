"""Which MLAS kernels multiply the INT8 MatMuls, told from a CPU's flags (core/int8_kernels)."""

import pytest

from hailo_whisper_ros.core.int8_kernels import cpu_flags, int8_kernels, this_cpu_int8_kernels

AVX2 = {"sse4_2", "avx", "avx2", "fma"}
AVX512 = AVX2 | {"avx512f", "avx512bw", "avx512dq", "avx512vl"}


@pytest.mark.parametrize(("flags", "machine", "kernels"), [
    (AVX2, "x86_64", "u8 x u8 with AVX2, 16-bit products"),
    (AVX2 | {"avx_vnni"}, "x86_64",
     "u8 x u8 with AVX2, 16-bit products (avx_vnni present: MLAS uses it for u8 x s8 only)"),
    (AVX512, "x86_64", "u8 x u8 with AVX-512, 16-bit products"),
    # The EPYC of issue 29 and the Xeon of the README: VNNI, which MLAS does not use for u8 x u8.
    (AVX512 | {"avx512_vnni", "amx_int8"}, "x86_64",
     "u8 x u8 with AVX-512, 16-bit products (avx512_vnni present: MLAS uses it for u8 x s8 only)"),
    (AVX512 - {"avx512vl"}, "x86_64", "u8 x u8 with AVX2, 16-bit products"),  # not MLAS's "AVX-512 core"
    ({"sse2", "sse4_1"}, "x86_64", "u8 x u8 with SSE"),
    ({"fp", "asimd", "asimddot"}, "aarch64", "u8 x u8 with the Armv8.2 dot product (UDOT)"),  # a Pi 5's A76
    ({"fp", "asimd"}, "aarch64", "u8 x u8 with NEON (no dot-product instructions)"),
    (set(), "riscv64", "u8 x u8 on riscv64: kernels not known here"),
])
def test_the_int8_kernels_follow_the_cpu_flags(flags, machine, kernels):
    assert int8_kernels(frozenset(flags), machine) == kernels


def test_flags_are_read_from_x86_and_arm64_cpuinfo():
    x86 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512_vnni\n\nprocessor\t: 1\nflags\t: fpu\n"
    arm = "processor\t: 0\nFeatures\t: fp asimd asimddot\nCPU implementer\t: 0x41\n"
    assert cpu_flags(x86) == {"fpu", "avx2", "avx512_vnni"}
    assert cpu_flags(arm) == {"fp", "asimd", "asimddot"}
    assert cpu_flags("") == frozenset()


def test_this_cpu_is_described():
    assert this_cpu_int8_kernels().startswith("u8 x u8")
