"""`export --ggml`: the whisper.cpp model written from the same tiny.en weights, read back by its layout and, where
pywhispercpp is installed (requirements-test.txt), transcribing real speech as our recognizer does."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from hailo_whisper_ros.core import model_dir as mf
from hailo_whisper_ros.core.text import normalise
from hailo_whisper_ros.export.ggml import GGML_MAGIC, ggml_tensors, write_ggml
from hailo_whisper_ros.export.weights import load_weights, resolve_source


@pytest.fixture(scope="module")
def ggml_file(tmp_path_factory):
    source = resolve_source("tiny.en")
    weights = load_weights(source)
    path = tmp_path_factory.mktemp("ggml") / mf.GGML_MODEL
    write_ggml(weights, source.tokenizer, path)
    return path, weights


def _read_ggml(path):
    """Header, vocabulary and {name: (type, shape fastest first)} of a ggml file."""
    data = path.read_bytes()
    offset = 0

    def take(fmt: str):
        nonlocal offset
        values = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return values

    (magic,) = take("i")
    hparams = take("11i")
    n_mel, n_fft = take("ii")
    offset += 4 * n_mel * n_fft
    (n_tokens,) = take("i")
    tokens = []
    for _ in range(n_tokens):
        (length,) = take("i")
        tokens.append(data[offset:offset + length])
        offset += length
    tensors = {}
    while offset < len(data):
        n_dims, name_length, ftype = take("iii")
        dims = take(f"{n_dims}i")
        name = data[offset:offset + name_length].decode()
        offset += name_length + int(np.prod(dims)) * (4 if ftype == 0 else 2)
        tensors[name] = (ftype, dims)
    assert offset == len(data)
    return magic, hparams, (n_mel, n_fft), tokens, tensors


def test_ggml_file_has_whisper_cpp_layout_and_every_tensor(ggml_file):
    path, weights = ggml_file
    info = weights.info
    magic, hparams, filters, tokens, tensors = _read_ggml(path)
    assert magic == GGML_MAGIC
    assert hparams == (info.n_vocab, info.n_audio_ctx, info.n_audio_state, info.n_audio_head, info.n_audio_layer,
                       info.n_text_ctx, info.n_text_state, info.n_text_head, info.n_text_layer, info.n_mels, 1)
    assert filters == (info.n_mels, 201)
    assert len(tokens) == info.eot and tokens[262] == b" the" and tokens[0] == b"!"
    # whisper.cpp's names: per encoder block 15 tensors (no key bias), per decoder block 15 + 9 cross-attention.
    assert len(tensors) == 5 + 15 * info.n_audio_layer + 2 + 2 + 24 * info.n_text_layer + 2  # 167 for tiny
    assert tensors["encoder.conv1.weight"] == (1, (3, info.n_mels, info.n_audio_state))
    assert tensors["encoder.conv1.bias"] == (0, (1, info.n_audio_state))
    assert tensors["encoder.blocks.0.attn.key.weight"] == (1, (info.n_audio_state, info.n_audio_state))
    assert "encoder.blocks.0.attn.key.bias" not in tensors
    assert tensors["decoder.token_embedding.weight"] == (1, (info.n_text_state, info.n_vocab))
    assert tensors["decoder.positional_embedding"] == (0, (info.n_text_state, info.n_text_ctx))
    assert tensors["decoder.blocks.3.cross_attn.value.bias"] == (0, (info.n_text_state,))
    names = [name for name, _ in ggml_tensors(weights)]
    assert len(names) == len(set(names)) == len(tensors)


def test_whisper_cpp_transcribes_the_ggml_file_as_our_recognizer_does(ggml_file, model_dir, sample_audio):
    pytest.importorskip("pywhispercpp", reason="pywhispercpp (requirements-test.txt) is not installed")
    from hailo_whisper_ros.core.config import RecognizerConfig
    from hailo_whisper_ros.core.recognizer import Recognizer
    from hailo_whisper_ros.evaluation.engines import WhisperCppEngine

    audio = sample_audio("jfk/jfk.flac")
    text, _, _ = WhisperCppEngine("whisper.cpp", ggml_file[0], 2, "en").transcribe(audio)
    assert normalise(text) == normalise(Recognizer(RecognizerConfig(model_dir)).transcribe(audio).text)
    assert "ask not what your country can do for you" in normalise(text)


def test_whisper_cpp_engine_never_takes_a_model_name(tmp_path):
    pytest.importorskip("pywhispercpp", reason="pywhispercpp (requirements-test.txt) is not installed")
    from hailo_whisper_ros.core.errors import HailoWhisperError
    from hailo_whisper_ros.evaluation.engines import WhisperCppEngine

    with pytest.raises(HailoWhisperError, match="not found"):
        WhisperCppEngine("whisper.cpp", "tiny.en", 2, "en")  # a name pywhispercpp would download
