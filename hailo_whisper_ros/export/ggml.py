"""`export --ggml`: the same Whisper weights as a whisper.cpp ggml model (the legacy single-file format that
whisper.cpp's convert-pt-to-ggml.py writes and whisper_init_from_file loads), for whisper_ros / ros2_whisper users
and as the whisper.cpp baseline of `compare` and `bench`.

Layout: magic, eleven int32 hyper-parameters (the last the file type, 1 = F16), the mel filterbank
[n_mels, n_fft/2 + 1] as float32, the BPE vocabulary up to <|endoftext|> as raw bytes (whisper.cpp names the special
tokens after it itself), then each tensor as n_dims, name length, type, the dimensions fastest first, the name and the
data. Matrices are F16; vectors, the convolution biases and the positional embeddings F32, as whisper.cpp expects.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from hailo_whisper_ros.core.features import mel_filterbank
from hailo_whisper_ros.export.weights import WhisperWeights

GGML_MAGIC = 0x67676D6C  # "ggml"
FTYPE_F32, FTYPE_F16 = 0, 1
FLOAT32_TENSORS = ("encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding",
                   "decoder.positional_embedding")


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet (printable stand-ins for the 256 bytes) -> byte value."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    characters = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            characters.append(256 + extra)
            extra += 1
    return {chr(character): byte for byte, character in zip(printable, characters)}


def vocabulary_bytes(tokenizer: Path, eot: int) -> list[bytes]:
    """The tokens 0 .. eot-1 of tokenizer.json as the bytes they stand for."""
    vocab = json.loads(Path(tokenizer).read_text())["model"]["vocab"]
    by_id = {token_id: token for token, token_id in vocab.items()}
    decoder = _byte_decoder()
    return [bytes(decoder[character] for character in by_id[token_id]) for token_id in range(eot)]


def ggml_tensors(weights: WhisperWeights) -> Iterator[tuple[str, np.ndarray]]:
    """whisper.cpp's tensor names with their arrays, from the canonical (CTranslate2) names of export/weights.py:
    the fused q/k/v and k/v projections are split again, the convolution biases made [n_state, 1]."""
    tensors = weights.tensors

    def linear(name: str, canonical: str) -> Iterator[tuple[str, np.ndarray]]:
        yield f"{name}.weight", tensors[f"{canonical}/weight"]
        yield f"{name}.bias", tensors[f"{canonical}/bias"]

    def norm(name: str, canonical: str) -> Iterator[tuple[str, np.ndarray]]:
        yield f"{name}.weight", tensors[f"{canonical}/gamma"]
        yield f"{name}.bias", tensors[f"{canonical}/beta"]

    def split(names: list[str], canonical: str) -> Iterator[tuple[str, np.ndarray]]:
        weight = np.split(tensors[f"{canonical}/weight"], len(names))
        bias = np.split(tensors[f"{canonical}/bias"], len(names))
        for name, part, part_bias in zip(names, weight, bias):
            yield f"{name}.weight", part
            if not name.endswith(".key"):  # Whisper's key projection has no bias (zeros in the fused one)
                yield f"{name}.bias", part_bias

    def block(name: str, canonical: str) -> Iterator[tuple[str, np.ndarray]]:
        yield from norm(f"{name}.attn_ln", f"{canonical}/self_attention/layer_norm")
        yield from split([f"{name}.attn.{p}" for p in ("query", "key", "value")],
                         f"{canonical}/self_attention/linear_0")
        yield from linear(f"{name}.attn.out", f"{canonical}/self_attention/linear_1")
        yield from norm(f"{name}.mlp_ln", f"{canonical}/ffn/layer_norm")
        yield from linear(f"{name}.mlp.0", f"{canonical}/ffn/linear_0")
        yield from linear(f"{name}.mlp.2", f"{canonical}/ffn/linear_1")

    info = weights.info
    yield "encoder.positional_embedding", tensors["encoder/position_encodings/encodings"]
    for conv in ("conv1", "conv2"):
        yield f"encoder.{conv}.weight", tensors[f"encoder/{conv}/weight"]
        yield f"encoder.{conv}.bias", tensors[f"encoder/{conv}/bias"].reshape(-1, 1)
    for layer in range(info.n_audio_layer):
        yield from block(f"encoder.blocks.{layer}", f"encoder/layer_{layer}")
    yield from norm("encoder.ln_post", "encoder/layer_norm")
    yield "decoder.positional_embedding", tensors["decoder/position_encodings/encodings"]
    yield "decoder.token_embedding.weight", tensors["decoder/embeddings/weight"]
    for layer in range(info.n_text_layer):
        name, canonical = f"decoder.blocks.{layer}", f"decoder/layer_{layer}"
        yield from block(name, canonical)
        yield from norm(f"{name}.cross_attn_ln", f"{canonical}/attention/layer_norm")
        yield from linear(f"{name}.cross_attn.query", f"{canonical}/attention/linear_0")
        yield from split([f"{name}.cross_attn.{p}" for p in ("key", "value")], f"{canonical}/attention/linear_1")
        yield from linear(f"{name}.cross_attn.out", f"{canonical}/attention/linear_2")
    yield from norm("decoder.ln", "decoder/layer_norm")


def _write_tensor(out: BinaryIO, name: str, array: np.ndarray) -> None:
    float32 = array.ndim < 2 or name in FLOAT32_TENSORS
    data = np.ascontiguousarray(array, dtype=np.float32 if float32 else np.float16)
    encoded = name.encode()
    out.write(struct.pack("iii", data.ndim, len(encoded), FTYPE_F32 if float32 else FTYPE_F16))
    out.write(struct.pack(f"{data.ndim}i", *reversed(data.shape)))
    out.write(encoded)
    out.write(data.tobytes())


def write_ggml(weights: WhisperWeights, tokenizer: Path, path: Path) -> None:
    """Write the ggml F16 model to ``path`` (atomically)."""
    info = weights.info
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    filters = mel_filterbank(info.n_mels).astype(np.float32)
    with open(partial, "wb") as out:
        out.write(struct.pack("i", GGML_MAGIC))
        out.write(struct.pack(
            "11i", info.n_vocab, info.n_audio_ctx, info.n_audio_state, info.n_audio_head, info.n_audio_layer,
            info.n_text_ctx, info.n_text_state, info.n_text_head, info.n_text_layer, info.n_mels, FTYPE_F16,
        ))
        out.write(struct.pack("ii", *filters.shape))
        out.write(filters.tobytes())
        tokens = vocabulary_bytes(tokenizer, info.eot)
        out.write(struct.pack("i", len(tokens)))
        for token in tokens:
            out.write(struct.pack("i", len(token)))
            out.write(token)
        for name, array in ggml_tensors(weights):
            _write_tensor(out, name, array)
    os.replace(partial, path)
