"""Each option declared once: the field of an options dataclass carries its default, unit, range and description.

Validation (``Options.validate``), the ROS parameter descriptors (``ros/params.py``), the check of the YAML files
(``test/unit/test_config_files.py``) and the command-line flags (``cli/flags.py``) all read that declaration::

    @dataclass(frozen=True)
    class VadOptions(Options):
        PARAMETER_GROUP = "vad"
        min_silence_ms: float = option(600.0, "Silence that ends an utterance.", unit="ms", range=(0.0, 10000.0))

A field's kind (bool, int, float, str, path, or a tuple of ints or strings) follows from its default, or from
``none_as`` when the default is None, or is given as ``kind`` when neither tells (an empty list); a field whose
annotation admits None may also be None. ``none_as`` is the value that stands for None where None cannot be written
(ROS parameters, flags); ``off`` is a value outside the range that turns the option off
(``streaming.partial_interval_ms: 0``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from hailo_whisper_ros.core.errors import HailoWhisperError

KINDS = ("bool", "int", "float", "str", "path", "int_tuple", "str_tuple")


@dataclass(frozen=True)
class OptionSpec:
    """What is declared beside a field, apart from its default."""

    description: str
    unit: str = ""  # "ms", "s", "Hz"...; empty for counts, flags and names
    range: tuple[float, float] | None = None  # inclusive bounds of a number
    choices: tuple[str, ...] | None = None  # the allowed values of a string
    none_as: Any = None  # the value standing for None where None cannot be written (ROS, flags)
    off: Any = None  # a value outside the range that turns the option off
    read_only: bool = False  # a change needs a model reload: refused while running
    kind: str = ""  # one of KINDS; filled in by option() from the default
    parameter: str = ""  # the ROS parameter name when it is not "<PARAMETER_GROUP>.<field>"

    def help_text(self, with_none_as: bool = True) -> str:
        """The description with the unit, range, choices and special values, for ROS descriptors and flags (which
        write None by leaving the flag out: ``with_none_as=False``)."""
        parts = [self.description]
        if self.unit:
            parts.append(f"Unit: {self.unit}.")
        if self.range is not None:
            low, high = (f"{bound:g}" for bound in self.range)
            parts.append(f"Range: {low}..{high}.")
        if self.choices is not None:
            parts.append(f"One of: {', '.join(self.choices)}.")
        if self.off is not None:
            parts.append(f"{self.off!r} turns it off.")
        if self.none_as is not None and with_none_as:
            parts.append(f"{self.none_as!r} stands for none.")
        return " ".join(parts)


def option(
    default: Any,
    description: str,
    *,
    unit: str = "",
    range: tuple[float, float] | None = None,
    choices: tuple[str, ...] | None = None,
    none_as: Any = None,
    off: Any = None,
    read_only: bool = False,
    path: bool = False,
    parameter: str = "",
    kind: str = "",
) -> Any:
    """A dataclass field declared with everything validation, ROS, YAML and flags need (see the module docstring).
    ``path``: a file or folder, given as str or Path, None when unset; ``kind``: one of KINDS, for a default that
    does not tell (an empty list)."""
    if kind not in ("", *KINDS):
        raise TypeError(f"not a kind of option: {kind!r}")
    kind = kind or ("path" if path else _kind_of(default if default is not None else none_as))
    spec = OptionSpec(
        " ".join(description.split()), unit, range, choices, none_as, off, read_only, kind, parameter
    )
    default_value = tuple(default) if isinstance(default, list) else default
    return dataclasses.field(default=default_value, metadata={"option": spec})


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (tuple, list)) and value:
        return "str_tuple" if isinstance(value[0], str) else "int_tuple"
    raise TypeError(f"cannot tell the kind of option from {value!r}: give a default, none_as or kind")


def declared(options_type: type) -> list[tuple[dataclasses.Field, OptionSpec]]:
    """The declared fields of an options dataclass (or instance), in declaration order."""
    return [(f, f.metadata["option"]) for f in dataclasses.fields(options_type) if "option" in f.metadata]


def spec_of(options_type: type, name: str) -> OptionSpec:
    for declared_field, spec in declared(options_type):
        if declared_field.name == name:
            return spec
    raise KeyError(f"{options_type.__name__} declares no option {name!r}")


def check_value(owner: str, name: str, value: Any, spec: OptionSpec, nullable: bool) -> None:
    """Raise HailoWhisperError when ``value`` is not of the option's kind or outside its range or choices."""
    if value is None:
        if nullable or spec.kind == "path":
            return
        raise HailoWhisperError(f"{owner} option {name} must be set, not None")
    if spec.off is not None and value == spec.off and type(value) is type(spec.off):
        return
    kind = spec.kind
    if kind == "bool":
        good = isinstance(value, bool)
    elif kind == "int":
        good = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        good = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif kind == "str":
        good = isinstance(value, str)
    elif kind == "path":
        good = isinstance(value, (str, os.PathLike))
    elif kind == "str_tuple":
        good = isinstance(value, tuple) and all(isinstance(v, str) for v in value)
    else:
        good = isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if not good:
        expected = {"float": "a finite number", "int": "a whole number", "bool": "true or false", "str": "a string",
                    "path": "a path", "int_tuple": "a list of whole numbers", "str_tuple": "a list of strings"}[kind]
        raise HailoWhisperError(f"{owner} option {name} must be {expected}, not {value!r}")
    if spec.range is not None and not spec.range[0] <= value <= spec.range[1]:
        low, high = (f"{bound:g}" for bound in spec.range)
        off = f", or {spec.off!r} (off)" if spec.off is not None else ""
        unit = f" {spec.unit}" if spec.unit else ""
        raise HailoWhisperError(f"{owner} option {name} must be in [{low}, {high}]{unit}{off}, not {value!r}")
    if spec.choices is not None and value not in spec.choices:
        raise HailoWhisperError(f"{owner} option {name} must be one of {', '.join(spec.choices)}, not {value!r}")


class Options:
    """Base of the option dataclasses: construction (and so ``dataclasses.replace``) validates every declared field,
    then the rules between fields that a subclass states in ``check``. Path fields are normalised to Path or None."""

    PARAMETER_GROUP: ClassVar[str] = ""  # the ROS parameter prefix of the fields, e.g. "vad"; empty: none

    def __post_init__(self) -> None:
        for declared_field, spec in declared(self):
            value = getattr(self, declared_field.name)
            if spec.kind == "path":
                object.__setattr__(self, declared_field.name, Path(value) if value not in (None, "") else None)
            elif isinstance(value, list):
                object.__setattr__(self, declared_field.name, tuple(value))
        self.validate()

    def validate(self) -> None:
        """Raise HailoWhisperError naming the first invalid option and why."""
        owner = type(self).__name__
        for declared_field, spec in declared(self):
            nullable = "None" in str(declared_field.type)
            check_value(owner, declared_field.name, getattr(self, declared_field.name), spec, nullable)
        self.check()

    def check(self) -> None:
        """Rules between fields (a subclass's own); raise HailoWhisperError."""

    @classmethod
    def parameter_name(cls, field_name: str) -> str:
        spec = spec_of(cls, field_name)
        if spec.parameter:
            return spec.parameter
        return f"{cls.PARAMETER_GROUP}.{field_name}" if cls.PARAMETER_GROUP else field_name
