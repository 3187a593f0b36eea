"""The parameter files against the option declarations (core/options.py): the base file lists every parameter of
every node with its declared default, the Hailo overlay only declared parameters with valid values.

That the running nodes declare exactly these parameters is checked over DDS in test/ros/test_executables.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.options import declared
from hailo_whisper_ros.ros.nodes import audio_subscriber, recognizer, transcript_publisher
from hailo_whisper_ros.ros.params import from_parameter_value, to_parameter_value

CONFIG = Path(__file__).resolve().parents[2] / "config"
NODES = {  # node name -> its module (PARAMETER_GROUPS: the options types it declares)
    "audio_subscriber": audio_subscriber,
    "recognizer": recognizer,
    "transcript_publisher": transcript_publisher,
}


def declared_defaults(node: str) -> dict[str, object]:
    """Parameter name -> its default as ROS holds it, for every option the node declares."""
    return {
        options_type.parameter_name(f.name): to_parameter_value(f.default, spec)
        for options_type in NODES[node].PARAMETER_GROUPS.values()
        for f, spec in declared(options_type)
    }


def sections(file_name: str) -> dict[str, dict]:
    content = yaml.safe_load((CONFIG / file_name).read_text())
    return {key.rsplit("/", 1)[-1]: value["ros__parameters"] for key, value in content.items()}


def options_with(node: str, parameters: dict) -> list:
    """The options objects the node would build from these parameter values (validated by the core)."""
    built = []
    for options_type in NODES[node].PARAMETER_GROUPS.values():
        names = {options_type.parameter_name(f.name): (f.name, spec) for f, spec in declared(options_type)}
        changes = {names[k][0]: from_parameter_value(v, names[k][1]) for k, v in parameters.items() if k in names}
        built.append(dataclasses.replace(options_type(), **changes))
    return built


def test_the_base_file_lists_every_parameter_with_its_declared_default():
    base = sections("speech_recognition.yaml")
    assert set(base) == set(NODES)
    for node, parameters in base.items():
        defaults = declared_defaults(node)
        assert sorted(parameters) == sorted(defaults), f"{node}: the file and the declarations list other names"
        different = {k: (v, defaults[k]) for k, v in parameters.items() if v != defaults[k]}
        assert not different, f"{node}: (file, declared) defaults differ: {different}"
        # The same type too: ROS refuses 600 for a double parameter.
        assert all(type(v) is type(defaults[k]) for k, v in parameters.items()), node


@pytest.mark.parametrize("overlay", sorted(path.name for path in CONFIG.glob("hailo*.yaml")))
def test_the_hailo_overlays_set_only_declared_parameters_to_valid_values(overlay):
    for node, parameters in sections(overlay).items():
        defaults = declared_defaults(node)
        assert set(parameters) <= set(defaults), f"{node}: undeclared {sorted(set(parameters) - set(defaults))}"
        assert all(type(v) is type(defaults[k]) for k, v in parameters.items()), node
        options_with(node, parameters)  # raises HailoWhisperError on an invalid value
    assert sections(overlay)["recognizer"]["model.encoder"] == "hef"


def test_an_invalid_value_in_a_file_would_be_refused():
    with pytest.raises(HailoWhisperError, match="threshold"):
        options_with("audio_subscriber", {"vad.threshold": 1.5})
    with pytest.raises(HailoWhisperError, match="encoder"):
        options_with("recognizer", {"model.encoder": "gpu"})
