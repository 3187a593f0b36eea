"""The encoder and decoder a RecognizerConfig asks for. A configured HEF that cannot run (missing or unreadable, no
hailo_platform, no service, no free device, not a HEF, one for another architecture or one that does not fit the
model directory) falls back to the CPU with the reason in the Recognizer's fallback_reason, unless fail_on_fallback."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from hailo_whisper_ros.core.backends.base import DecoderSteps, Encoder
from hailo_whisper_ros.core.backends.hailort import HailoDeviceOptions, HailoUnavailable
from hailo_whisper_ros.core.backends.onnx import OnnxEncoder, OnnxKvDecoder
from hailo_whisper_ros.core.config import RecognizerConfig
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.model_dir import ONNX_ENCODER_FILES, ModelInfo

logger = logging.getLogger(__name__)

# The CPU stand-in for a HEF: a 10 s window, the longest of Hailo's Hailo-8/8L encoder HEFs (base's is 5 s).
HEF_FALLBACK_KIND = "10s"

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
        on_npu=lambda: HailoEncoder(config.encoder_file, info, hailo_device(config)),
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
            info, hailo_device(config),
        ),
        on_cpu=lambda: OnnxKvDecoder(decoder_dir, info, config.threads), cpu_name=f"the CPU decoders in {decoder_dir}",
    )


def _hef_or_cpu(
    part: str, hef_path: Path, config: RecognizerConfig, on_npu: Callable, on_cpu: Callable, cpu_name: str
) -> BackendChoice:
    """The HEF on the NPU, or why it cannot run there and the CPU backend instead: the one fallback rule. A HEF
    that is missing or unreadable is a reason like any other (the launch file's default configuration names a HEF
    that a robot without the NPU does not have), told before HailoRT is asked, which would only say it is absent."""
    try:
        if (unreadable := unreadable_file_reason(Path(hef_path))) is not None:
            raise HailoUnavailable(unreadable)
        return BackendChoice(on_npu(), "hailo", None)
    except HailoUnavailable as unavailable:
        reason = str(unavailable)
    if config.fail_on_fallback:
        raise HailoWhisperError(f"cannot run {part} {hef_path} on the Hailo NPU: {reason} (model.fail_on_fallback)")
    # Info, not a warning: each front end shows the Recognizer's fallback_reason its own way (the node's warning
    # and /diagnostics, pipeline's line), so a warning here would be a second line saying the same.
    logger.info("Hailo %s %s unusable (%s); using %s", part, hef_path, reason, cpu_name)
    return BackendChoice(on_cpu(), "onnx", reason)


def hailo_device(config: RecognizerConfig) -> HailoDeviceOptions:
    """How the HEFs of ``config`` reach the NPU (its model.hailo_* options)."""
    return HailoDeviceOptions(
        config.hailo_multi_process_service, config.hailo_group_id or None, config.hailo_timeout_ms
    )


def unreadable_file_reason(path: Path) -> str | None:
    """Why the file at ``path`` cannot be read (missing, a directory, no permission, empty), or None."""
    try:
        with path.open("rb") as file:
            if not file.read(1):
                return f"HEF file {path} is empty"
    except OSError as error:
        return f"cannot read HEF file {path}: {error.strerror or error}"
    return None
