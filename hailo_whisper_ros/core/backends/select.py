"""The encoder and decoder a RecognizerConfig asks for. A configured HEF that cannot run (no hailo_platform, no free
device, a HEF for another architecture) falls back to the CPU, logged once and reported, unless fail_on_fallback."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generic, TypeVar

from hailo_whisper_ros.core.backends.base import DecoderSteps, Encoder
from hailo_whisper_ros.core.backends.onnx import OnnxEncoder, OnnxKvDecoder
from hailo_whisper_ros.core.config import RecognizerConfig
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.model_dir import ENCODER_10S, ENCODER_30S, ENCODER_DYNAMIC, ModelInfo

logger = logging.getLogger(__name__)

ONNX_ENCODER_FILES = {"10s": ENCODER_10S, "30s": ENCODER_30S, "dynamic": ENCODER_DYNAMIC}
HEF_FALLBACK_KIND = "10s"  # Hailo's encoder HEFs take 10 s windows, so the CPU stand-in does too

Backend = TypeVar("Backend")


@dataclass(frozen=True)
class BackendChoice(Generic[Backend]):
    backend: Backend
    device: str  # "hailo" or "onnx"
    fallback_reason: str | None  # why the configured HEF is not the one in use


def create_encoder(config: RecognizerConfig, info: ModelInfo) -> BackendChoice[Encoder]:
    if config.encoder != "hef":
        path = config.encoder_file or Path(config.model_dir) / ONNX_ENCODER_FILES[config.encoder]
        return BackendChoice(OnnxEncoder(path, config.threads), "onnx", None)
    if config.encoder_file is None:
        raise HailoWhisperError("encoder 'hef' needs encoder_file, the path of the compiled encoder .hef")
    from hailo_whisper_ros.core.backends.hailo import HailoEncoder

    cpu_path = Path(config.model_dir) / ONNX_ENCODER_FILES[HEF_FALLBACK_KIND]
    return _hef_or_cpu(
        "encoder", config.encoder_file, config,
        on_npu=lambda: HailoEncoder(config.encoder_file, info, config.hailo_device),
        on_cpu=lambda: OnnxEncoder(cpu_path, config.threads), cpu_name=f"the CPU encoder {cpu_path}",
    )


def create_decoder(config: RecognizerConfig, info: ModelInfo, decoder_dir: Path) -> BackendChoice[DecoderSteps]:
    """The decoder HEF if configured and usable, else the ONNX KV-cache decoders of ``decoder_dir``."""
    if config.decoder_hef_file is None:
        return BackendChoice(OnnxKvDecoder(decoder_dir, info, config.threads), "onnx", None)
    from hailo_whisper_ros.core.backends.hailo import HailoSequenceDecoder

    return _hef_or_cpu(
        "decoder", config.decoder_hef_file, config,
        on_npu=lambda: HailoSequenceDecoder(
            config.decoder_hef_file, config.decoder_hef_token_embedding, config.decoder_hef_positional_embedding,
            info, config.hailo_device,
        ),
        on_cpu=lambda: OnnxKvDecoder(decoder_dir, info, config.threads), cpu_name=f"the CPU decoders in {decoder_dir}",
    )


def _hef_or_cpu(
    part: str, hef_path: Path, config: RecognizerConfig, on_npu: Callable, on_cpu: Callable, cpu_name: str
) -> BackendChoice:
    """The HEF on the NPU, or why it cannot run there and the CPU backend instead: the one fallback rule."""
    from hailo_whisper_ros.core.backends.hailort import HailoUnavailable

    if not Path(hef_path).is_file():
        raise HailoWhisperError(f"{part} HEF not found: {hef_path}")
    try:
        return BackendChoice(on_npu(), "hailo", None)
    except HailoUnavailable as unavailable:
        reason = str(unavailable)
    if config.fail_on_fallback:
        raise HailoWhisperError(f"cannot run {part} {hef_path} on the Hailo NPU: {reason}")
    logger.warning("Hailo %s %s unavailable (%s); using %s", part, hef_path, reason, cpu_name)
    return BackendChoice(on_cpu(), "onnx", reason)
