"""Dynamic INT8 quantization of exported graphs with ONNX Runtime's quantize_dynamic: the weight MatMuls only
(``MatMulConstBOnly``), per output channel, activations quantized per call at run time."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import onnx

# Which of the encoder's weight MatMuls are quantized, by the name graphs.build_encoder gives each layer's linear.
ENCODER_SELECTIONS = {
    "ffn": ("ffn/linear_0", "ffn/linear_1"),
    "all": ("ffn/linear_0", "ffn/linear_1", "self_attention/linear_0", "self_attention/linear_1"),
}
# Measured with evaluation/encoder_choice.py on the 61 speech_dev clips (tiny.en, INT8 decoder, one interleaved
# run; WER FP32 / ffn / all): clean 7.80 / 8.03 / 7.80 %, white noise at 20 dB 9.25 / 9.36 / 9.14, at 10 dB
# 12.15 / 12.71 / 12.60, babble at 10 dB 16.39 / 16.83 / 16.28, at 5 dB 40.13 / 40.02 / 41.92; encoder median
# (2-core AVX2 EPYC, no VNNI, loaded) FP32 232, ffn 192, all 160 ms. All 16 lose nothing on clean speech or down to
# 10 dB and are the fastest; only at 5 dB babble, where every variant is unusable, do they lose more.
DEFAULT_ENCODER_SELECTION = "all"


def quantize_matmuls(source: Path, target: Path, nodes_to_exclude: Sequence[str] = (),
                     nodes_to_quantize: Sequence[str] = ()) -> None:
    """quantize_dynamic on the MatMuls with a constant weight; written atomically (a killed export leaves nothing
    half-written). QUInt8 weights: u8 x u8 does not saturate in AVX2's int16 sums, u8 x s8 can."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = Path(target).with_name(Path(target).name + ".partial")
    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(logging.ERROR)  # quantize_dynamic warns about optional shape pre-processing every time
    try:
        quantize_dynamic(
            source, partial, op_types_to_quantize=["MatMul"], weight_type=QuantType.QUInt8, per_channel=True,
            nodes_to_exclude=list(nodes_to_exclude), nodes_to_quantize=list(nodes_to_quantize),
            extra_options={"MatMulConstBOnly": True},
        )
    finally:
        root_logger.setLevel(level)
    os.replace(partial, target)


def encoder_matmuls(path: Path, selection: str) -> list[str]:
    """The names of the encoder MatMuls that ``selection`` (a key of ENCODER_SELECTIONS) quantizes."""
    suffixes = tuple(f"/{linear}/MatMul" for linear in ENCODER_SELECTIONS[selection])
    graph = onnx.load(path, load_external_data=False).graph
    return [node.name for node in graph.node if node.op_type == "MatMul" and node.name.endswith(suffixes)]


def quantize_encoder(source: Path, target: Path, selection: str = DEFAULT_ENCODER_SELECTION) -> None:
    quantize_matmuls(source, target, nodes_to_quantize=encoder_matmuls(source, selection))
