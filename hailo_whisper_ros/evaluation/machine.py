"""What the figures were measured on and what its cores reach: machine and library facts for the reports, a GEMM
yardstick measured in the same run, and the FLOPs of an encoder call to set against it."""

from __future__ import annotations

import os
import platform
import time
from datetime import UTC, datetime

import numpy as np

from hailo_whisper_ros.core.backends.onnx import create_ort_session


def machine_info(threads: int) -> dict:
    """What the figures were measured on: CPU, libraries, thread count, date, load."""
    import importlib.metadata

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), cpu)
    except OSError:
        pass
    versions = {}
    for package in ("onnxruntime", "ctranslate2", "faster-whisper", "numpy", "jiwer"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_1min": os.getloadavg()[0],
    }


def gemm_seconds(size: int, threads: int, repeats: int = 20) -> float:
    """Median time of a size x size FP32 matrix product in ONNX Runtime with ``threads`` threads, in a session set
    up as the recognizer's are: the yardstick of what this machine's cores reach, measured in the same run as the
    figures it is compared with."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((size, size)).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])], [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    session = create_ort_session(model.SerializeToString(), threads)
    a = rng.standard_normal((size, size)).astype(np.float32)
    session.run(None, {"a": a})
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        session.run(None, {"a": a})
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def encoder_flops(info, frames: int) -> float:
    """Floating-point operations (multiply and add counted apart) of one Whisper encoder call on ``frames`` mel
    frames: the two convolutions, then per layer the projections (QKV, output: 4 d^2 per position), the MLP (8 d^2)
    and attention (2 T^2 d for scores and for the weighted sum)."""
    d, positions = info.n_audio_state, frames // 2
    convolutions = 2 * 3 * info.n_mels * d * frames + 2 * 3 * d * d * positions
    per_layer = 2 * positions * 12 * d * d + 2 * 2 * positions * positions * d
    return float(convolutions + info.n_audio_layer * per_layer)
