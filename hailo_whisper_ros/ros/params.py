"""ROS parameters declared from the core's options dataclasses (``core/options.py``), validated by their own rules.

Each declared field of an options object is one parameter (``vad.min_silence_ms`` -> ``VadOptions.min_silence_ms``):
its description, unit, range and read-only flag come from the field's declaration, so ``ros2 param describe`` shows
what the code checks. A change is validated once, in the on-set callback, which only builds the options object the
new values would give (``dataclasses.replace`` runs the core's validation, and a group's ``check`` the run-time
rules) and answers yes or no; that object is applied in the post-set callback, once every parameter of the request
has been accepted (the pattern of ros2/demos' demo_nodes_py). Read-only parameters need a model reload and are
refused at run time by rclpy itself.

A list parameter keeps its declared type while empty: rclpy takes an empty default for a byte array and
`ros2 param set NODE NAME "[]"` sends a bool array, so an empty list of a list option is declared with its array type,
and an empty array of any type set at run time is taken as an empty list of that type.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.options import OptionSpec, declared


def to_parameter_value(value: Any, spec: OptionSpec) -> Any:
    """A field's value as ROS can hold it: None as the declared stand-in, paths as strings, tuples as lists."""
    if value is None:
        value = spec.none_as
    if isinstance(value, Path):
        return str(value)
    return list(value) if isinstance(value, tuple) else value


def from_parameter_value(value: Any, spec: OptionSpec) -> Any:
    """A parameter's value as the field holds it (the inverse of to_parameter_value)."""
    if isinstance(value, list):
        value = tuple(value)
    if spec.none_as is not None and value == spec.none_as:
        return None
    return value


# The array type of each list kind of option (core/options.py KINDS).
ARRAY_TYPES = {"int_tuple": Parameter.Type.INTEGER_ARRAY, "str_tuple": Parameter.Type.STRING_ARRAY}
ANY_ARRAY_TYPES = (Parameter.Type.BYTE_ARRAY, Parameter.Type.BOOL_ARRAY, Parameter.Type.INTEGER_ARRAY,
                   Parameter.Type.DOUBLE_ARRAY, Parameter.Type.STRING_ARRAY)


def declare_parameter(node: Node, name: str, default: Any, spec: OptionSpec) -> Any:
    """Declares one option's parameter; its value (the launch's, else ``default``). An empty list default is
    declared with its kind's array type (rclpy would infer a byte array) and set to [] unless the launch set it."""
    if default != [] or spec.kind not in ARRAY_TYPES:
        return node.declare_parameter(name, default, descriptor(spec, default)).value
    array_type = ARRAY_TYPES[spec.kind]
    value = node.declare_parameter(name, array_type, descriptor(spec, default)).value
    if value is None:
        node.set_parameters([Parameter(name, array_type, [])])
        return []
    return value


def typed_empty_lists(parameters: list[Parameter], specs: dict[str, OptionSpec]) -> list[Parameter]:
    """The parameters, each empty array of a list option (``specs``: by name) as an empty list of its own type."""
    typed = []
    for parameter in parameters:
        spec = specs.get(parameter.name)
        if (spec is not None and spec.kind in ARRAY_TYPES and parameter.type_ in ANY_ARRAY_TYPES
                and len(parameter.value) == 0):
            parameter = Parameter(parameter.name, ARRAY_TYPES[spec.kind], [])
        typed.append(parameter)
    return typed


def descriptor(spec: OptionSpec, kind_value: Any) -> ParameterDescriptor:
    """The descriptor of one option. The range it shows rclpy includes the declared off and none values, which the
    core accepts besides its range."""
    result = ParameterDescriptor(description=spec.help_text(), read_only=spec.read_only)
    if spec.range is None:
        return result
    low, high = spec.range
    for special in (spec.off, spec.none_as):
        if isinstance(special, (int, float)) and not isinstance(special, bool):
            low, high = min(low, special), max(high, special)
    if isinstance(kind_value, int) and not isinstance(kind_value, bool):
        result.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
    else:
        result.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
    return result


class OptionsGroup:
    """The parameters of one options object, and the current validated options."""

    def __init__(self, options: Any):
        self.options = options
        self.fields = {type(options).parameter_name(f.name): (f.name, spec) for f, spec in declared(options)}
        # Extra rules that need run-time knowledge (e.g. the loaded model's languages); raises HailoWhisperError.
        self.check: Callable[[Any], None] | None = None

    def declare(self, node: Node) -> None:
        """Declare every parameter (defaults from the options object) and adopt the values set at launch."""
        changes = {}
        for name, (field, spec) in self.fields.items():
            default = to_parameter_value(getattr(self.options, field), spec)
            declared_value = declare_parameter(node, name, default, spec)
            changes[field] = from_parameter_value(declared_value, spec)
        try:
            self.options = dataclasses.replace(self.options, **changes)
        except HailoWhisperError as error:
            raise HailoWhisperError(f"invalid parameters at start-up: {error}") from error

    def propose(self, parameters: list) -> Any | None:
        """The options object the given parameter changes would give (None if none of them is ours).

        Raises HailoWhisperError with the core's reason when the combination is invalid."""
        changes = {
            self.fields[p.name][0]: from_parameter_value(p.value, self.fields[p.name][1])
            for p in parameters
            if p.name in self.fields
        }
        if not changes:
            return None
        options = dataclasses.replace(self.options, **changes)
        if self.check is not None:
            self.check(options)
        return options


class ParameterBinder:
    """Binds options objects to a node: declares them, validates changes, and applies the accepted ones."""

    def __init__(self, node: Node):
        self.node = node
        self.groups: dict[str, OptionsGroup] = {}
        self.listeners: list[Callable[[str, Any], None]] = []
        self._accepted: dict[str, Any] = {}  # the options objects the on-set callback validated, to apply as they are
        node.add_on_set_parameters_callback(self._validate)
        if hasattr(node, "add_pre_set_parameters_callback"):  # Iron and later; before it an empty list needs its type
            node.add_pre_set_parameters_callback(
                lambda parameters: typed_empty_lists(parameters, {
                    name: spec for group in self.groups.values() for name, (_, spec) in group.fields.items()}))
        # rclpy before Iron has no post-set callback: there the on-set callback applies what it accepted.
        self._applies_after_set = hasattr(node, "add_post_set_parameters_callback")
        if self._applies_after_set:
            node.add_post_set_parameters_callback(self._apply)

    def declare(self, groups: dict[str, type]) -> list[Any]:
        """Declares the parameters of each options type (key -> type, as a node's PARAMETER_GROUPS); returns the
        options objects, in that order, with the launch-time values applied."""
        declared_options = []
        for key, options_type in groups.items():
            group = OptionsGroup(options_type())
            group.declare(self.node)
            self.groups[key] = group
            declared_options.append(group.options)
        return declared_options

    def on_change(self, listener: Callable[[str, Any], None]) -> None:
        """listener(key, new_options) runs after a change was accepted."""
        self.listeners.append(listener)

    def _proposals(self, parameters: list) -> dict[str, Any]:
        proposed = {}
        for key, group in self.groups.items():
            options = group.propose(parameters)
            if options is not None:
                proposed[key] = options
        return proposed

    def _validate(self, parameters: list) -> SetParametersResult:
        try:
            proposed = self._proposals(parameters)
        except (HailoWhisperError, TypeError, ValueError) as error:
            return SetParametersResult(successful=False, reason=str(error))
        if self._applies_after_set:
            self._accepted = proposed
        else:
            self._adopt(proposed)
        return SetParametersResult(successful=True)

    def _apply(self, parameters: list) -> None:
        """rclpy calls it right after _validate accepted ``parameters``: what was validated is applied, not
        validated again."""
        proposed, self._accepted = self._accepted, {}
        self._adopt(proposed)

    def _adopt(self, proposed: dict[str, Any]) -> None:
        for key, options in proposed.items():
            self.groups[key].options = options
            for listener in self.listeners:
                listener(key, options)
