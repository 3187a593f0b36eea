"""What a HEF file says about itself without HailoRT, and whether it fits a model: the architecture it was compiled
for and the Dataflow Compiler version (from the file's own header), Hailo's published Whisper HEFs, and the one
check of a HEF's shapes against a model directory (used by `hailo-whisper hef-info` and at the recogniser's start).

The header layout is HailoRT's (hailort v4.23.0, libhailort/src/hef/hef_internal.hpp ``hef__header_t``, big-endian
fields read as in hef.cpp ``parse_hef_header_before_distinct``), followed by the ``ProtoHEFHef`` protobuf
(libhailort/hef.proto: field 1 ``header`` -> 1 ``hw_arch``, 3 ``sdk_version``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from hailo_whisper_ros.core.errors import HailoWhisperError

HEF_MAGIC = 0x01484546
# Bytes of the header before the protobuf, per header version (HEF_HEADER_SIZE_V0..V3 of hef_internal.hpp).
HEADER_SIZES = {0: 32, 1: 28, 2: 44, 3: 56}
# hef.proto ProtoHEFHwArch -> the name HailoRT's DeviceArchitectureTypes uses for the device.
HEF_ARCHITECTURES = {0: "HAILO8", 1: "HAILO8P", 2: "HAILO8R", 3: "HAILO8L", 4: "HAILO15M", 5: "HAILO10H",
                     6: "HAILO15L", 103: "HAILO15H"}
# A HEF for one of these runs on the device (libhailort device_internal.cpp is_hef_compatible: an 8L HEF runs on a
# Hailo-8 with a warning; a Hailo-8 HEF does not run on a Hailo-8L).
RUNS_ON = {"HAILO8": {"HAILO8"}, "HAILO8P": {"HAILO8"}, "HAILO8R": {"HAILO8"}, "HAILO8L": {"HAILO8", "HAILO8L"}}
FRAMES_PER_SECOND = 100  # mel frames; Hailo's pipeline reads the window as input shape[1] / 100 s


@dataclass(frozen=True)
class PublishedHef:
    """One of Hailo's published Whisper HEFs (hailo-ai/Hailo-Application-Code-Examples 5eab622,
    runtime/python/speech_recognition/app/whisper_hef_registry.py; hailo-apps has the same registry)."""

    file_name: str
    model: str  # "tiny", "base" (multilingual) or "tiny.en"
    part: str  # "encoder" or "decoder"
    architecture: str
    window_s: int | None  # encoders only

    @property
    def multilingual(self) -> bool:
        return not self.model.endswith(".en")


def _published(model, architecture, encoder, window_s, decoder):
    return (PublishedHef(encoder, model, "encoder", architecture, window_s),
            PublishedHef(decoder, model, "decoder", architecture, None))


PUBLISHED_HEFS = {hef.file_name: hef for hef in (
    *_published("base", "HAILO8", "base-whisper-encoder-5s.hef", 5,
                "base-whisper-decoder-fixed-sequence-matmul-split.hef"),
    *_published("base", "HAILO8L", "base-whisper-encoder-5s_h8l.hef", 5,
                "base-whisper-decoder-fixed-sequence-matmul-split_h8l.hef"),
    *_published("base", "HAILO10H", "base-whisper-encoder-10s.hef", 10, "base-whisper-decoder-10s-out-seq-64.hef"),
    *_published("tiny", "HAILO8", "tiny-whisper-encoder-10s_15dB.hef", 10,
                "tiny-whisper-decoder-fixed-sequence-matmul-split.hef"),
    *_published("tiny", "HAILO8L", "tiny-whisper-encoder-10s_15dB_h8l.hef", 10,
                "tiny-whisper-decoder-fixed-sequence-matmul-split_h8l.hef"),
    *_published("tiny", "HAILO10H", "tiny-whisper-encoder-10s.hef", 10, "tiny-whisper-decoder-fixed-sequence.hef"),
    *_published("tiny.en", "HAILO10H", "tiny_en-whisper-encoder-10s.hef", 10,
                "tiny_en-whisper-decoder-fixed-sequence.hef"),
)}
# The configurations of this package for Hailo's published HEFs, by model (config/hailo_*.yaml).
CONFIG_FOR_MODEL = {"base": "config/hailo_base.yaml", "tiny": "config/hailo_tiny.yaml"}


@dataclass(frozen=True)
class HefHeader:
    version: int
    architecture: str  # HEF_ARCHITECTURES' name, or "unknown (N)"
    sdk_version: str  # the Dataflow Compiler that built it; HailoRT must be of the same release


def read_hef_header(path: Path) -> HefHeader:
    """The architecture and compiler version written in a HEF file; HailoWhisperError if it is not a HEF."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            head = file.read(12)
            if len(head) < 12 or struct.unpack(">I", head[:4])[0] != HEF_MAGIC:
                raise HailoWhisperError(f"{path} is not a HEF (no HEF magic at its start)")
            _, version, proto_size = struct.unpack(">III", head)
            if version not in HEADER_SIZES:
                raise HailoWhisperError(f"{path}: HEF header version {version} is newer than this reader knows")
            file.seek(HEADER_SIZES[version])
            proto = file.read(proto_size)
    except OSError as error:
        raise HailoWhisperError(f"cannot read HEF file {path}: {error.strerror or error}") from error
    header = _fields(_field(_fields(proto), 1, b""))
    arch = _field(header, 1, 0)
    sdk = _field(header, 3, b"")
    return HefHeader(version, HEF_ARCHITECTURES.get(arch, f"unknown ({arch})"), sdk.decode(errors="replace"))


def _field(fields: list[tuple[int, int | bytes]], number: int, default):
    return next((value for key, value in fields if key == number), default)


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """The top-level (field number, value) pairs of a protobuf message: varints and length-delimited bytes."""
    fields, position = [], 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position)
        elif wire_type == 2:
            length, position = _varint(data, position)
            value, position = data[position:position + length], position + length
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            value, position = data[position:position + size], position + size
        else:
            raise HailoWhisperError(f"HEF header: protobuf wire type {wire_type} is not one HailoRT writes")
        fields.append((number, value))
    return fields


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data):
            raise HailoWhisperError("HEF header: truncated protobuf")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


def architecture_mismatch(hef_architecture: str, device_architecture: str) -> str | None:
    """Why a HEF for ``hef_architecture`` cannot run on the device, or None if it can (or either is unknown)."""
    runs_on = RUNS_ON.get(hef_architecture, {hef_architecture})
    if device_architecture in runs_on or hef_architecture.startswith("unknown"):
        return None
    advice = " (use the _h8l file of the same model)" if device_architecture == "HAILO8L" else ""
    return f"the HEF was compiled for {hef_architecture}, this device is a {device_architecture}{advice}"


@dataclass(frozen=True)
class HefStream:
    name: str
    shape: tuple[int, ...]  # HailoRT's vstream frame shape (no batch axis), NHWC
    format_type: str  # the HEF's own (quantized) type; the adapter asks HailoRT for FLOAT32


@dataclass(frozen=True)
class HefDescription:
    """What `hef-info` prints and the start-up check reads: the header, and the streams as HailoRT reports them."""

    path: Path
    header: HefHeader
    inputs: tuple[HefStream, ...]
    outputs: tuple[HefStream, ...]  # in HailoRT's sorted output order

    @property
    def published(self) -> PublishedHef | None:
        return PUBLISHED_HEFS.get(self.path.name)

    @property
    def part(self) -> str:
        return "encoder" if len(self.inputs) == 1 else "decoder"

    @property
    def window_frames(self) -> int | None:
        """An encoder's mel frames: its input's shape[1], as Hailo's pipeline reads it (NHWC [1, frames, n_mels])."""
        return self.inputs[0].shape[1] if self.part == "encoder" and len(self.inputs[0].shape) == 3 else None

    @property
    def logit_outputs(self) -> tuple[HefStream, ...]:
        """A decoder's logits, split over the outputs whose name holds "conv" (Hailo's pipeline concatenates only
        those, on axis 2; hailo_whisper_pipeline.py ``useful_outputs``)."""
        return tuple(stream for stream in self.outputs if "conv" in stream.name)

    @property
    def sequence_length(self) -> int | None:
        """A decoder's fixed token positions: its first output's shape[1] (Hailo's ``decoding_sequence_length``)."""
        return self.outputs[0].shape[1] if self.part == "decoder" and len(self.outputs[0].shape) == 3 else None

    @property
    def vocabulary(self) -> int | None:
        logits = self.logit_outputs
        return sum(stream.shape[-1] for stream in logits) if self.part == "decoder" and logits else None


def whisper_name(d_model: int, multilingual: bool) -> str:
    """The Whisper size a model dimension means (openai/whisper's model dimensions)."""
    size = {384: "tiny", 512: "base", 768: "small", 1024: "medium", 1280: "large"}.get(d_model, f"d_model {d_model}")
    return size if multilingual else f"{size}.en"


def model_mismatch(description: HefDescription, info) -> str | None:
    """Why the HEF cannot serve the model directory whose ModelInfo is ``info`` (None if it can), saying what to
    use instead. Shapes cannot tell multilingual tiny from tiny.en, so a published HEF is also checked by name."""
    ours = whisper_name(info.n_audio_state, info.multilingual)
    published = description.published
    if published is not None and published.multilingual != info.multilingual:
        config = CONFIG_FOR_MODEL.get(published.model)
        instead = f" and {config}" if config else ""
        return (f"{description.path.name} is Hailo's {published.model} {published.part} "
                f"({'multilingual' if published.multilingual else 'English-only'}); the model directory holds "
                f"{info.name} ({ours}): it would decode garbage. Export {published.model} "
                f"(`hailo-whisper export ... --hailo`) and use that model directory{instead}")
    if description.part == "encoder":
        (stream,), (output,) = description.inputs, description.outputs
        dims = [d for d in stream.shape if d != 1]
        if info.n_mels not in dims:
            return f"encoder HEF input {stream.shape} is not a window of {info.n_mels} mel bins ({info.name})"
        if info.n_audio_state not in output.shape:
            return (f"encoder HEF output {output.shape} is not d_model {info.n_audio_state} of {info.name}: it is a "
                    f"{whisper_name(output.shape[-1], info.multilingual)} encoder, use a matching model directory")
        return None
    if description.vocabulary is None:
        names = [stream.name for stream in description.outputs]
        return f"decoder HEF has no logits output (no output name holds 'conv'): {names}"
    if description.vocabulary != info.n_vocab:
        kind = "multilingual" if description.vocabulary > info.n_vocab else "English-only"
        return (f"decoder HEF has {description.vocabulary} logits ({kind}); {info.name} has {info.n_vocab} tokens: "
                f"use a model directory of the same Whisper model")
    return None
