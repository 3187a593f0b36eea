"""Whisper encoders behind one small interface: ONNX Runtime on the CPU, or a HEF on the Hailo NPU with a logged
fallback to the CPU when the NPU cannot be used."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from hailo_whisper_ros.core import HailoWhisperError
from hailo_whisper_ros.core.decoder import create_ort_session
from hailo_whisper_ros.core.model_files import ENCODER_10S, ENCODER_30S, ENCODER_DYNAMIC, ModelInfo

if TYPE_CHECKING:
    from hailo_whisper_ros.core.recognizer import RecognizerConfig

logger = logging.getLogger(__name__)

MAX_FRAMES = 3000  # 30 s of mel frames: the positional embedding of every Whisper encoder ends there
ONNX_ENCODER_FILES = {"10s": ENCODER_10S, "30s": ENCODER_30S, "dynamic": ENCODER_DYNAMIC}
ENCODER_KINDS = (*ONNX_ENCODER_FILES, "hef")
HEF_FALLBACK_KIND = "10s"  # Hailo's encoder HEFs take 10 s windows, so the CPU stand-in does too


class Encoder(Protocol):
    name: str
    window_frames: int | None
    """Mel frames of every call, or None when any even count up to max_frames is accepted."""
    max_frames: int
    """The longest input, in mel frames; longer audio is split by the recognizer."""
    output_positions: int | None
    """Encoder positions of every call (window_frames / 2), or None for a dynamic encoder (frames / 2)."""

    def encode(self, mel: np.ndarray) -> np.ndarray:
        """log-mel [n_mels, frames] float32 -> hidden states [1, frames / 2, d_model] float32."""


class OnnxEncoder:
    """An encoder ONNX file on the CPU: the 30 s or 10 s export, the dynamic one, or the static NCHW
    [1, n_mels, 1, frames] graph made for the Hailo compiler (so its CPU output can be checked)."""

    def __init__(self, path: Path, threads: int = 2):
        self.path = Path(path)
        self.name = f"onnx:{self.path.name}"
        self._session = create_ort_session(self.path, threads)
        (model_input,) = self._session.get_inputs()
        self._input_name = model_input.name
        self._four_d = len(model_input.shape) == 4
        frames = model_input.shape[-1]
        self.window_frames = frames if isinstance(frames, int) else None
        self.max_frames = self.window_frames or MAX_FRAMES
        self.output_positions = self.window_frames // 2 if self.window_frames else None

    def encode(self, mel: np.ndarray) -> np.ndarray:
        n_mels, frames = mel.shape
        if self.window_frames is not None and frames != self.window_frames:
            raise HailoWhisperError(f"{self.path} takes {self.window_frames} mel frames, got {frames}")
        if frames % 2 or frames > self.max_frames:
            raise HailoWhisperError(
                f"{self.path} takes an even number of mel frames up to {self.max_frames}, got {frames}"
            )
        features = mel.reshape(1, n_mels, 1, frames) if self._four_d else mel[np.newaxis]
        return self._session.run(None, {self._input_name: features})[0]


@dataclass(frozen=True)
class EncoderChoice:
    encoder: Encoder
    backend: str  # "hailo" or "onnx"
    fallback_reason: str | None  # why the configured Hailo encoder is not the one in use


def create_encoder(config: "RecognizerConfig", info: ModelInfo) -> EncoderChoice:
    """The encoder the configuration asks for; a HEF that cannot run (no hailo_platform, no free device, HEF for
    another architecture) falls back to the CPU ONNX encoder, logged once, unless config.fail_on_fallback."""
    if config.encoder != "hef":
        path = config.encoder_file or Path(config.model_dir) / ONNX_ENCODER_FILES[config.encoder]
        return EncoderChoice(OnnxEncoder(path, config.threads), "onnx", None)

    from hailo_whisper_ros.core import hailo

    if config.encoder_file is None:
        raise HailoWhisperError("encoder 'hef' needs encoder_file, the path of the compiled encoder .hef")
    hef_path = Path(config.encoder_file)
    if not hef_path.is_file():
        raise HailoWhisperError(f"encoder HEF not found: {hef_path}")
    try:
        return EncoderChoice(hailo.HailoEncoder(hef_path, info, config.hailo_device), "hailo", None)
    except hailo.HailoUnavailable as unavailable:
        reason = str(unavailable)
    if config.fail_on_fallback:
        raise HailoWhisperError(f"cannot run encoder {hef_path} on the Hailo NPU: {reason}")
    fallback_path = Path(config.model_dir) / ONNX_ENCODER_FILES[HEF_FALLBACK_KIND]
    logger.warning("Hailo encoder %s unavailable (%s); using the CPU encoder %s", hef_path, reason, fallback_path)
    return EncoderChoice(OnnxEncoder(fallback_path, config.threads), "onnx", reason)
