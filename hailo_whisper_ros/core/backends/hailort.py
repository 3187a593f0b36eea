"""The thin HailoRT adapter: the only module that imports ``hailo_platform``, and only inside functions.

Uses HailoRT's InferModel API (4.18-4.23, hailort libhailort/bindings/python/.../pyhailort/pyhailort.py) and only
the names ``hailo_platform`` itself exports. One VDevice per process, reference-counted, holds every HEF (HailoRT
gives one process one VDevice per chip; a second one is HAILO_OUT_OF_PHYSICAL_DEVICES). By default it goes through
HailoRT's multi-process service in group "SHARED", as Hailo's own apps do, so vision models in other processes share
the NPU (HailoRT's default group "UNIQUE" never shares). Each HEF is configured once with FLOAT32 inputs and outputs
(HailoRT's default, AUTO, is the HEF's quantized type), so HailoRT does the (de)quantisation. Every shape is read
from the HEF.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.hef_file import (
    HefDescription,
    HefStream,
    architecture_mismatch,
    model_mismatch,
    read_hef_header,
)

SHARED_GROUP = "SHARED"  # the group Hailo's apps share the NPU in (hailo_whisper_pipeline.py, multi_process_example)
SERVICE_HINT = "sudo systemctl enable --now hailort.service"


class HailoUnavailable(Exception):
    """The NPU cannot run a HEF here; the message says why (the recognizer may fall back to the CPU)."""


@dataclass(frozen=True)
class HailoDeviceOptions:
    multi_process_service: bool = True  # through hailort_service, so other processes can share the NPU
    group_id: str | None = SHARED_GROUP  # None: HailoRT's default, "UNIQUE" (never shared)
    timeout_ms: int = 10000  # per inference call


@dataclass
class _ProcessVDevice:
    vdevice: object
    options: HailoDeviceOptions
    users: int = 0


_process_vdevice: _ProcessVDevice | None = None


def _hailo_platform():
    try:
        import hailo_platform
    except ImportError as error:
        raise HailoUnavailable(
            f"hailo_platform (HailoRT's Python API) is not importable: {error}; in a venv it needs "
            f"--system-site-packages to see the system's python3-hailort") from None
    return hailo_platform


def explain_hailo_error(error: Exception) -> str:
    """A short reason for a HailoRT failure, naming the likely cause of the common ones. Status numbers and names
    are hailort.h's (v4.23.0); pyhailort.py turns the unnamed ones into "libhailort failed with error: N (NAME)"."""
    text = f"{type(error).__name__}: {error}"
    if "OUT_OF_PHYSICAL_DEVICES" in text:
        return (f"no free Hailo device (HAILO_OUT_OF_PHYSICAL_DEVICES, error 74): another process holds the NPU "
                f"without HailoRT's multi-process service, or no device is present (run every NPU app with the "
                f"service and group {SHARED_GROUP}) [{text}]")
    if "RPC_FAILED" in text:
        return (f"HailoRT's multi-process service is not reachable (HAILO_RPC_FAILED, error 77): start it "
                f"({SERVICE_HINT}) or set model.hailo_multi_process_service false [{text}]")
    if "INVALID_SERVICE_VERSION" in text:
        return f"hailort.service and hailo_platform are of different HailoRT versions [{text}]"
    if type(error).__name__ == "HailoRTTimeout":
        return f"the inference took longer than model.hailo_timeout_ms [{text}]"
    if "NotCompatible" in text or "NOT_COMPATIBLE" in text:
        return f"HEF compiled for another architecture than this device's (Hailo-8 vs 8L) [{text}]"
    if "InvalidHEF" in text or "INVALID_HEF" in text:
        return (f"HEF rejected by HailoRT: damaged, compiled by another Dataflow Compiler release than this HailoRT's,"
                f" or (HailoRT < 4.21) for another architecture [{text}]")
    return f"HailoRT error [{text}]"


@contextlib.contextmanager
def _unavailable_on_hailo_errors(hailo_platform):
    try:
        yield
    except hailo_platform.HailoRTException as error:
        raise HailoUnavailable(explain_hailo_error(error)) from error


def acquire_vdevice(options: HailoDeviceOptions):
    """The process's one VDevice, opened on first use; every acquire needs a release_vdevice()."""
    global _process_vdevice
    hailo_platform = _hailo_platform()
    if _process_vdevice is None:
        params = hailo_platform.VDevice.create_params()
        params.scheduling_algorithm = hailo_platform.HailoSchedulingAlgorithm.ROUND_ROBIN
        params.multi_process_service = options.multi_process_service
        if options.group_id:
            params.group_id = options.group_id
        with _unavailable_on_hailo_errors(hailo_platform):
            _process_vdevice = _ProcessVDevice(hailo_platform.VDevice(params), options)
    elif (_process_vdevice.options.multi_process_service, _process_vdevice.options.group_id) != (
            options.multi_process_service, options.group_id):
        held = _process_vdevice.options
        raise HailoUnavailable(
            f"this process already holds the NPU's one VDevice (service {held.multi_process_service}, group "
            f"{held.group_id!r}); this model asks for service {options.multi_process_service}, group "
            f"{options.group_id!r}: give every model of the process the same model.hailo_* options")
    _process_vdevice.users += 1
    return hailo_platform, _process_vdevice.vdevice


def release_vdevice() -> None:
    """One user less; the last one releases the VDevice (after its models were shut down)."""
    global _process_vdevice
    if _process_vdevice is None:
        return
    _process_vdevice.users -= 1
    if _process_vdevice.users <= 0:
        vdevice, _process_vdevice = _process_vdevice.vdevice, None
        vdevice.release()


def describe_hef(path: Path) -> HefDescription:
    """The HEF's header and its streams as HailoRT reads them (HEF.get_*_vstream_infos, sorted output names)."""
    hailo_platform = _hailo_platform()
    try:
        header = read_hef_header(path)
    except HailoWhisperError as error:
        raise HailoUnavailable(str(error)) from None
    with _unavailable_on_hailo_errors(hailo_platform):
        hef = hailo_platform.HEF(str(path))
        by_name = {info.name: info for info in hef.get_output_vstream_infos()}
        outputs = [by_name[name] for name in hef.get_sorted_output_names()]
        inputs = hef.get_input_vstream_infos()

        def streams(infos):
            return tuple(HefStream(i.name, tuple(i.shape), str(i.format.type).split(".")[-1]) for i in infos)

        return HefDescription(Path(path), header, streams(inputs), streams(outputs))


def device_architecture(vdevice) -> str | None:
    """The first physical device's architecture (Control.identify().device_architecture), None if not readable
    (through the service HailoRT may not hand out the physical devices)."""
    try:
        (device, *_) = vdevice.get_physical_devices()
        return str(device.control.identify().device_architecture)
    except Exception:  # best effort: only used to word a failure that is reported anyway
        return None


class ConfiguredHef:
    """One HEF configured on the process's VDevice, FLOAT32 in and out, with output buffers bound once."""

    def __init__(self, path: Path, options: HailoDeviceOptions, info=None):
        """``info``: the ModelInfo of the model directory the HEF must fit, checked before the device is opened."""
        self.path = Path(path)
        self.timeout_ms = options.timeout_ms
        self.description = describe_hef(self.path)
        mismatch = model_mismatch(self.description, info) if info is not None else None
        if mismatch:
            raise HailoUnavailable(mismatch)
        self._configured = None
        hailo_platform, vdevice = acquire_vdevice(options)
        self._holds_vdevice = True
        try:
            self._hailo_errors = hailo_platform.HailoRTException
            with _unavailable_on_hailo_errors(hailo_platform):
                model = vdevice.create_infer_model(str(self.path))
                self.input_names = [stream.name for stream in self.description.inputs]
                self.sorted_output_names = [stream.name for stream in self.description.outputs]
                for name in self.input_names:
                    model.input(name).set_format_type(hailo_platform.FormatType.FLOAT32)
                for name in self.sorted_output_names:
                    model.output(name).set_format_type(hailo_platform.FormatType.FLOAT32)
                self.input_shapes = {name: tuple(model.input(name).shape) for name in self.input_names}
                self._output_shapes = {name: tuple(model.output(name).shape) for name in self.sorted_output_names}
            try:
                self._configured = model.configure()
            except hailo_platform.HailoRTException as error:
                raise HailoUnavailable(self._configure_failure(error, vdevice)) from error
            with _unavailable_on_hailo_errors(hailo_platform):
                self._bind()
        except BaseException:
            self.close()
            raise

    def _configure_failure(self, error: Exception, vdevice) -> str:
        """configure() is where HailoRT checks the HEF against the device: name both architectures when they differ."""
        device = device_architecture(vdevice)
        hef = self.description.header.architecture
        mismatch = architecture_mismatch(hef, device) if device else None
        if mismatch:
            return f"{mismatch} [{type(error).__name__}: {error}]"
        seen = f"; HEF for {hef}, Dataflow Compiler {self.description.header.sdk_version or 'unknown'}"
        return explain_hailo_error(error) + seen + (f", device {device}" if device else "")

    def _bind(self) -> None:
        """Fresh output buffers and bindings (after a timeout the old ones may still be written by the late job)."""
        self.outputs = {name: np.empty(shape, dtype=np.float32) for name, shape in self._output_shapes.items()}
        self._bindings = self._configured.create_bindings(output_buffers=self.outputs)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One inference; the returned output buffers are overwritten by the next call."""
        try:
            for name, array in inputs.items():
                self._bindings.input(name).set_buffer(array)
            self._configured.run([self._bindings], self.timeout_ms)
        except self._hailo_errors as error:
            if type(error).__name__ == "HailoRTTimeout":
                self._bind()  # the job is still in flight on the old bindings: never hand them out again
            raise HailoWhisperError(f"Hailo inference with {self.path} failed: {explain_hailo_error(error)}") from error
        return self.outputs

    def close(self) -> None:
        """Shut the configured model down (HailoRT wants it gone before its VDevice), then release the VDevice."""
        if self._configured is not None:
            configured, self._configured = self._configured, None
            self._bindings = None
            configured.shutdown()
        if self._holds_vdevice:
            self._holds_vdevice = False
            release_vdevice()
