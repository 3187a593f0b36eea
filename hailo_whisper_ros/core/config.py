"""Which model files and backends a Recognizer loads: the ``model.*`` parameters, read-only at run time since
changing any of them means loading the model again."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.model_dir import INT8_SUBDIR
from hailo_whisper_ros.core.options import Options, option

ENCODER_KINDS = ("dynamic", "10s", "30s", "hef")
CPU_ENCODER_KINDS = ENCODER_KINDS[:3]


@dataclass(frozen=True)
class RecognizerConfig(Options):
    PARAMETER_GROUP = "model"

    model_dir: Path | None = option(
        None, "Exported model directory (see `hailo-whisper export`); empty: the embedded tiny.en model, exported on "
        "first use.", path=True, read_only=True, none_as="", parameter="model.dir")
    encoder: str = option(
        "dynamic", "Encoder: 'dynamic' (ONNX on the CPU, the utterance's length and at least 6 s, weight MatMuls "
        "INT8), '10s' or '30s' (fixed ONNX windows), 'hef' (Hailo NPU, falling back to the 10 s ONNX encoder on "
        "the CPU).",
        choices=ENCODER_KINDS, read_only=True)
    encoder_file: Path | None = option(
        None, "An encoder file overriding the model directory's: the compiled .hef for 'hef', else an encoder ONNX; "
        "empty: the model directory's.", path=True, read_only=True, none_as="")
    decoder_dir: Path | None = option(
        None, "Folder with decoder_model.onnx and decoder_with_past_model.onnx; empty: the model's INT8 decoders "
        "(default_int8/).", path=True, read_only=True, none_as="")
    decoder_hef_file: Path | None = option(
        None, "Hailo's fixed-sequence decoder HEF instead of the ONNX decoders (falls back to them like the encoder); "
        "empty: the ONNX decoders.", path=True, read_only=True, none_as="")
    decoder_hef_token_embedding: Path | None = option(
        None, "Token embedding matrix [n_vocab, d] (.npy) for the decoder HEF; required with decoder_hef_file.",
        path=True, read_only=True, none_as="")
    decoder_hef_positional_embedding: Path | None = option(
        None, "Positional add-input [sequence, d] (.npy) that older decoder HEFs expect from the host.",
        path=True, read_only=True, none_as="")
    threads: int = option(2, "ONNX Runtime intra-op threads per session.", range=(1, 64), read_only=True)
    fail_on_fallback: bool = option(
        False, "Fail instead of falling back to the CPU when the configured HEF cannot run.", read_only=True)
    hailo_multi_process_service: bool = option(
        True, "Reach the NPU through HailoRT's multi-process service (hailort.service, which must be running), so "
        "other processes (vision models) can share it; false: this process holds the NPU alone.", read_only=True)
    hailo_group_id: str = option(
        "SHARED", "VDevice group shared with the other processes' models (Hailo's apps use SHARED); empty: "
        "HailoRT's default, UNIQUE, which never shares.", read_only=True)
    hailo_timeout_ms: int = option(10000, "Time limit of one inference on the NPU.", unit="ms",
                                   range=(100, 600000), read_only=True)
    warmup: bool = option(
        True, "Run one short transcription at load, so the first real request is not slowed by lazy "
        "initialisation.", read_only=True)

    def check(self) -> None:
        if self.decoder_hef_file is not None and self.decoder_hef_token_embedding is None:
            raise HailoWhisperError("decoder_hef_file needs decoder_hef_token_embedding (the token embedding .npy)")

    @property
    def resolved_decoder_dir(self) -> Path:
        if self.decoder_dir is not None:
            return self.decoder_dir
        if self.model_dir is None:
            raise HailoWhisperError("no model directory: set model_dir (the default one comes from export.store)")
        return self.model_dir / INT8_SUBDIR
