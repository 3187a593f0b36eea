"""`hailo-whisper export`: the exported graphs against CTranslate2 / faster-whisper on the same tiny.en weights."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from hailo_whisper_ros.cli.main import main
from hailo_whisper_ros.core import model_dir as mf
from hailo_whisper_ros.core.backends.onnx import create_ort_session
from hailo_whisper_ros.export.graphs import EMBEDDING_T
from hailo_whisper_ros.export.store import MODEL_DIR_ENV, default_model_dir, resolve_model_dir
from hailo_whisper_ros.export.weights import load_weights, non_speech_tokens, read_safetensors, resolve_source
from hailo_whisper_ros.export.writer import STAMP


@pytest.fixture(scope="session")
def tiny_source():
    return resolve_source("tiny.en")


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> Path:
    """tiny.en exported once for the module, with the Hailo encoder."""
    out = tmp_path_factory.mktemp("export") / "tiny.en"
    assert main(["export", "tiny.en", "--out", str(out), "--hailo"]) == 0
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _model_files(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file() and p.name != STAMP)


def _session(path: Path):
    return create_ort_session(path, threads=2)


def test_every_file_of_the_layout_is_written_and_valid(exported):
    expected = {mf.ENCODER_30S, mf.ENCODER_10S, mf.ENCODER_DYNAMIC, mf.ENCODER_DYNAMIC_INT8, mf.ENCODER_10S_HAILO,
                mf.DECODER,
                mf.DECODER_WITH_PAST, mf.DECODER_CROSS_KV, mf.DECODER_ALIGNMENT, mf.TOKENIZER, mf.MODEL_INFO}
    expected |= {f"{mf.INT8_SUBDIR}/{name}"
                 for name in (mf.DECODER, mf.DECODER_WITH_PAST, mf.TOKEN_TABLE_INT8, mf.TOKENIZER, mf.MODEL_INFO)}
    assert set(_model_files(exported)) == expected
    for path in sorted(exported.rglob("*.onnx")):
        onnx.checker.check_model(str(path), full_check=True)
    hailo = onnx.load(exported / mf.ENCODER_10S_HAILO)
    assert hailo.ir_version == 9 and hailo.opset_import[0].version == 17
    assert [d.dim_value for d in hailo.graph.input[0].type.tensor_type.shape.dim] == [1, 80, 1, 1000]
    assert {node.op_type for node in hailo.graph.node} >= {"MatMul", "Softmax", "Conv"}
    assert "LayerNormalization" not in {node.op_type for node in hailo.graph.node}
    int8 = onnx.load(exported / mf.INT8_SUBDIR / mf.DECODER).graph
    assert any(node.op_type == "MatMulInteger" for node in int8.node)
    assert EMBEDDING_T not in {tensor.name for tensor in int8.initializer}  # tokens are looked up in the INT8 table
    # The step decoder takes the looked-up INT8 columns, the table itself is a file of rows beside it
    step = onnx.load(exported / mf.INT8_SUBDIR / mf.DECODER_WITH_PAST).graph
    assert {mf.TOKEN_COLUMNS, mf.LOGIT_ROWS} <= {value.name for value in step.input}
    assert not any(node.op_type == "Gather" and node.input[0] == f"{EMBEDDING_T}_quantized"
                   for body in step.node[-1].attribute for node in body.g.node)
    (table,) = [tensor for tensor in step.initializer if tensor.name == f"{EMBEDDING_T}_quantized"]
    rows = np.load(exported / mf.INT8_SUBDIR / mf.TOKEN_TABLE_INT8)
    np.testing.assert_array_equal(rows, numpy_helper.to_array(table).T)


def test_the_dynamic_encoder_is_written_with_its_weight_matmuls_int8_and_no_fp32_copy(exported):
    from hailo_whisper_ros.export.quantize import DEFAULT_ENCODER_SELECTION, ENCODER_SELECTIONS

    fp32 = onnx.load(exported / mf.ENCODER_DYNAMIC).graph
    quantized = onnx.load(exported / mf.ENCODER_DYNAMIC_INT8).graph
    weight_matmuls = [node for node in fp32.node if node.op_type == "MatMul" and node.input[1] in
                      {tensor.name for tensor in fp32.initializer}]
    chosen = [node for node in weight_matmuls if any(f"/{linear}/" in node.name
                                                     for linear in ENCODER_SELECTIONS[DEFAULT_ENCODER_SELECTION])]
    assert len(weight_matmuls) == 16 and len(chosen) == 16  # tiny.en: 4 layers x (qkv, out, 2 FFN); all chosen
    names = {tensor.name for tensor in quantized.initializer}
    assert not {node.input[1] for node in chosen} & names  # the FP32 weights are gone ...
    assert {f"{node.input[1]}_quantized" for node in chosen} <= names  # ... for their INT8 copies
    assert sum(node.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for node in quantized.node) == len(chosen)
    assert mf.ONNX_ENCODER_FILES["dynamic"] == mf.ENCODER_DYNAMIC_INT8


def test_decoder_interface_uses_optimum_names(exported):
    info = mf.ModelInfo.load(exported / mf.MODEL_INFO)
    decoder = _session(exported / mf.DECODER)
    with_past = _session(exported / mf.DECODER_WITH_PAST)
    kv = [(i, kind, kv) for i in range(info.n_text_layer) for kind in ("decoder", "encoder") for kv in ("key", "value")]
    # Optimum's inputs, then ours: the bias that pads the encoder output for free.
    assert [i.name for i in decoder.get_inputs()] == [mf.INPUT_IDS, mf.ENCODER_HIDDEN_STATES, mf.ENCODER_ATTENTION_BIAS]
    assert [o.name for o in decoder.get_outputs()] == [mf.LOGITS] + [mf.present_name(*k) for k in kv]
    assert [i.name for i in with_past.get_inputs()] == [mf.INPUT_IDS] + [mf.past_name(*k) for k in kv] + [
        mf.ENCODER_ATTENTION_BIAS
    ]
    assert [o.name for o in with_past.get_outputs()] == [mf.LOGITS] + [
        mf.present_name(*k) for k in kv if k[1] == "decoder"
    ]


def test_model_info_matches_faster_whisper(exported, tiny_source):
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens
    from tokenizers import Tokenizer as HFTokenizer

    info = mf.ModelInfo.load(exported / mf.MODEL_INFO)
    reference = Tokenizer(HFTokenizer.from_file(str(tiny_source.tokenizer)), multilingual=False)
    assert (info.n_vocab, info.n_audio_state, info.n_text_layer, info.multilingual) == (51864, 384, 4, False)
    assert info.languages == {}
    for name in ("sot", "eot", "no_timestamps", "no_speech", "transcribe", "translate", "timestamp_begin",
                 "sot_prev", "sot_lm"):
        assert getattr(info, name) == getattr(reference, name), name
    assert info.suppress_tokens == get_suppressed_tokens(reference, [-1])
    assert info.begin_suppress_tokens == (220, info.eot)
    # Without a suppress list in the source, openai/whisper's non-speech rule gives the same set.
    specials = {info.sot, info.sot_prev, info.sot_lm, info.no_speech, info.transcribe, info.translate}
    assert set(non_speech_tokens(tiny_source.tokenizer)) | specials == set(info.suppress_tokens)


def test_encoders_match_ctranslate2(exported, tiny_source, speech_samples):
    from faster_whisper import WhisperModel
    from faster_whisper.audio import decode_audio
    from faster_whisper.feature_extractor import FeatureExtractor

    from hailo_whisper_ros.export.verify import encoder_differences

    features = FeatureExtractor()(decode_audio(str(speech_samples / "jfk" / "jfk.flac")))[:, :-1]
    reference = WhisperModel(str(tiny_source.ct2_directory), device="cpu", compute_type="float32")
    differences = encoder_differences(exported, reference.model, features)
    assert set(differences) == {mf.ENCODER_30S, mf.ENCODER_10S, mf.ENCODER_DYNAMIC, mf.ENCODER_DYNAMIC_INT8,
                                mf.ENCODER_10S_HAILO}
    assert differences.pop(mf.ENCODER_DYNAMIC_INT8) > 1e-3  # INT8 weights: close, not equal (checked below)
    assert max(differences.values()) < 1e-3, differences


def test_int8_encoder_stays_close_to_fp32_on_speech(exported, speech_samples):
    """The INT8 MatMuls' error relative to the FP32 states: 5 % RMS on jfk (max abs 1.2 of 11); transcripts are
    test_greedy_transcripts_match_faster_whisper's check."""
    from hailo_whisper_ros.core.audio import load_audio
    from hailo_whisper_ros.core.backends.onnx import OnnxEncoder
    from hailo_whisper_ros.core.features import LogMelExtractor

    mel = LogMelExtractor().log_mel(load_audio(speech_samples / "jfk" / "jfk.flac"), n_frames=1000)
    fp32, int8 = (OnnxEncoder(exported / name, 2).encode(mel) for name in (mf.ENCODER_DYNAMIC, mf.ENCODER_DYNAMIC_INT8))
    relative_rms = float(np.sqrt(np.mean((int8 - fp32) ** 2) / np.mean(fp32**2)))
    assert 1e-3 < relative_rms < 0.1, relative_rms


def test_dynamic_encoder_handles_other_lengths(exported):
    features = np.random.default_rng(1).uniform(-1, 1, (1, 80, 3000)).astype(np.float32)
    full = _session(exported / mf.ENCODER_30S).run(None, {mf.INPUT_FEATURES: features})[0]
    dynamic = _session(exported / mf.ENCODER_DYNAMIC)
    difference = float(np.abs(dynamic.run(None, {mf.INPUT_FEATURES: features})[0] - full).max())
    assert difference < 1e-3  # same weights, different MatMul blocking
    assert dynamic.run(None, {mf.INPUT_FEATURES: features[:, :, :640]})[0].shape == (1, 320, 384)


def test_decoder_with_past_continues_the_decoder(exported):
    """Prompt then three tokens at once through the cache == all tokens in one pass (causal mask, positions)."""
    info = mf.ModelInfo.load(exported / mf.MODEL_INFO)
    decoder = _session(exported / mf.DECODER)
    with_past = _session(exported / mf.DECODER_WITH_PAST)
    states = np.random.default_rng(2).normal(0, 1, (1, 500, info.n_audio_state)).astype(np.float32)
    tokens = [info.sot, info.no_timestamps, 400, 1000, 2000]
    no_bias = {mf.ENCODER_ATTENTION_BIAS: np.zeros(500, np.float32)}
    full = decoder.run(None, {mf.INPUT_IDS: np.array([tokens]), mf.ENCODER_HIDDEN_STATES: states, **no_bias})
    prefix = decoder.run(None, {mf.INPUT_IDS: np.array([tokens[:2]]), mf.ENCODER_HIDDEN_STATES: states, **no_bias})
    names = [o.name for o in decoder.get_outputs()]
    cache = {name.replace("present.", "past_key_values."): value for name, value in zip(names[1:], prefix[1:])}
    rest = with_past.run(None, {mf.INPUT_IDS: np.array([tokens[2:]]), **cache, **no_bias})
    assert float(np.abs(rest[0] - full[0][:, 2:]).max()) < 1e-3
    for name, value in zip([o.name for o in with_past.get_outputs()][1:], rest[1:]):
        assert value.shape == (1, info.n_text_head, len(tokens), info.n_text_state // info.n_text_head)
        assert float(np.abs(value - full[names.index(name)]).max()) < 1e-4, name


def test_greedy_transcripts_match_faster_whisper(exported, tiny_source):
    from hailo_whisper_ros.cli.export import SUBSET_STRIDE, verification_clips
    from hailo_whisper_ros.evaluation.datasets import SPEECH_SAMPLES
    from hailo_whisper_ros.export.verify import verify

    clips = verification_clips(SPEECH_SAMPLES, every=SUBSET_STRIDE)  # `export --verify`'s 9 clips across the sets
    result = verify(exported, tiny_source.ct2_directory, [clip.audio_path for clip in clips])
    assert result["transcripts"]["fp32"].identical_tokens == len(clips)
    assert result["transcripts"]["int8"].agreement >= 0.8
    assert result["transcripts"]["int8-encoder+int8"].agreement >= 0.8
    # The alignment heads' pass starts every token where CTranslate2's align does (measured: all of them).
    alignment = result["alignment"]
    assert alignment.tokens > 100 and alignment.within_one_position >= 0.95 * alignment.tokens


def test_first_use_of_the_default_model_dir_exports_it_and_says_so(tmp_path, monkeypatch):
    first_use = tmp_path / "cache" / "tiny.en"
    monkeypatch.setenv(MODEL_DIR_ENV, str(first_use))
    lines = []
    assert resolve_model_dir(None, log=lines.append) == first_use
    assert len(lines) == 2, lines  # what it does as it starts, and how long it took
    assert lines[0].startswith("exporting tiny.en (ct2, sha256 ") and lines[0].endswith(f" to {first_use}")
    assert re.fullmatch(rf"exported tiny\.en to {re.escape(str(first_use))} in \d+\.\d s", lines[1]), lines[1]
    lines.clear()
    assert resolve_model_dir(None, log=lines.append) == first_use
    assert lines == []  # up to date: nothing to say


def test_export_is_deterministic_and_reused(exported, tmp_path, capsys, monkeypatch):
    again = tmp_path / "again"
    capsys.readouterr()
    assert main(["export", "tiny.en", "--out", str(again), "--hailo"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("exporting tiny.en (ct2, sha256 ") and printed[0].endswith(f" to {again}")
    assert re.fullmatch(rf"exported tiny\.en to {re.escape(str(again))} in \d+\.\d s", printed[-1]), printed[-1]
    assert _model_files(again) == _model_files(exported)
    for name in _model_files(exported):
        assert _sha256(again / name) == _sha256(exported / name), name
    modified = (again / mf.DECODER).stat().st_mtime_ns
    assert main(["export", "tiny.en", "--out", str(again)]) == 0
    assert "up to date" in capsys.readouterr().out
    monkeypatch.setenv(MODEL_DIR_ENV, str(again))  # as the default model directory: found, not exported again
    assert resolve_model_dir(None) == again
    assert (again / mf.DECODER).stat().st_mtime_ns == modified


def test_default_model_dir_is_the_environment_or_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path / "model"))
    assert default_model_dir() == tmp_path / "model"
    monkeypatch.delenv(MODEL_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_model_dir() == tmp_path / "cache" / "hailo_whisper_ros" / "tiny.en"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for invalid in ("", "relative/cache"):  # the XDG spec: empty or relative means ~/.cache
        monkeypatch.setenv("XDG_CACHE_HOME", invalid)
        assert default_model_dir() == tmp_path / "home" / ".cache" / "hailo_whisper_ros" / "tiny.en"


def _write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """The safetensors format: u64 header size, JSON header with byte offsets, raw little-endian data."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        data = array.tobytes()
        dtype = {np.dtype("<f4"): "F32", np.dtype("<f2"): "F16"}[array.dtype]
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + b"".join(blobs))


class _HfTensors:
    """CTranslate2 tensors gathered under the names of WhisperForConditionalGeneration; encoder tensors as F32,
    decoder tensors as F16, both exact for these fp16-born weights."""

    def __init__(self, ct2_tensors: dict[str, np.ndarray]):
        self.ct2, self.hf = ct2_tensors, {}

    def put(self, name, array):
        self.hf[f"model.{name}"] = np.ascontiguousarray(array, "<f4" if name.startswith("encoder") else "<f2")

    def linear(self, name, prefix):
        self.put(f"{name}.weight", self.ct2[f"{prefix}/weight"])
        self.put(f"{name}.bias", self.ct2[f"{prefix}/bias"])

    def norm(self, name, prefix):
        self.put(f"{name}.weight", self.ct2[f"{prefix}/gamma"])
        self.put(f"{name}.bias", self.ct2[f"{prefix}/beta"])

    def split(self, name, prefix, parts):
        """One fused CTranslate2 projection as Whisper's separate q/k/v ones."""
        weights = np.split(self.ct2[f"{prefix}/weight"], len(parts))
        biases = np.split(self.ct2[f"{prefix}/bias"], len(parts))
        for part, weight, bias in zip(parts, weights, biases):
            self.put(f"{name}.{part}_proj.weight", weight)
            if part != "k":  # Whisper's key projection has no bias
                self.put(f"{name}.{part}_proj.bias", bias)

    def layer(self, name, prefix):
        """What encoder and decoder layers share: self-attention and the feed-forward block."""
        self.norm(f"{name}.self_attn_layer_norm", f"{prefix}/self_attention/layer_norm")
        self.split(f"{name}.self_attn", f"{prefix}/self_attention/linear_0", "qkv")
        self.linear(f"{name}.self_attn.out_proj", f"{prefix}/self_attention/linear_1")
        self.norm(f"{name}.final_layer_norm", f"{prefix}/ffn/layer_norm")
        self.linear(f"{name}.fc1", f"{prefix}/ffn/linear_0")
        self.linear(f"{name}.fc2", f"{prefix}/ffn/linear_1")


def _hf_tensors_from_ct2(weights) -> dict[str, np.ndarray]:
    tensors, info = _HfTensors(weights.tensors), weights.info
    tensors.linear("encoder.conv1", "encoder/conv1")
    tensors.linear("encoder.conv2", "encoder/conv2")
    tensors.put("encoder.embed_positions.weight", tensors.ct2["encoder/position_encodings/encodings"])
    for i in range(info.n_audio_layer):
        tensors.layer(f"encoder.layers.{i}", f"encoder/layer_{i}")
    tensors.norm("encoder.layer_norm", "encoder/layer_norm")
    tensors.put("decoder.embed_tokens.weight", tensors.ct2["decoder/embeddings/weight"])
    tensors.put("decoder.embed_positions.weight", tensors.ct2["decoder/position_encodings/encodings"])
    for i in range(info.n_text_layer):
        tensors.layer(f"decoder.layers.{i}", f"decoder/layer_{i}")
        tensors.norm(f"decoder.layers.{i}.encoder_attn_layer_norm", f"decoder/layer_{i}/attention/layer_norm")
        tensors.linear(f"decoder.layers.{i}.encoder_attn.q_proj", f"decoder/layer_{i}/attention/linear_0")
        tensors.split(f"decoder.layers.{i}.encoder_attn", f"decoder/layer_{i}/attention/linear_1", "kv")
        tensors.linear(f"decoder.layers.{i}.encoder_attn.out_proj", f"decoder/layer_{i}/attention/linear_2")
    tensors.norm("decoder.layer_norm", "decoder/layer_norm")
    hf = tensors.hf
    hf["proj_out.weight"] = hf["model.decoder.embed_tokens.weight"]  # tied; present in some checkpoints
    return hf


def _hf_config(info) -> dict:
    return {
        "model_type": "whisper", "d_model": info.n_audio_state, "num_mel_bins": info.n_mels,
        "encoder_layers": info.n_audio_layer, "encoder_attention_heads": info.n_audio_head,
        "decoder_layers": info.n_text_layer, "decoder_attention_heads": info.n_text_head,
        "vocab_size": info.n_vocab, "max_source_positions": info.n_audio_ctx, "max_target_positions": info.n_text_ctx,
    }


def _hf_generation_config(info) -> dict:
    # As openai/whisper-tiny.en's on the Hub: the alignment heads are there, not in config.json.
    return {"suppress_tokens": list(info.suppress_tokens), "begin_suppress_tokens": list(info.begin_suppress_tokens),
            "alignment_heads": [list(head) for head in info.alignment_heads]}


def _hf_checkpoint_from_ct2(weights, directory: Path) -> None:
    """Write tiny.en as a Hugging Face Whisper checkpoint: its tensors, config and generation config."""
    directory.mkdir()
    _write_safetensors(directory / "model.safetensors", _hf_tensors_from_ct2(weights))
    (directory / "config.json").write_text(json.dumps(_hf_config(weights.info)))
    (directory / "generation_config.json").write_text(json.dumps(_hf_generation_config(weights.info)))


def test_hugging_face_checkpoint_exports_the_same_graphs(exported, tiny_source, tmp_path):
    checkpoint = tmp_path / "whisper-tiny.en-hf"
    _hf_checkpoint_from_ct2(load_weights(tiny_source), checkpoint)
    shutil.copyfile(tiny_source.tokenizer, checkpoint / "tokenizer.json")
    out = tmp_path / "from_hf"
    assert main(["export", str(checkpoint), "--out", str(out)]) == 0
    for name in _model_files(out):
        if name.endswith(mf.MODEL_INFO):  # differs in the model name only
            ours, theirs = (json.loads((d / name).read_text()) for d in (out, exported))
            assert ours.pop("name") == "whisper-tiny.en-hf" and theirs.pop("name") == "tiny.en"
            assert ours == theirs
        else:
            assert _sha256(out / name) == _sha256(exported / name), name


def test_read_safetensors_converts_half_and_bfloat16(tmp_path):
    values = np.array([1.5, -2.25, 3.0e-3], np.float32)
    bfloat16 = (values.view(np.uint32) >> 16).astype("<u2")  # the upper half of each float32
    header = {
        "half": {"dtype": "F16", "shape": [3], "data_offsets": [0, 6]},
        "brain": {"dtype": "BF16", "shape": [3], "data_offsets": [6, 12]},
    }
    encoded = json.dumps(header).encode()
    path = tmp_path / "t.safetensors"
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + values.astype("<f2").tobytes() + bfloat16.tobytes())
    tensors = read_safetensors(path)
    assert tensors["half"].dtype == np.float32 and np.allclose(tensors["half"], values, rtol=1e-3)
    assert np.allclose(tensors["brain"], values, rtol=1e-2)


def test_unknown_source_is_a_one_line_error(tmp_path, capsys):
    assert main(["export", "no-such-model", "--out", str(tmp_path / "x")]) == 2
    assert "unknown source" in capsys.readouterr().err
