"""The Hailo configurations name HEFs that exist: Hailo's published ones for base and multilingual tiny, never a
published name for the wrong model (Hailo publishes no tiny.en HEF for the Hailo-8/8L)."""

from pathlib import Path

import yaml

from hailo_whisper_ros.core.hef_file import CONFIG_FOR_MODEL, PUBLISHED_HEFS

REPO = Path(__file__).resolve().parents[2]


def recognizer_parameters(config: str) -> dict:
    (section,) = yaml.safe_load((REPO / config).read_text()).values()
    return section["ros__parameters"]


def test_each_published_model_has_a_config_naming_its_hailo_8l_encoder():
    expected = {"base": ("base-whisper-encoder-5s_h8l.hef", 5), "tiny": ("tiny-whisper-encoder-10s_15dB_h8l.hef", 10)}
    assert set(CONFIG_FOR_MODEL) == set(expected)
    for model, config in CONFIG_FOR_MODEL.items():
        parameters = recognizer_parameters(config)
        hef = PUBLISHED_HEFS[Path(parameters["model.encoder_file"]).name]
        assert (hef.file_name, hef.window_s) == expected[model]
        assert (hef.model, hef.part, hef.architecture) == (model, "encoder", "HAILO8L")
        assert Path(parameters["model.dir"]).name == model  # a model directory of that model, not the tiny.en default


def test_the_default_overlay_names_no_published_hef():
    """With the default tiny.en model any published Hailo-8/8L encoder would be the wrong model."""
    parameters = recognizer_parameters("config/hailo.yaml")
    assert "model.dir" not in parameters
    assert Path(parameters["model.encoder_file"]).name not in PUBLISHED_HEFS


def test_hailo_publishes_tiny_en_only_for_the_hailo_10h():
    assert {hef.architecture for hef in PUBLISHED_HEFS.values() if hef.model == "tiny.en"} == {"HAILO10H"}
