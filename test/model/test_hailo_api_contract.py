"""API-contract tests of the Hailo adapter (core/backends/hailort.py) and the HEF backends (core/backends/hailo.py)
against a test double of ``hailo_platform``.

There is no NPU here and HailoRT is not on PyPI, so a fake ``hailo_platform`` module is injected through
sys.modules. It implements only the InferModel calls the adapter makes (HailoRT 4.18+: VDevice.create_params,
ROUND_ROBIN scheduling, create_infer_model, FLOAT32 format types, configure, create_bindings, set_buffer, run) and
checks how they are used: format types set before configure, buffers of the HEF's exact frame shape. Behind the
calls it runs the REAL exported ONNX models, so data that went through the adapter can be compared with the CPU
path: the 10 s encoder, and a fixed-sequence decoder HEF stand-in (decoder_model.onnx re-run over 32 positions,
logits split over four outputs) fed with host-side token embeddings.

The fallback paths are exercised for real: hailo_platform missing, a device that is busy
(HAILO_OUT_OF_PHYSICAL_DEVICES), a HEF for another architecture or one HailoRT calls invalid, a HEF file that is
missing, a directory or empty, and fail_on_fallback.
"""

import logging
import sys
import types

import numpy as np
import pytest

from hailo_whisper_ros.core.backends import hailo, hailort
from hailo_whisper_ros.core.backends.onnx import OnnxEncoder, create_ort_session
from hailo_whisper_ros.core.config import RecognizerConfig
from hailo_whisper_ros.core.decoding import DecodingOptions
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.features import LogMelExtractor
from hailo_whisper_ros.core.model_dir import DECODER, ENCODER_10S, ModelInfo
from hailo_whisper_ros.core.recognizer import Recognizer

SEQUENCE = 32  # Hailo's tiny decoder HEF: a fixed sequence of 32 tokens
EMBEDDING_DIM = 8  # the fake decoder only needs to read token ids back, so small embeddings keep the test light
LOGIT_SPLITS = 4

# ---------------------------------------------------------------------------------------------------------------
# The hailo_platform test double
# ---------------------------------------------------------------------------------------------------------------


class FakeHailoRTException(Exception):
    pass


class FakeStream:
    """InferModel.input(name) / .output(name): a shape (NHWC frame, no batch) and a format type."""

    def __init__(self, name, shape):
        self.name, self.shape, self.format_type = name, shape, "UINT8"  # HailoRT's default is the quantized type

    def set_format_type(self, format_type):
        self.format_type = format_type


class FakeBinding:
    def __init__(self, stream, buffer=None):
        self.stream, self.buffer = stream, buffer

    def set_buffer(self, buffer):
        assert isinstance(buffer, np.ndarray) and buffer.dtype == np.float32, "FLOAT32 format needs float32 buffers"
        assert buffer.shape == tuple(self.stream.shape), f"{self.stream.name}: {buffer.shape} != {self.stream.shape}"
        assert buffer.flags.c_contiguous, "HailoRT reads buffers as contiguous memory"
        self.buffer = buffer

    def get_buffer(self):
        return self.buffer


class FakeBindings:
    def __init__(self, model, output_buffers):
        self._inputs = {name: FakeBinding(stream) for name, stream in model.inputs.items()}
        self._outputs = {name: FakeBinding(stream) for name, stream in model.outputs.items()}
        for name, buffer in (output_buffers or {}).items():
            self._outputs[name].set_buffer(buffer)

    def input(self, name=None):
        return self._inputs[name] if name else next(iter(self._inputs.values()))

    def output(self, name=None):
        return self._outputs[name] if name else next(iter(self._outputs.values()))


class FakeConfiguredInferModel:
    def __init__(self, model):
        self.model = model

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def create_bindings(self, input_buffers=None, output_buffers=None):
        return FakeBindings(self.model, output_buffers)

    def run(self, bindings_list, timeout_ms):
        assert isinstance(timeout_ms, int) and timeout_ms > 0
        self.model.run_timeouts_ms.append(timeout_ms)
        for bindings in bindings_list:
            inputs = {name: b.get_buffer() for name, b in bindings._inputs.items()}
            assert all(buffer is not None for buffer in inputs.values()), "every input needs a buffer"
            for name, result in self.model.network.infer(inputs).items():
                bindings.output(name).get_buffer()[...] = result


class FakeInferModel:
    def __init__(self, network, run_timeouts_ms):
        self.network, self.run_timeouts_ms = network, run_timeouts_ms
        self.inputs = {name: FakeStream(name, shape) for name, shape in network.input_shapes.items()}
        self.outputs = {name: FakeStream(name, shape) for name, shape in network.output_shapes.items()}

    @property
    def input_names(self):
        return list(self.inputs)

    @property
    def output_names(self):
        return list(self.outputs)[::-1]  # not the vocabulary order: the adapter must use the HEF's sorted names

    def input(self, name=None):
        return self.inputs[name] if name else next(iter(self.inputs.values()))

    def output(self, name=None):
        return self.outputs[name] if name else next(iter(self.outputs.values()))

    def configure(self):
        streams = [*self.inputs.values(), *self.outputs.values()]
        assert all(s.format_type == FakeFormatType.FLOAT32 for s in streams), "set FLOAT32 before configure()"
        return FakeConfiguredInferModel(self)


class FakeFormatType:
    FLOAT32 = "FLOAT32"
    UINT8 = "UINT8"


class FakeSchedulingAlgorithm:
    NONE = "NONE"
    ROUND_ROBIN = "ROUND_ROBIN"


class FakeVDeviceParams:
    scheduling_algorithm = FakeSchedulingAlgorithm.NONE
    multi_process_service = False
    group_id = None


def make_hailo_platform(networks, vdevice_error=None, configure_error=None):
    """A fake hailo_platform serving the given {hef path: network}; the errors are raised where HailoRT raises them."""
    module = types.ModuleType("hailo_platform")
    module.HailoRTException = FakeHailoRTException
    module.FormatType = FakeFormatType
    module.HailoSchedulingAlgorithm = FakeSchedulingAlgorithm
    module.vdevices = []
    module.run_timeouts_ms = []  # the timeout of every run() call, in order

    class VDevice:
        def __init__(self, params):
            if vdevice_error:
                raise FakeHailoRTException(vdevice_error)
            self.params, self.released, self.models = params, False, []
            module.vdevices.append(self)

        @staticmethod
        def create_params():
            return FakeVDeviceParams()

        def create_infer_model(self, hef_path):
            assert isinstance(hef_path, str)
            if configure_error:
                raise FakeHailoRTException(configure_error)
            self.models.append(hef_path)
            return FakeInferModel(networks[hef_path], module.run_timeouts_ms)

        def release(self):
            self.released = True

    class HEF:
        def __init__(self, hef_path):
            self.network = networks[hef_path]

        def get_sorted_output_names(self):
            return list(self.network.output_shapes)

    module.VDevice, module.HEF = VDevice, HEF
    return module


class EncoderNetwork:
    """Hailo's 10 s encoder HEF: NHWC input [1, 1000, 80], output [1, 500, 384]; here the real encoder_10s.onnx."""

    def __init__(self, model_dir):
        self.session = create_ort_session(model_dir / ENCODER_10S, 2)
        self.input_shapes = {"tiny_whisper_encoder_10s/input_layer1": (1, 1000, 80)}
        self.output_shapes = {"tiny_whisper_encoder_10s/normalization6": (1, 500, 384)}

    def infer(self, inputs):
        (frames_by_mels,) = inputs.values()
        mel = np.ascontiguousarray(frames_by_mels.reshape(1000, 80).T)[np.newaxis]
        (states,) = self.session.run(None, {"input_features": mel})
        return {name: states.reshape(shape) for name, shape in self.output_shapes.items()}


class SequenceDecoderNetwork:
    """Hailo's fixed-sequence decoder HEF: encoder states [1, 500, 384] and host-computed token embeddings
    [1, 32, d] in, logits split over four outputs [1, 32, V/4] out. The token ids are read back from the
    embeddings (column 0 of the fake embedding matrix is the id) and decoder_model.onnx is run over all 32."""

    def __init__(self, model_dir, info, positional):
        self.session = create_ort_session(model_dir / DECODER, 2)
        self.positional = positional
        self.input_shapes = {
            "tiny_whisper_decoder/input_layer1": (1, 500, info.n_text_state),
            "tiny_whisper_decoder/input_layer2": (1, SEQUENCE, EMBEDDING_DIM),
        }
        part = info.n_vocab // LOGIT_SPLITS
        self.output_shapes = {f"tiny_whisper_decoder/conv{k}": (1, SEQUENCE, part) for k in range(LOGIT_SPLITS)}

    def infer(self, inputs):
        states = inputs["tiny_whisper_decoder/input_layer1"]
        embedded = inputs["tiny_whisper_decoder/input_layer2"].reshape(SEQUENCE, EMBEDDING_DIM)
        ids = np.rint(embedded[:, 0] - self.positional[:, 0]).astype(np.int64)
        feeds = {"input_ids": ids[np.newaxis], "encoder_hidden_states": states}
        (logits,) = self.session.run(["logits"], {**feeds, "encoder_attention_bias": np.zeros(500, np.float32)})
        parts = np.split(logits, LOGIT_SPLITS, axis=2)
        return dict(zip(self.output_shapes, parts))


# ---------------------------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def info(model_dir):
    return ModelInfo.load(model_dir / "hailo_whisper_model.json")


@pytest.fixture(scope="module")
def hailo_assets(model_dir, info, tmp_path_factory):
    """HEF stand-in files, the decoder's embedding .npy files and the networks behind them."""
    folder = tmp_path_factory.mktemp("hef")
    rng = np.random.default_rng(0)
    token_embedding = rng.standard_normal((info.n_vocab, EMBEDDING_DIM)).astype(np.float32)
    token_embedding[:, 0] = np.arange(info.n_vocab)
    positional = rng.standard_normal((SEQUENCE, EMBEDDING_DIM)).astype(np.float32)
    np.save(folder / "token_embedding_weight_tiny.npy", token_embedding)
    np.save(folder / "onnx_add_input_tiny.npy", positional)
    for name in ("encoder.hef", "decoder.hef"):
        (folder / name).write_bytes(b"HEF stand-in")
    networks = {
        str(folder / "encoder.hef"): EncoderNetwork(model_dir),
        str(folder / "decoder.hef"): SequenceDecoderNetwork(model_dir, info, positional),
    }
    return types.SimpleNamespace(folder=folder, networks=networks)


@pytest.fixture
def install_hailo_platform(monkeypatch):
    """Puts a module (or None: not installed) in sys.modules['hailo_platform'] for one test."""

    def install(module):
        monkeypatch.setitem(sys.modules, "hailo_platform", module)
        return module

    yield install
    hailort.release_shared_vdevices()


@pytest.fixture(scope="module")
def jfk_mel(sample_audio, info):
    return LogMelExtractor(info.n_mels).log_mel(sample_audio("jfk/jfk.flac")[: 9 * 16000], n_frames=1000)


def hef_config(model_dir, folder, **overrides):
    settings = dict(encoder="hef", encoder_file=folder / "encoder.hef", warmup=False)
    settings.update(overrides)
    return RecognizerConfig(model_dir, **settings)


def sequence_decoder_config(model_dir, folder, **overrides):
    """Encoder and decoder HEFs, with the decoder's host-side assets (token and positional embeddings)."""
    return hef_config(
        model_dir,
        folder,
        decoder_hef_file=folder / "decoder.hef",
        decoder_hef_token_embedding=folder / "token_embedding_weight_tiny.npy",
        decoder_hef_positional_embedding=folder / "onnx_add_input_tiny.npy",
        **overrides,
    )


# ---------------------------------------------------------------------------------------------------------------
# Data flow through the adapter
# ---------------------------------------------------------------------------------------------------------------


def test_encoder_output_through_the_adapter_equals_the_onnx_encoder(
    model_dir, info, hailo_assets, install_hailo_platform, jfk_mel
):
    platform = install_hailo_platform(make_hailo_platform(hailo_assets.networks))
    encoder = hailo.HailoEncoder(hailo_assets.folder / "encoder.hef", info)
    assert (encoder.window_frames, encoder.output_positions) == (1000, 500)
    through_adapter = encoder.encode(jfk_mel)
    on_cpu = OnnxEncoder(model_dir / ENCODER_10S, threads=2).encode(jfk_mel)
    assert through_adapter.shape == on_cpu.shape == (1, 500, info.n_audio_state)
    np.testing.assert_allclose(through_adapter, on_cpu, rtol=0, atol=1e-5)
    (vdevice,) = platform.vdevices
    assert vdevice.params.scheduling_algorithm == FakeSchedulingAlgorithm.ROUND_ROBIN
    assert not vdevice.params.multi_process_service


def test_recognizer_on_the_hef_encoder_matches_the_cpu_10s_path(
    model_dir, hailo_assets, install_hailo_platform, sample_audio
):
    install_hailo_platform(make_hailo_platform(hailo_assets.networks))
    on_npu = Recognizer(hef_config(model_dir, hailo_assets.folder))
    audio = sample_audio("jfk/jfk.flac")
    result = on_npu.transcribe(audio)
    assert (result.encoder_backend, result.fallback_reason) == ("hailo", None)
    assert result.text == Recognizer(RecognizerConfig(model_dir, encoder="10s")).transcribe(audio).text
    on_npu.close()


def test_sequence_decoder_hef_decodes_like_the_onnx_decoder(
    model_dir, info, hailo_assets, install_hailo_platform, sample_audio
):
    platform = install_hailo_platform(make_hailo_platform(hailo_assets.networks))
    folder = hailo_assets.folder
    shared_device = {"hailo_multi_process_service": True, "hailo_group_id": "SHARED", "hailo_timeout_ms": 2500}
    all_on_npu = Recognizer(sequence_decoder_config(model_dir, folder, **shared_device))
    assert (all_on_npu.decoder.max_positions, all_on_npu.decoder.fixed_encoder_positions) == (SEQUENCE, 500)
    cpu_decoder = Recognizer(hef_config(model_dir, folder, decoder_dir=model_dir))  # FP32 ONNX decoders
    audio = sample_audio("ljspeech_coqui/LJ001-0002.flac")  # "in being comparatively modern."
    # The HEF takes the 500 positions of the 10 s encoder as they are, so the CPU decoder is compared unpadded.
    on_npu = all_on_npu.transcribe(audio)
    assert platform.run_timeouts_ms and set(platform.run_timeouts_ms) == {2500}  # hailo_timeout_ms, on every call
    on_cpu = cpu_decoder.transcribe(audio, DecodingOptions(pad_encoder_output_to=500))
    assert (on_npu.encoder_backend, on_npu.decoder_backend) == ("hailo", "hailo")
    assert on_npu.tokens == on_cpu.tokens and on_npu.text == "in being comparatively modern."
    assert on_npu.segments[0].avg_logprob == pytest.approx(on_cpu.segments[0].avg_logprob, abs=1e-3)
    # One VDevice, through the multi-process service, holds both HEFs.
    shared = [v for v in platform.vdevices if v.params.multi_process_service]
    assert len(shared) == 1 and shared[0].params.group_id == "SHARED" and len(shared[0].models) == 2
    all_on_npu.close()
    assert shared[0].released


def test_sequence_decoder_stops_at_its_fixed_length(model_dir, hailo_assets, install_hailo_platform, sample_audio):
    install_hailo_platform(make_hailo_platform(hailo_assets.networks))
    config = sequence_decoder_config(model_dir, hailo_assets.folder)
    result = Recognizer(config).transcribe(sample_audio("lhotse_fixtures/2412-153948-0000.flac")[: 9 * 16000])
    assert len(result.tokens) == SEQUENCE - 2  # the forced prefix takes two of the 32 positions


# ---------------------------------------------------------------------------------------------------------------
# Fallback to the CPU
# ---------------------------------------------------------------------------------------------------------------

BUSY = "libhailort failed with error: 74 (HAILO_OUT_OF_PHYSICAL_DEVICES)"
WRONG_ARCHITECTURE = "HEF file is not compatible with device (HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE)"
# pyhailort's HailoRTInvalidHEFException text, for a file it cannot parse and for some architecture mismatches.
INVALID_HEF = "HailoRTInvalidHEFException: Invalid HEF. See hailort.log for more information"


@pytest.mark.parametrize(
    "platform_factory, reason_part",
    [
        (lambda networks: None, "hailo_platform"),  # not installed: the import raises ImportError
        (lambda networks: make_hailo_platform(networks, vdevice_error=BUSY), "HAILO_OUT_OF_PHYSICAL_DEVICES"),
        (lambda networks: make_hailo_platform(networks, configure_error=WRONG_ARCHITECTURE), "another architecture"),
        (lambda networks: make_hailo_platform(networks, configure_error=INVALID_HEF), "not a HEF, damaged"),
    ],
    ids=["hailo_platform missing", "no free device", "HEF for another architecture", "invalid HEF"],
)
def test_unusable_npu_falls_back_to_the_cpu_encoder_with_the_reason(
    model_dir, hailo_assets, install_hailo_platform, caplog, sample_audio, platform_factory, reason_part
):
    install_hailo_platform(platform_factory(hailo_assets.networks))
    with caplog.at_level(logging.INFO, logger="hailo_whisper_ros.core.backends.select"):
        fallen_back = Recognizer(hef_config(model_dir, hailo_assets.folder))
        result = fallen_back.transcribe(sample_audio("ljspeech_coqui/LJ001-0002.flac"))
        fallen_back.transcribe(sample_audio("ljspeech_coqui/LJ001-0002.flac"))
    assert result.encoder_backend == "onnx" and reason_part in result.fallback_reason
    assert fallen_back.encoder.name == f"onnx:{ENCODER_10S}"
    assert result.text == "in being comparatively modern."
    (logged,) = caplog.records  # once, not per utterance
    assert reason_part in logged.getMessage()


def test_decoder_hef_falls_back_to_the_onnx_decoders(model_dir, hailo_assets, install_hailo_platform):
    install_hailo_platform(make_hailo_platform(hailo_assets.networks, vdevice_error=BUSY))
    folder = hailo_assets.folder
    config = hef_config(
        model_dir, folder, decoder_hef_file=folder / "decoder.hef",
        decoder_hef_token_embedding=folder / "token_embedding_weight_tiny.npy",
    )
    fallen_back = Recognizer(config)
    assert (fallen_back.encoder_backend, fallen_back.decoder_backend) == ("onnx", "onnx")
    assert fallen_back.fallback_reason.count("HAILO_OUT_OF_PHYSICAL_DEVICES") == 2  # encoder; decoder


def test_fail_on_fallback_raises_instead(model_dir, hailo_assets, install_hailo_platform):
    install_hailo_platform(make_hailo_platform(hailo_assets.networks, vdevice_error=BUSY))
    with pytest.raises(HailoWhisperError, match="encoder.hef.*HAILO_OUT_OF_PHYSICAL_DEVICES"):
        Recognizer(hef_config(model_dir, hailo_assets.folder, fail_on_fallback=True))


def test_hef_encoder_without_a_file_is_a_user_error(model_dir, hailo_assets, install_hailo_platform):
    install_hailo_platform(None)
    with pytest.raises(HailoWhisperError, match="encoder_file"):
        Recognizer(hef_config(model_dir, hailo_assets.folder, encoder_file=None))


def unreadable_hef(tmp_path, kind: str):
    """A HEF path that cannot be read, of one kind."""
    path = tmp_path / "encoder.hef"
    if kind == "empty":
        path.touch()
    elif kind == "a directory":
        path.mkdir()
    return path


@pytest.mark.parametrize("kind, reason_part", [
    ("missing", "No such file or directory"), ("a directory", "Is a directory"), ("empty", "is empty"),
])
def test_an_unreadable_hef_falls_back_to_the_cpu_encoder_with_the_reason(
    model_dir, hailo_assets, install_hailo_platform, sample_audio, tmp_path, caplog, kind, reason_part
):
    # A working NPU and HailoRT: the file alone is the reason, told before HailoRT is asked.
    install_hailo_platform(make_hailo_platform(hailo_assets.networks))
    path = unreadable_hef(tmp_path, kind)
    with caplog.at_level(logging.INFO, logger="hailo_whisper_ros.core.backends.select"):
        fallen_back = Recognizer(hef_config(model_dir, hailo_assets.folder, encoder_file=path))
    result = fallen_back.transcribe(sample_audio("ljspeech_coqui/LJ001-0002.flac"))
    assert result.encoder_backend == "onnx" and fallen_back.encoder.name == f"onnx:{ENCODER_10S}"
    assert result.text == "in being comparatively modern."
    (logged,) = caplog.records
    for told in (fallen_back.fallback_reason, logged.getMessage()):
        assert str(path) in told and reason_part in told, told


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_fail_on_fallback_makes_an_unreadable_hef_an_error_naming_it(
    model_dir, hailo_assets, install_hailo_platform, tmp_path, kind
):
    install_hailo_platform(make_hailo_platform(hailo_assets.networks))
    path = unreadable_hef(tmp_path, kind)
    with pytest.raises(HailoWhisperError, match=f"{path}.*fail_on_fallback"):
        Recognizer(hef_config(model_dir, hailo_assets.folder, encoder_file=path, fail_on_fallback=True))
