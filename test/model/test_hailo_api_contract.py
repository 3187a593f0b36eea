"""API-contract tests of the Hailo adapter (core/backends/hailort.py) and the HEF backends (core/backends/hailo.py)
against test/fakes/fake_hailo_platform.py, a double of ``hailo_platform`` built from HailoRT's pyhailort.py
(v4.18-v4.23) and its defaults, injected through sys.modules (no NPU here, HailoRT is not on PyPI).

Behind the fake's calls run the REAL exported ONNX models, so data that went through the adapter can be compared
with the CPU path: the 10 s encoder (or the dynamic one on a 5 s window), and a fixed-sequence decoder HEF stand-in
(decoder_model.onnx re-run over 32 positions, the positional embedding inside the "HEF" as in Hailo's published
decoders, logits split over four "conv" outputs beside one output that is not logits) fed with host-side token
embeddings. The HEF files are HEF-shaped: HailoRT's header and the protobuf header naming architecture and compiler.
"""

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from hailo_whisper_ros.core.backends import hailo, hailort
from hailo_whisper_ros.core.backends.onnx import OnnxEncoder, create_ort_session
from hailo_whisper_ros.core.config import RecognizerConfig
from hailo_whisper_ros.core.decoding import STOP_EOT, DecodingOptions
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.features import LogMelExtractor
from hailo_whisper_ros.core.model_dir import DECODER, ENCODER_10S, ENCODER_DYNAMIC, ModelInfo
from hailo_whisper_ros.core.recognizer import Recognizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
import fake_hailo_platform as fake  # noqa: E402

SEQUENCE = 32  # Hailo's decoder HEFs: a fixed sequence of 32 tokens
EMBEDDING_DIM = 8  # the fake decoder only needs to read token ids back, so small embeddings keep the test light
LOGIT_SPLITS = 4
LJ = "ljspeech_coqui/LJ001-0002.flac"  # "in being comparatively modern."

# ---------------------------------------------------------------------------------------------------------------
# The networks behind the fake HEFs
# ---------------------------------------------------------------------------------------------------------------


def encoder_network(model_dir, frames=1000, architecture="HAILO8L", duration_ms=1.0):
    """An encoder HEF as Hailo compiles it: NHWC input [1, frames, 80], output [1, frames / 2, 384]."""
    session = create_ort_session(model_dir / (ENCODER_10S if frames == 1000 else ENCODER_DYNAMIC), 2)
    name = f"whisper_encoder_{frames // 100}s"
    inputs = {f"{name}/input_layer1": (1, frames, 80)}
    outputs = {f"{name}/normalization6": (1, frames // 2, 384)}

    def infer(feeds):
        (frames_by_mels,) = feeds.values()
        mel = np.ascontiguousarray(frames_by_mels.reshape(frames, 80).T)[np.newaxis]
        (states,) = session.run(None, {"input_features": mel})
        return {name: states for name in outputs}

    network = fake.Network(inputs, outputs, infer, architecture, duration_ms=duration_ms)
    network.mels_seen = []  # every window it was given, for the gain test
    original = network.infer
    network.infer = lambda feeds: (network.mels_seen.append(next(iter(feeds.values())).copy()), original(feeds))[1]
    return network


def decoder_network(model_dir, info, positional, vocabulary=None):
    """Hailo's fixed-sequence decoder HEF since Dec 2025: encoder states [1, 500, 384] and the host's token
    embeddings [1, 32, d] in (the HEF adds the positional embedding itself), logits over four "conv" outputs
    [1, 32, V/4] and one more output that is not logits. The token ids are read back from the embeddings (column 0
    of the fake embedding matrix is the id) and decoder_model.onnx is run over all 32."""
    session = create_ort_session(model_dir / DECODER, 2)
    vocabulary = vocabulary or info.n_vocab
    inputs = {"whisper_decoder/input_layer1": (1, 500, info.n_text_state),
              "whisper_decoder/input_layer2": (1, SEQUENCE, EMBEDDING_DIM)}
    logits = [f"whisper_decoder/conv{k}" for k in range(LOGIT_SPLITS)]
    outputs = {"whisper_decoder/normalization9": (1, SEQUENCE, EMBEDDING_DIM),
               **{name: (1, SEQUENCE, vocabulary // LOGIT_SPLITS) for name in logits}}

    def infer(feeds):
        embedded = feeds["whisper_decoder/input_layer2"].reshape(SEQUENCE, EMBEDDING_DIM) + positional
        ids = np.rint(embedded[:, 0] - positional[:, 0]).astype(np.int64)
        states = feeds["whisper_decoder/input_layer1"]
        (out,) = session.run(["logits"], {"input_ids": ids[np.newaxis], "encoder_hidden_states": states,
                                          "encoder_attention_bias": np.zeros(500, np.float32)})
        out = out[..., :vocabulary] if vocabulary <= out.shape[-1] else np.pad(out, ((0, 0), (0, 0), (0, 1)))
        parts = dict(zip(logits, np.split(out, LOGIT_SPLITS, axis=2)))
        return {"whisper_decoder/normalization9": embedded[np.newaxis].astype(np.float32), **parts}

    # HailoRT's sorted order is the vocabulary's; the InferModel lists the outputs in another one.
    return fake.Network(inputs, dict(reversed(list(outputs.items()))), infer, sorted_outputs=list(outputs))


# ---------------------------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def info(model_dir):
    return ModelInfo.load(model_dir / "hailo_whisper_model.json")


@pytest.fixture(scope="module")
def assets(model_dir, info, tmp_path_factory):
    """HEF-shaped files, the decoder's embedding .npy files and the networks behind them."""
    folder = tmp_path_factory.mktemp("hef")
    rng = np.random.default_rng(0)
    token_embedding = rng.standard_normal((info.n_vocab, EMBEDDING_DIM)).astype(np.float32)
    token_embedding[:, 0] = np.arange(info.n_vocab)
    positional = rng.standard_normal((SEQUENCE, EMBEDDING_DIM)).astype(np.float32)
    np.save(folder / "token_embedding_weight_tiny.npy", token_embedding)
    np.save(folder / "onnx_add_input_tiny.npy", positional)
    networks = {
        "encoder.hef": encoder_network(model_dir),
        "encoder_5s.hef": encoder_network(model_dir, frames=500),
        "encoder_h8.hef": encoder_network(model_dir, architecture="HAILO8"),
        "slow_encoder.hef": encoder_network(model_dir, duration_ms=5000.0),
        "tiny-whisper-encoder-10s_15dB_h8l.hef": encoder_network(model_dir),
        "decoder.hef": decoder_network(model_dir, info, positional),
        "multilingual_decoder.hef": decoder_network(model_dir, info, positional, vocabulary=info.n_vocab + 4),
    }
    for name, network in networks.items():
        (folder / name).write_bytes(fake.hef_bytes(network.architecture))
    return folder, {str(folder / name): network for name, network in networks.items()}


@pytest.fixture
def install(monkeypatch, assets):
    """install(**system fields) puts a fake hailo_platform over a fresh System in sys.modules for one test;
    install(None): hailo_platform not installed."""

    def install_system(missing=False, **fields):
        if missing:
            monkeypatch.setitem(sys.modules, "hailo_platform", None)
            return None
        system = fake.System(networks=assets[1], **fields)
        monkeypatch.setitem(sys.modules, "hailo_platform", fake.make_module(system))
        return system

    monkeypatch.setattr(hailort, "_process_vdevice", None)  # a leak fails the test that leaked, not the next ones
    yield install_system
    assert hailort._process_vdevice is None, "the test left the process's VDevice open"


@pytest.fixture(scope="module")
def jfk_mel(sample_audio, info):
    return LogMelExtractor(info.n_mels).log_mel(sample_audio("jfk/jfk.flac")[: 9 * 16000], n_frames=1000)


def hef_config(model_dir, folder, encoder="encoder.hef", **overrides):
    settings = dict(encoder="hef", encoder_file=folder / encoder, warmup=False)
    settings.update(overrides)
    return RecognizerConfig(model_dir, **settings)


def sequence_decoder_config(model_dir, folder, decoder="decoder.hef", **overrides):
    return hef_config(model_dir, folder, decoder_hef_file=folder / decoder,
                      decoder_hef_token_embedding=folder / "token_embedding_weight_tiny.npy", **overrides)


# ---------------------------------------------------------------------------------------------------------------
# Data flow through the adapter
# ---------------------------------------------------------------------------------------------------------------


def test_encoder_output_through_the_adapter_equals_the_onnx_encoder(model_dir, info, assets, install, jfk_mel):
    system = install()
    encoder = hailo.HailoEncoder(assets[0] / "encoder.hef", info)
    assert (encoder.window_frames, encoder.output_positions) == (1000, 500)
    through_adapter = encoder.encode(jfk_mel)
    on_cpu = OnnxEncoder(model_dir / ENCODER_10S, threads=2).encode(jfk_mel)
    np.testing.assert_allclose(through_adapter, on_cpu, rtol=0, atol=1e-5)
    # Item 5: the service in group SHARED by default (HailoRT's own default is UNIQUE, without the service).
    (vdevice,) = system.vdevices
    assert (vdevice.params.multi_process_service, vdevice.params.group_id) == (True, "SHARED")
    encoder.close()
    assert vdevice.released and system.shutdowns == 1


def test_recognizer_on_the_hef_encoder_matches_the_cpu_10s_path(model_dir, assets, install, sample_audio):
    install()
    on_npu = Recognizer(hef_config(model_dir, assets[0]))
    audio = sample_audio("jfk/jfk.flac")
    result = on_npu.transcribe(audio)
    assert (result.encoder_backend, result.fallback_reason) == ("hailo", None)
    assert result.text == Recognizer(RecognizerConfig(model_dir, encoder="10s")).transcribe(audio).text
    on_npu.close()


def test_sequence_decoder_hef_decodes_like_the_onnx_decoder(model_dir, assets, install, sample_audio):
    """Items 3 and 4: no positional embedding added on the host (the HEF has it), only the "conv" outputs are
    logits, in HailoRT's sorted order."""
    system = install()
    all_on_npu = Recognizer(sequence_decoder_config(model_dir, assets[0], hailo_timeout_ms=2500))
    assert (all_on_npu.decoder.max_positions, all_on_npu.decoder.fixed_encoder_positions) == (SEQUENCE, 500)
    cpu_decoder = Recognizer(hef_config(model_dir, assets[0], decoder_dir=model_dir))  # FP32 ONNX decoders
    on_npu = all_on_npu.transcribe(sample_audio(LJ))
    assert set(system.run_timeouts_ms) == {2500}  # hailo_timeout_ms, on every call
    on_cpu = cpu_decoder.transcribe(sample_audio(LJ), DecodingOptions(pad_encoder_output_to=500))
    assert (on_npu.encoder_backend, on_npu.decoder_backend) == ("hailo", "hailo")
    assert on_npu.tokens == on_cpu.tokens and on_npu.text == "in being comparatively modern."
    assert on_npu.segments[0].avg_logprob == pytest.approx(on_cpu.segments[0].avg_logprob, abs=1e-3)
    (vdevice,) = system.vdevices  # one VDevice holds every HEF of the process
    assert sorted(Path(m).name for m in vdevice.models) == ["decoder.hef", "encoder.hef", "encoder.hef"]
    all_on_npu.close()
    cpu_decoder.close()
    assert vdevice.released


def test_a_decoder_hef_of_another_vocabulary_falls_back_to_the_onnx_decoders(model_dir, assets, install):
    """Item 4: a HEF that does not fit is a fallback with its reason, not an error."""
    install()
    recognizer = Recognizer(sequence_decoder_config(model_dir, assets[0], decoder="multilingual_decoder.hef"))
    assert (recognizer.encoder_backend, recognizer.decoder_backend) == ("hailo", "onnx")
    assert "51868 logits" in recognizer.fallback_reason and "51864 tokens" in recognizer.fallback_reason
    recognizer.close()


def test_a_long_part_is_cut_to_fit_the_fixed_decoder(model_dir, assets, install, sample_audio):
    """Item 8: 9 s of speech need more than 32 positions: the parts are cut so each ends at EOT with its words."""
    install()
    recognizer = Recognizer(sequence_decoder_config(model_dir, assets[0]))
    result = recognizer.transcribe(sample_audio("lhotse_fixtures/2412-153948-0000.flac")[: 9 * 16000])
    assert len(result.segments) >= 2 and all(s.stop == STOP_EOT for s in result.segments)
    assert all(s.end_s - s.start_s <= (SEQUENCE - 2) / 4.1 + 1e-6 for s in result.segments)
    assert len(result.text.split()) >= 15
    recognizer.close()


def test_the_window_is_the_hefs_own(model_dir, assets, install, sample_audio):
    """Item 2: a 5 s encoder HEF (Hailo's base) gets parts that fit 5 s, whatever the CPU encoders take."""
    install()
    recognizer = Recognizer(hef_config(model_dir, assets[0], encoder="encoder_5s.hef"))
    assert (recognizer.encoder.window_frames, recognizer.encoder.output_positions) == (500, 250)
    result = recognizer.transcribe(sample_audio("jfk/jfk.flac"))
    assert len(result.segments) >= 3 and all(s.frames == 500 for s in result.segments)
    assert all(s.end_s - s.window_start_s <= 4.0 + 1e-6 for s in result.segments)
    assert "ask what you can do for your country" in result.text.lower()
    recognizer.close()


def test_quiet_audio_gets_hailos_calibration_gain(model_dir, assets, install, sample_audio, info):
    """Item 9: peak below 0.1 -> +20 dB before the features, as Hailo's preprocessing does for its HEFs."""
    install()
    recognizer = Recognizer(hef_config(model_dir, assets[0]))
    quiet = sample_audio(LJ) * (0.05 / np.max(sample_audio(LJ)))
    recognizer.transcribe(quiet)
    network = assets[1][str(assets[0] / "encoder.hef")]
    expected = LogMelExtractor(info.n_mels).log_mel(quiet * 10.0, n_frames=1000)
    np.testing.assert_allclose(network.mels_seen[-1].reshape(1000, 80).T, expected, atol=1e-4)
    recognizer.close()


# ---------------------------------------------------------------------------------------------------------------
# One VDevice per process, shutdown, timeouts
# ---------------------------------------------------------------------------------------------------------------


def test_two_recognizers_share_the_vdevice_and_closing_one_leaves_the_other_running(
    model_dir, assets, install, sample_audio
):
    """Item 6: reference-counted; close() shuts the model down and frees the VDevice with the last user."""
    system = install()
    first, second = (Recognizer(hef_config(model_dir, assets[0])) for _ in range(2))
    assert len(system.vdevices) == 1
    first.close()
    assert system.shutdowns == 1 and not system.vdevices[0].released
    assert second.transcribe(sample_audio(LJ)).text == "in being comparatively modern."
    second.close()
    assert system.shutdowns == 2 and system.vdevices[0].released


def test_a_second_recognizer_with_other_device_options_says_why_it_is_on_the_cpu(model_dir, assets, install):
    install()
    first = Recognizer(hef_config(model_dir, assets[0]))
    other = Recognizer(hef_config(model_dir, assets[0], hailo_group_id="VISION"))
    assert other.encoder_backend == "onnx"
    assert "already holds the NPU's one VDevice" in other.fallback_reason and "'VISION'" in other.fallback_reason
    first.close()


def test_after_a_timeout_the_late_job_cannot_overwrite_the_next_result(model_dir, info, assets, install, jfk_mel):
    """Item 6: the timed-out job is still in flight on its buffers; the next call uses new ones."""
    system = install()
    encoder = hailo.HailoEncoder(assets[0] / "slow_encoder.hef", info, hailort.HailoDeviceOptions(timeout_ms=1000))
    with pytest.raises(HailoWhisperError, match="longer than model.hailo_timeout_ms"):
        encoder.encode(np.zeros_like(jfk_mel))
    assert system.in_flight
    system.networks[str(assets[0] / "slow_encoder.hef")].duration_ms = 1.0
    after = encoder.encode(jfk_mel)
    np.testing.assert_allclose(after, OnnxEncoder(model_dir / ENCODER_10S, threads=2).encode(jfk_mel), atol=1e-5)
    system.networks[str(assets[0] / "slow_encoder.hef")].duration_ms = 5000.0
    encoder.close()


# ---------------------------------------------------------------------------------------------------------------
# Fallback to the CPU, each reason told
# ---------------------------------------------------------------------------------------------------------------


def held_by_another_process(**fields):
    return dict(holder=("unique", -1), holder_users=1, **fields)


@pytest.mark.parametrize("system_fields, encoder, reason_parts", [
    (dict(missing=True), "encoder.hef", ["hailo_platform", "--system-site-packages"]),
    (dict(service_running=False), "encoder.hef", ["HAILO_RPC_FAILED", "hailort.service"]),
    (held_by_another_process(), "encoder.hef", ["error 74", "another process holds the NPU"]),
    (dict(version="4.23.0"), "encoder_h8.hef", ["compiled for HAILO8, this device is a HAILO8L", "_h8l"]),
    (dict(version="4.20.0"), "encoder_h8.hef", ["compiled for HAILO8, this device is a HAILO8L", "InvalidHEF"]),
    (dict(), "tiny-whisper-encoder-10s_15dB_h8l.hef",
     ["Hailo's tiny encoder (multilingual)", "config/hailo_tiny.yaml"]),
], ids=["hailo_platform missing", "service not running", "device held directly elsewhere", "Hailo-8 HEF 4.23",
        "Hailo-8 HEF 4.20", "multilingual tiny HEF with tiny.en"])
def test_unusable_npu_falls_back_to_the_cpu_encoder_with_the_reason(
    model_dir, assets, install, caplog, sample_audio, system_fields, encoder, reason_parts
):
    install(**system_fields)
    with caplog.at_level(logging.INFO, logger="hailo_whisper_ros.core.backends.select"):
        fallen_back = Recognizer(hef_config(model_dir, assets[0], encoder=encoder))
        result = fallen_back.transcribe(sample_audio(LJ))
        fallen_back.transcribe(sample_audio(LJ))
    assert result.encoder_backend == "onnx" and fallen_back.encoder.name == f"onnx:{ENCODER_10S}"
    assert result.text == "in being comparatively modern."
    (logged,) = caplog.records  # once, not per utterance
    for part in reason_parts:
        assert part in result.fallback_reason and part in logged.getMessage(), result.fallback_reason


def test_without_the_service_the_process_holds_the_npu_alone(model_dir, assets, install):
    system = install()
    recognizer = Recognizer(hef_config(model_dir, assets[0], hailo_multi_process_service=False, hailo_group_id=""))
    assert recognizer.encoder_backend == "hailo" and system.holder[0] == "unique"
    assert system.vdevices[0].params.group_id == "UNIQUE"  # HailoRT's default, untouched
    recognizer.close()


def test_fail_on_fallback_raises_instead(model_dir, assets, install):
    install(**held_by_another_process())
    with pytest.raises(HailoWhisperError, match="encoder.hef.*HAILO_OUT_OF_PHYSICAL_DEVICES"):
        Recognizer(hef_config(model_dir, assets[0], fail_on_fallback=True))


def test_hef_encoder_without_a_file_is_a_user_error(model_dir, assets, install):
    install(missing=True)
    with pytest.raises(HailoWhisperError, match="encoder_file"):
        Recognizer(hef_config(model_dir, assets[0], encoder_file=None))


def unreadable_hef(tmp_path, kind: str):
    path = tmp_path / "encoder.hef"
    if kind == "empty":
        path.touch()
    elif kind == "a directory":
        path.mkdir()
    elif kind == "not a HEF":
        path.write_bytes(b"not a HEF at all")
    return path


@pytest.mark.parametrize("kind, reason_part", [
    ("missing", "No such file or directory"), ("a directory", "Is a directory"), ("empty", "is empty"),
    ("not a HEF", "is not a HEF"),
])
def test_an_unreadable_hef_falls_back_to_the_cpu_encoder_with_the_reason(
    model_dir, assets, install, tmp_path, kind, reason_part
):
    install()
    path = unreadable_hef(tmp_path, kind)
    fallen_back = Recognizer(hef_config(model_dir, assets[0], encoder_file=path))
    assert fallen_back.encoder_backend == "onnx"
    assert str(path) in fallen_back.fallback_reason and reason_part in fallen_back.fallback_reason


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_fail_on_fallback_makes_an_unreadable_hef_an_error_naming_it(model_dir, assets, install, tmp_path, kind):
    install()
    path = unreadable_hef(tmp_path, kind)
    with pytest.raises(HailoWhisperError, match=f"{path}.*fail_on_fallback"):
        Recognizer(hef_config(model_dir, assets[0], encoder_file=path, fail_on_fallback=True))
