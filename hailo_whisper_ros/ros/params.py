"""ROS parameters declared from the core's option dataclasses, validated by the core's own rules.

Each parameter maps one field of a frozen options dataclass of the core (``vad.min_silence_ms`` ->
``VadOptions.min_silence_ms``). Its description is the field's docstring, so the text lives in one place; the
range in the descriptor lets ``ros2 param describe`` show it; a new value is accepted only if the core builds a
valid options object with it (``dataclasses.replace`` runs the dataclass's validation), so the node and the core
can never disagree on what is valid. Read-only parameters need a model reload and are refused at run time.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node

from hailo_whisper_ros.core import HailoWhisperError


@dataclass(frozen=True)
class ParameterSpec:
    """One ROS parameter bound to one field of an options dataclass."""

    name: str  # dotted ROS name, e.g. "vad.min_silence_ms"
    field: str  # the dataclass field it sets
    range: tuple[float, float] | None = None  # shown by `ros2 param describe`; the core validates anyway
    read_only: bool = False  # changing it needs a model reload
    none_as: Any = None  # ROS has no None: this value of the parameter stands for the field's None

    def to_ros(self, value: Any) -> Any:
        return self.none_as if value is None else value

    def from_ros(self, value: Any) -> Any:
        if self.none_as is not None and value == self.none_as:
            return None
        if isinstance(value, list):  # string/int arrays arrive as lists; the core keeps tuples
            return tuple(value)
        return value


@lru_cache(maxsize=None)
def field_docstrings(options_type: type) -> dict[str, str]:
    """The string literal under each field of a dataclass (the attribute docstring convention)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(options_type)))
    body = tree.body[0].body
    docs = {}
    for statement, following in zip(body, body[1:]):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[statement.target.id] = " ".join(following.value.value.split())
    return docs


class OptionsGroup:
    """The parameters of one options dataclass, and the current validated options object."""

    def __init__(self, options: Any, specs: list[ParameterSpec]):
        fields = {f.name for f in dataclasses.fields(options)}
        unknown = [spec.field for spec in specs if spec.field not in fields]
        if unknown:
            raise ValueError(f"{type(options).__name__} has no field(s) {unknown}")
        self.options = options
        self.specs = {spec.name: spec for spec in specs}
        # Extra rules that need run-time knowledge (e.g. the loaded model's languages); raises HailoWhisperError.
        self.check: Callable[[Any], None] | None = None

    def descriptor(self, spec: ParameterSpec, value: Any) -> ParameterDescriptor:
        # The field's docstring, else its metadata description (the two conventions of the core's dataclasses).
        metadata = {f.name: f.metadata for f in dataclasses.fields(self.options)}[spec.field]
        description = field_docstrings(type(self.options)).get(spec.field) or metadata.get("description", spec.field)
        if spec.none_as is not None:
            description += f" ({spec.none_as!r} stands for none.)"
        descriptor = ParameterDescriptor(description=description, read_only=spec.read_only)
        if spec.range is not None and isinstance(value, bool):
            raise ValueError(f"{spec.name}: a boolean has no range")
        if spec.range is not None and isinstance(value, int):
            descriptor.integer_range = [IntegerRange(from_value=int(spec.range[0]), to_value=int(spec.range[1]), step=1)]
        elif spec.range is not None:
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(spec.range[0]), to_value=float(spec.range[1]), step=0.0)
            ]
        return descriptor

    def declare(self, node: Node, overrides: dict[str, Any] | None = None) -> None:
        """Declares every parameter (defaults from the options object) and adopts the values set at launch."""
        changes = {}
        for name, spec in self.specs.items():
            default = spec.to_ros(getattr(self.options, spec.field))
            if isinstance(default, tuple):
                default = list(default)
            declared = node.declare_parameter(name, default, self.descriptor(spec, default)).value
            changes[spec.field] = spec.from_ros(declared)
        try:
            self.options = dataclasses.replace(self.options, **changes)
        except HailoWhisperError as error:
            raise HailoWhisperError(f"invalid parameters at start-up: {error}") from error

    def propose(self, parameters: list) -> Any | None:
        """The options object the given parameter changes would give (None if none of them is ours).

        Raises HailoWhisperError with the core's reason when the combination is invalid."""
        changes = {
            self.specs[p.name].field: self.specs[p.name].from_ros(p.value) for p in parameters if p.name in self.specs
        }
        if not changes:
            return None
        options = dataclasses.replace(self.options, **changes)
        if self.check is not None:
            self.check(options)
        return options


class ParameterBinder:
    """Binds option groups to a node: declares them, validates changes, and reports accepted options."""

    def __init__(self, node: Node):
        self.node = node
        self.groups: dict[str, OptionsGroup] = {}
        self.listeners: list[Callable[[str, Any], None]] = []
        node.add_on_set_parameters_callback(self._on_set_parameters)

    def add(self, key: str, options: Any, specs: list[ParameterSpec]) -> Any:
        """Declares a group; returns its options with the launch-time values applied."""
        group = OptionsGroup(options, specs)
        group.declare(self.node)
        self.groups[key] = group
        return group.options

    def on_change(self, listener: Callable[[str, Any], None]) -> None:
        """listener(key, new_options) runs after a change is accepted."""
        self.listeners.append(listener)

    def _on_set_parameters(self, parameters: list) -> SetParametersResult:
        proposed = {}
        try:
            for key, group in self.groups.items():
                options = group.propose(parameters)
                if options is not None:
                    proposed[key] = options
        except (HailoWhisperError, TypeError, ValueError) as error:
            return SetParametersResult(successful=False, reason=str(error))
        for key, options in proposed.items():
            self.groups[key].options = options
            for listener in self.listeners:
                listener(key, options)
        return SetParametersResult(successful=True)
