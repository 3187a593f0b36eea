"""The thin HailoRT adapter: the only module that imports ``hailo_platform``, and only inside functions.

Uses HailoRT's InferModel API (4.18+): one shared VDevice with the ROUND_ROBIN scheduler holds every HEF of the
process (optionally through the multi-process service with a group id, so vision models in other processes share
the NPU); each HEF is configured once with FLOAT32 inputs and outputs, so HailoRT does the (de)quantisation, and
runs with one reused set of bindings. Every shape is read from the HEF.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
import numpy as np

from hailo_whisper_ros.core.errors import HailoWhisperError


class HailoUnavailable(Exception):
    """The NPU cannot run a HEF here; the message says why (the recognizer may fall back to the CPU)."""


@dataclass(frozen=True)
class HailoDeviceOptions:
    multi_process_service: bool = False  # go through hailort_service, so other processes can share the NPU
    group_id: str | None = None  # VDevice group shared with the other processes' models (e.g. "SHARED")
    timeout_ms: int = 10000  # per inference call


_shared_vdevices: dict[tuple[bool, str | None], object] = {}


def _hailo_platform():
    try:
        import hailo_platform
    except ImportError as error:
        raise HailoUnavailable(f"hailo_platform (HailoRT's Python API) is not installed: {error}") from None
    return hailo_platform


def explain_hailo_error(error: Exception) -> str:
    """A short reason for a HailoRT failure, naming the common ones. HailoRT raises HailoRTInvalidHEFException
    ("Invalid HEF") for a file it cannot parse and, at configure, for one compiled for another architecture;
    HailoRTHEFNotCompatibleWithDevice only for the latter."""
    text = f"{type(error).__name__}: {error}"
    if "OUT_OF_PHYSICAL_DEVICES" in text:
        return "no free Hailo device (HAILO_OUT_OF_PHYSICAL_DEVICES): none present, or another process holds it"
    if any(marker in text for marker in ("NotCompatible", "NOT_COMPATIBLE")):
        return f"HEF compiled for another architecture than this device's (Hailo-8 vs 8L) [{text}]"
    if any(marker in text for marker in ("InvalidHEF", "INVALID_HEF")):
        return (f"HEF rejected by HailoRT: not a HEF, damaged, or compiled for another architecture (Hailo-8 vs 8L) "
                f"[{text}]")
    return f"HailoRT error [{text}]"


@contextlib.contextmanager
def _unavailable_on_hailo_errors(hailo_platform):
    try:
        yield
    except hailo_platform.HailoRTException as error:
        raise HailoUnavailable(explain_hailo_error(error)) from error


def shared_vdevice(options: HailoDeviceOptions):
    """The process's VDevice for these options, created on first use; returns (hailo_platform, vdevice)."""
    hailo_platform = _hailo_platform()
    key = (options.multi_process_service, options.group_id)
    if key not in _shared_vdevices:
        params = hailo_platform.VDevice.create_params()
        params.scheduling_algorithm = hailo_platform.HailoSchedulingAlgorithm.ROUND_ROBIN
        if options.multi_process_service:
            params.multi_process_service = True
        if options.group_id:
            params.group_id = options.group_id
        with _unavailable_on_hailo_errors(hailo_platform):
            _shared_vdevices[key] = hailo_platform.VDevice(params)
    return hailo_platform, _shared_vdevices[key]


def release_shared_vdevices() -> None:
    """Release every shared VDevice (after the models configured on them are closed)."""
    while _shared_vdevices:
        _, vdevice = _shared_vdevices.popitem()
        vdevice.release()


class ConfiguredHef:
    """One HEF configured on the shared VDevice, FLOAT32 in and out, with output buffers bound once."""

    def __init__(self, path: Path, options: HailoDeviceOptions):
        self.path = Path(path)
        self.timeout_ms = options.timeout_ms
        hailo_platform, vdevice = shared_vdevice(options)
        self._hailo_errors = hailo_platform.HailoRTException
        with _unavailable_on_hailo_errors(hailo_platform):
            model = vdevice.create_infer_model(str(self.path))
            self.input_names = sorted(model.input_names)
            self.sorted_output_names = list(hailo_platform.HEF(str(self.path)).get_sorted_output_names())
            for name in self.input_names:
                model.input(name).set_format_type(hailo_platform.FormatType.FLOAT32)
            for name in self.sorted_output_names:
                model.output(name).set_format_type(hailo_platform.FormatType.FLOAT32)
            self.input_shapes = {name: tuple(model.input(name).shape) for name in self.input_names}
            self.outputs = {
                name: np.empty(model.output(name).shape, dtype=np.float32) for name in self.sorted_output_names
            }
            self._configured = model.configure()
            self._bindings = self._configured.create_bindings(output_buffers=self.outputs)
        self._model = model

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One inference; the returned output buffers are overwritten by the next call."""
        try:
            for name, array in inputs.items():
                self._bindings.input(name).set_buffer(array)
            self._configured.run([self._bindings], self.timeout_ms)
        except self._hailo_errors as error:
            raise HailoWhisperError(f"Hailo inference with {self.path} failed: {explain_hailo_error(error)}") from error
        return self.outputs

    def close(self) -> None:
        # HailoRT wants the configured model released before its VDevice.
        self._bindings = self._configured = self._model = None
