"""core/options.py: one declaration per option, and the validation, names and help text read from it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.options import Options, declared, option, spec_of


@dataclass(frozen=True)
class Example(Options):
    PARAMETER_GROUP = "example"

    interval_ms: int = option(1000, "Time between two things.", unit="ms", range=(200, 10000), off=0)
    threshold: float | None = option(None, "A level.", range=(0.01, 0.99), none_as=0.0)
    mode: str = option("fast", "How.", choices=("fast", "slow"))
    enabled: bool = option(True, "Whether.")
    ids: tuple[int, ...] | None = option(None, "Token ids.", none_as=(-1,))
    names: tuple[str, ...] = option(("",), "Files.")
    folder: Path | None = option(None, "A folder.", path=True, none_as="", read_only=True)
    queue_s: float = option(30.0, "A queue.", unit="s", range=(1.0, 600.0), parameter="queue.max_s")


def test_the_kind_of_each_option_follows_from_its_declaration():
    kinds = {f.name: spec.kind for f, spec in declared(Example)}
    assert kinds == {"interval_ms": "int", "threshold": "float", "mode": "str", "enabled": "bool",
                     "ids": "int_tuple", "names": "str_tuple", "folder": "path", "queue_s": "float"}


@pytest.mark.parametrize("change, message", [
    ({"interval_ms": 100}, r"Example option interval_ms must be in \[200, 10000\] ms, or 0 \(off\), not 100"),
    ({"interval_ms": 1.5}, "interval_ms must be a whole number"),
    ({"interval_ms": True}, "interval_ms must be a whole number"),
    ({"threshold": 1.5}, r"threshold must be in \[0.01, 0.99\]"),
    ({"threshold": float("nan")}, "threshold must be a finite number"),
    ({"mode": "medium"}, "mode must be one of fast, slow"),
    ({"enabled": 1}, "enabled must be true or false"),
    ({"ids": (1, "2")}, "ids must be a list of whole numbers"),
    ({"queue_s": None}, "queue_s must be set"),
])
def test_an_invalid_value_is_refused_naming_the_option(change, message):
    with pytest.raises(HailoWhisperError, match=message):
        replace(Example(), **change)


def test_off_none_paths_and_lists():
    assert replace(Example(), interval_ms=0).interval_ms == 0  # the declared off value, outside the range
    assert Example(threshold=None).threshold is None  # the annotation admits None
    assert Example(folder="").folder is None and Example(folder="/tmp").folder == Path("/tmp")
    assert Example(ids=[1, 2]).ids == (1, 2)  # frozen options hold tuples


def test_parameter_names_and_help_text():
    assert Example.parameter_name("interval_ms") == "example.interval_ms"
    assert Example.parameter_name("queue_s") == "queue.max_s"  # the declared name wins
    text = spec_of(Example, "interval_ms").help_text()
    assert text == "Time between two things. Unit: ms. Range: 200..10000. 0 turns it off."
    assert spec_of(Example, "threshold").help_text().endswith("0.0 stands for none.")
    assert "stands for none" not in spec_of(Example, "folder").help_text(with_none_as=False)
    assert spec_of(Example, "folder").read_only
