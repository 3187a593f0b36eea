"""The host-side asset of Hailo's decoder HEF for an exported model: its token embedding matrix [n_vocab, d_model],
looked up on the host before every decoder call, in the layout of Hailo's decoder assets
(``<variant>/decoder_tokenization/token_embedding_weight_<variant>.npy``; Hailo-Application-Code-Examples 5eab622,
runtime/python/speech_recognition/app/hailo_whisper_pipeline.py ``_load_token_embedding_weight``), so that
``pipeline --decoder_assets_path`` and ``model.decoder_hef_token_embedding`` read the matrix of the very weights
the ONNX decoders were made from. No positional add-input: Hailo's decoder HEFs hold it (``add_embed=False``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from hailo_whisper_ros.core import model_dir as mf
from hailo_whisper_ros.core.backends.onnx import OnnxEncoder
from hailo_whisper_ros.core.config import RecognizerConfig
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.export.graphs import EMBEDDING_T, HAILO_FRAMES


def token_embedding_path(assets: Path, variant: str) -> Path:
    return Path(assets) / variant / "decoder_tokenization" / f"token_embedding_weight_{variant}.npy"


def write_decoder_assets(directory: Path, assets: Path) -> Path:
    """Write the token embedding of the model exported in ``directory`` under ``assets``; returns its path."""
    directory = Path(directory)
    info = mf.ModelInfo.load(directory / mf.MODEL_INFO)
    graph = onnx.load(directory / mf.DECODER).graph  # the FP32 decoder holds the table unquantized
    tables = [tensor for tensor in graph.initializer if tensor.name == EMBEDDING_T]
    if not tables:
        raise HailoWhisperError(f"{directory / mf.DECODER} has no {EMBEDDING_T}: not an export of this package")
    table = np.ascontiguousarray(numpy_helper.to_array(tables[0]).T, dtype=np.float32)  # [n_vocab, d_model]
    path = token_embedding_path(assets, info.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, table)
    return path


def hailo_encoder_difference(directory: Path, n_mels: int, threads: int = RecognizerConfig.threads) -> float:
    """Max abs difference between encoder_10s_hailo.onnx and encoder_10s.onnx in ONNX Runtime, on fixed
    pseudo-random log-mel input (the value range of real features)."""
    features = np.random.default_rng(0).uniform(-1.0, 1.5, (n_mels, HAILO_FRAMES)).astype(np.float32)
    hailo, cpu = (OnnxEncoder(Path(directory) / name, threads).encode(features)
                  for name in (mf.ENCODER_10S_HAILO, mf.ENCODER_10S))
    return float(np.abs(hailo - cpu).max())
