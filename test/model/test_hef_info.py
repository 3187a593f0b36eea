"""`hailo-whisper hef-info` on HEF-shaped files (HailoRT's header and protobuf header), with the streams served by
the HailoRT double of test/fakes, against the exported tiny.en model directory."""

import sys
from pathlib import Path

import pytest

from hailo_whisper_ros.cli.main import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
import fake_hailo_platform as fake  # noqa: E402


def shapes_only(inputs, outputs, architecture="HAILO8L"):
    return fake.Network(inputs, outputs, infer=None, architecture=architecture)


@pytest.fixture
def hefs(tmp_path, monkeypatch):
    """Hailo's published base encoder (5 s, for the Hailo-8 and the 8L) and tiny decoder (8L) as HEF-shaped files,
    on a Hailo-8L."""
    encoder_5s = dict(inputs={"base_whisper_encoder_5s/input_layer1": (1, 500, 80)},
                      outputs={"base_whisper_encoder_5s/normalization6": (1, 250, 512)})
    networks = {
        "base-whisper-encoder-5s.hef": shapes_only(**encoder_5s, architecture="HAILO8"),
        "base-whisper-encoder-5s_h8l.hef": shapes_only(**encoder_5s),
        "tiny-whisper-decoder-fixed-sequence-matmul-split_h8l.hef": shapes_only(
            {"tiny_whisper_decoder/input_layer1": (1, 500, 384), "tiny_whisper_decoder/input_layer2": (1, 32, 384)},
            {**{f"tiny_whisper_decoder/conv{k}": (1, 32, 51865 // 5) for k in range(5)},
             "tiny_whisper_decoder/normalization9": (1, 32, 384)}),
    }
    for name, network in networks.items():
        (tmp_path / name).write_bytes(fake.hef_bytes(network.architecture, sdk_version="3.31.0"))
    system = fake.System(networks={str(tmp_path / name): network for name, network in networks.items()})
    monkeypatch.setitem(sys.modules, "hailo_platform", fake.make_module(system))
    return tmp_path


def test_hef_info_tells_whether_this_device_runs_the_hef(hefs, monkeypatch, capsys):
    """Item 7: a Hailo-8 HEF does not run on a Hailo-8L; both architectures are named."""
    hef = hefs / "base-whisper-encoder-5s.hef"
    assert main(["hef-info", str(hef)]) == 0
    out = capsys.readouterr().out
    assert "architecture          HAILO8 " in out
    assert "this device           HAILO8L: does NOT run it: the HEF was compiled for HAILO8" in out and "_h8l" in out


def test_hef_info_prints_an_encoders_figures_and_refuses_the_wrong_model(hefs, model_dir, capsys):
    assert main(["hef-info", str(hefs / "base-whisper-encoder-5s_h8l.hef"), "--model_dir", str(model_dir)]) == 1
    out = capsys.readouterr().out
    for figure in ("architecture          HAILO8L", "Dataflow Compiler     3.31.0", "Whisper base encoder for HAILO8L",
                   "base_whisper_encoder_5s/input_layer1", "[1, 500, 80] UINT8 (read as FLOAT32)",
                   "[1, 250, 512]", "encoder window        5 s (500 mel frames)", "HAILO8L: runs it"):
        assert figure in out, out
    assert "NO: base-whisper-encoder-5s_h8l.hef is Hailo's base encoder (multilingual)" in out
    assert "Export base" in out and "config/hailo_base.yaml" in out


def test_hef_info_prints_a_decoders_positions_vocabulary_and_embedding(hefs, model_dir, capsys):
    hef = hefs / "tiny-whisper-decoder-fixed-sequence-matmul-split_h8l.hef"
    assert main(["hef-info", str(hef), "--model_dir", str(model_dir)]) == 1
    out = capsys.readouterr().out
    assert "decoder positions     32 tokens, 51865 logits over 5 'conv' outputs" in out
    assert "positional embedding  inside the HEF" in out
    assert "Hailo's tiny decoder (multilingual)" in out and "config/hailo_tiny.yaml" in out


def test_hef_info_without_hailo_platform_still_reads_the_header(hefs, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "hailo_platform", None)
    assert main(["hef-info", str(hefs / "base-whisper-encoder-5s_h8l.hef")]) == 0
    out = capsys.readouterr().out
    assert "architecture          HAILO8L" in out and "not readable here: hailo_platform" in out


def test_hef_info_on_a_file_that_is_not_a_hef_is_an_error(tmp_path, capsys):
    (tmp_path / "x.hef").write_bytes(b"\x00" * 100)
    assert main(["hef-info", str(tmp_path / "x.hef")]) == 2
    assert "is not a HEF" in capsys.readouterr().err
