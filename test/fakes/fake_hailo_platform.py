"""A test double of ``hailo_platform`` built from HailoRT's own Python API and defaults, not from our adapter.

Surface and behaviour are hailort's ``libhailort/bindings/python/platform/hailo_platform/pyhailort/pyhailort.py``
v4.23.0 (commit 08f088d), the same for the calls used here from v4.18.0; where versions differ it says so:

- ``__init__.py`` exports HEF, VDevice, Device, FormatType, HailoSchedulingAlgorithm, HailoRTException (the other
  exception classes live in pyhailort.py; code outside it can only tell them by name).
- ``VDevice.create_params()`` is ``HailoRTDefaults::get_vdevice_params()`` (libhailort/src/hailort_defaults.cpp):
  ROUND_ROBIN scheduling, group_id HAILO_DEFAULT_VDEVICE_GROUP_ID = "UNIQUE" (hailort.h), no multi-process service.
- A VDevice through the service needs hailort.service: without it HailoRT fails with status 77 HAILO_RPC_FAILED.
  The chip serves one holder: a direct VDevice, or the service for one group; any other VDevice is status 74
  HAILO_OUT_OF_PHYSICAL_DEVICES. Unnamed statuses come as HailoRTException("libhailort failed with error: N (NAME)")
  (ExceptionWrapper.create_exception_from_status).
- ``InferModel.input/output(name="")``: a stream's format type defaults to AUTO, the HEF's quantized type (UINT8
  here); configure() accepts it. ``Bindings.InferStream.set_buffer`` checks C-contiguity only ("Buffer must be
  C_CONTIGUOUS"); the size against the stream's frame in its format type is checked by libhailort when the job is
  launched (HAILO_INVALID_ARGUMENT -> HailoRTInvalidArgumentException).
- ``configure()`` is where the HEF is checked against the device (libhailort device_internal.cpp
  check_hef_is_compatible): a Hailo-8 HEF on a Hailo-8L fails, an 8L HEF on a Hailo-8 runs (with a warning). The
  status is HAILO_INVALID_HEF (HailoRTInvalidHEFException) up to v4.20 and HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE
  (HailoRTHEFNotCompatibleWithDevice, new in v4.21) since.
- ``ConfiguredInferModel.run(bindings, timeout)`` is run_async + job.wait(timeout): on HailoRTTimeout the job stays
  in flight and later writes its outputs into the buffers it was given; ``shutdown()`` ends the model.
- ``Device.control.identify().device_architecture`` is a DeviceArchitectureTypes (HAILO8 = 1, HAILO8L = 2, ...).

Behind the calls, a "network" per HEF path computes the outputs (the tests run the real exported ONNX models).
"""

from __future__ import annotations

import itertools
import struct
import types
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

HEF_MAGIC = 0x01484546  # libhailort/src/hef/hef_internal.hpp HEADER_MAGIC
PROTO_HW_ARCH = {"HAILO8": 0, "HAILO8L": 3, "HAILO10H": 5}  # libhailort/hef.proto ProtoHEFHwArch


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def hef_bytes(architecture: str, sdk_version: str = "3.31.0", body: bytes = b"\0" * 64) -> bytes:
    """A HEF-shaped file: a version-3 header (56 bytes, big-endian) and a ProtoHEFHef whose header names the
    architecture and the Dataflow Compiler, then stand-in bytes for the network groups."""
    header = _varint(1 << 3) + _varint(PROTO_HW_ARCH[architecture]) + _length_delimited(3, sdk_version.encode())
    proto = _length_delimited(1, header) + _length_delimited(2, body)
    distinct = struct.pack(">QQIQQQ", 0, 0, 0, 0, 0, 0)
    return struct.pack(">III", HEF_MAGIC, 3, len(proto)) + distinct + proto


class DeviceArchitectureTypes(IntEnum):
    HAILO8_A0 = 0
    HAILO8 = 1
    HAILO8L = 2
    HAILO15H = 3
    HAILO15L = 4
    HAILO15M = 5
    HAILO10H = 6

    def __str__(self):
        return self.name


class HailoRTException(Exception):
    pass


class HailoRTTimeout(HailoRTException):
    pass


class HailoRTInvalidArgumentException(HailoRTException):
    pass


class HailoRTNotFoundException(HailoRTException):
    pass


class HailoRTInvalidHEFException(HailoRTException):
    pass


class HailoRTHEFNotCompatibleWithDevice(HailoRTException):
    pass


def status_error(code: int, name: str) -> HailoRTException:
    return HailoRTException(f"libhailort failed with error: {code} ({name})")


class FormatType:  # _pyhailort.FormatType
    AUTO = "FormatType.AUTO"
    UINT8 = "FormatType.UINT8"
    UINT16 = "FormatType.UINT16"
    FLOAT32 = "FormatType.FLOAT32"


DTYPES = {FormatType.UINT8: np.uint8, FormatType.UINT16: np.uint16, FormatType.FLOAT32: np.float32}
QUANTIZED_TYPE = FormatType.UINT8  # what AUTO means for every stream of these HEFs


class HailoSchedulingAlgorithm:
    NONE = "HailoSchedulingAlgorithm.NONE"
    ROUND_ROBIN = "HailoSchedulingAlgorithm.ROUND_ROBIN"


@dataclass
class Network:
    """What a HEF computes: stream shapes (vstream frame shapes, no batch axis), outputs in HailoRT's sorted order
    (``sorted_outputs``) and in the InferModel's own order (``output_shapes``), and the function itself."""

    input_shapes: dict
    output_shapes: dict
    infer: object  # inputs {name: float32 array} -> outputs {name: float32 array}
    architecture: str = "HAILO8L"
    sorted_outputs: list | None = None
    duration_ms: float = 1.0  # how long the job takes on the NPU

    def sorted_output_names(self):
        return self.sorted_outputs or list(self.output_shapes)


@dataclass
class System:
    """The machine: the chip, the service, and who holds the chip."""

    networks: dict  # HEF path -> Network
    device_architecture: str = "HAILO8L"
    service_running: bool = True
    version: str = "4.23.0"
    holder: tuple | None = None
    holder_users: int = 0
    vdevices: list = field(default_factory=list)
    run_timeouts_ms: list = field(default_factory=list)
    shutdowns: int = 0
    in_flight: list = field(default_factory=list)  # (bindings, outputs) of jobs that timed out
    _ids: itertools.count = field(default_factory=itertools.count)

    @property
    def minor_version(self) -> int:
        return int(self.version.split(".")[1])


@dataclass
class _VStreamFormat:
    type: str
    order: str = "FormatOrder.NHWC"


@dataclass
class VStreamInfo:
    name: str
    shape: tuple
    format: _VStreamFormat


def _network_at(system: System, hef_path):
    """The network of the HEF at ``hef_path``, with HailoRT's errors for a file it cannot open or does not take."""
    try:
        with open(hef_path, "rb") as file:
            magic = file.read(4)
    except OSError:
        raise status_error(13, "HAILO_OPEN_FILE_FAILURE") from None
    if magic != struct.pack(">I", HEF_MAGIC) or hef_path not in system.networks:
        raise HailoRTInvalidHEFException("Invalid HEF. See hailort.log for more information")
    return system.networks[hef_path]


def _vstream_infos(shapes: dict) -> list:
    return [VStreamInfo(name, shape, _VStreamFormat(QUANTIZED_TYPE)) for name, shape in shapes.items()]


def _by_name(streams: dict, name: str):
    """HailoRT's lookup of a stream: the empty name is the only stream, when there is one."""
    if name == "" and len(streams) == 1:
        return next(iter(streams.values()))
    if name not in streams:
        raise HailoRTNotFoundException("Item not found. See hailort.log for more information")
    return streams[name]


class HEF:
    _system: System  # set by make_module: the caller constructs it with HailoRT's arguments only

    def __init__(self, hef_source):
        self._network = _network_at(self._system, hef_source)

    def get_network_group_names(self):
        return ["whisper"]

    def get_input_vstream_infos(self, name=None):
        return _vstream_infos(self._network.input_shapes)

    def get_output_vstream_infos(self, name=None):
        return _vstream_infos(self._network.output_shapes)

    def get_sorted_output_names(self, network_group_name=None):
        return self._network.sorted_output_names()


class InferStream:
    def __init__(self, name, shape):
        self.name, self.shape, self.format_type = name, tuple(shape), FormatType.AUTO

    def set_format_type(self, type):
        self.format_type = type

    def frame_bytes(self):
        kind = QUANTIZED_TYPE if self.format_type == FormatType.AUTO else self.format_type
        return int(np.prod(self.shape)) * np.dtype(DTYPES[kind]).itemsize


class BoundStream:
    def __init__(self, stream):
        self.stream, self._buffer = stream, None

    def set_buffer(self, buffer):
        if not buffer.flags.c_contiguous:
            raise HailoRTException("Buffer must be C_CONTIGUOUS")
        self._buffer = buffer

    def get_buffer(self, tf_format=False):
        return self._buffer


class Bindings:
    def __init__(self, model):
        self._inputs = {n: BoundStream(s) for n, s in model.inputs.items()}
        self._outputs = {n: BoundStream(s) for n, s in model.outputs.items()}

    def input(self, name=""):
        return _by_name(self._inputs, name)

    def output(self, name=""):
        return _by_name(self._outputs, name)


def _write_outputs(binding: Bindings, results: dict) -> None:
    """A finished job writes each output into the buffer bound to it, in the stream's shape."""
    for name, result in results.items():
        bound = binding.output(name)
        bound.get_buffer()[...] = result.reshape(bound.stream.shape)


class ConfiguredInferModel:
    def __init__(self, model, system: System):
        self._model, self._system, self._shut_down = model, system, False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._model = None

    def create_bindings(self, input_buffers=None, output_buffers=None):
        bindings = Bindings(self._model)
        for name, buffer in (input_buffers or {}).items():
            bindings.input(name).set_buffer(buffer)
        for name, buffer in (output_buffers or {}).items():
            bindings.output(name).set_buffer(buffer)
        return bindings

    def run(self, bindings, timeout):
        if self._shut_down:
            raise status_error(6, "HAILO_INVALID_OPERATION")
        system = self._system
        system.run_timeouts_ms.append(timeout)
        (binding,) = bindings
        for bound in [*binding._inputs.values(), *binding._outputs.values()]:
            if bound._buffer is None or bound._buffer.nbytes != bound.stream.frame_bytes():
                raise HailoRTInvalidArgumentException("Invalid argument. See hailort.log for more information")
        network = self._model.network
        inputs = {n: b.get_buffer().view(np.float32) for n, b in binding._inputs.items()}
        results = network.infer(inputs)
        late, system.in_flight[:] = list(system.in_flight), []
        if network.duration_ms > timeout:
            system.in_flight.append((binding, results))
            raise HailoRTTimeout("Received a timeout - hailort has failed because a timeout had occurred")
        _write_outputs(binding, results)
        for late_binding, late_results in late:  # jobs that timed out finish now, into their own buffers
            _write_outputs(late_binding, late_results)

    def shutdown(self):
        self._shut_down = True
        self._system.shutdowns += 1


class InferModel:
    def __init__(self, network, device, system: System):
        self.network, self._device, self._system = network, device, system
        self.inputs = {n: InferStream(n, s) for n, s in network.input_shapes.items()}
        self.outputs = {n: InferStream(n, s) for n, s in network.output_shapes.items()}

    @property
    def input_names(self):
        return list(self.inputs)

    @property
    def output_names(self):
        return list(self.outputs)

    def input(self, name=""):
        return _by_name(self.inputs, name)

    def output(self, name=""):
        return _by_name(self.outputs, name)

    def configure(self):
        if self._device.released:
            raise status_error(6, "HAILO_INVALID_OPERATION")
        hef, device = self.network.architecture, self._system.device_architecture
        if not (hef == device or (hef == "HAILO8L" and device == "HAILO8")):
            if self._system.minor_version >= 21:
                raise HailoRTHEFNotCompatibleWithDevice(
                    "HEF file is not compatible with device. See hailort.log for more information")
            raise HailoRTInvalidHEFException("Invalid HEF. See hailort.log for more information")
        return ConfiguredInferModel(self, self._system)


class Control:
    def __init__(self, system: System):
        self._system = system

    def identify(self):
        return types.SimpleNamespace(device_architecture=DeviceArchitectureTypes[self._system.device_architecture])


class Device:
    _system: System  # set by make_module, as for HEF

    def __init__(self, device_id=None):
        self.device_id, self.control = device_id or "0000:01:00.0", Control(self._system)


class VDevice:
    _system: System  # set by make_module, as for HEF
    _physical_device: type[Device]  # the Device class of the same module

    def __init__(self, params=None):
        params = params or self.create_params()
        self.params, self.released, self.models = params, False, []
        system = self._system
        if params.multi_process_service and not system.service_running:
            raise status_error(77, "HAILO_RPC_FAILED")
        shared = params.multi_process_service and params.group_id != "UNIQUE"
        key = ("service", params.group_id) if shared else ("unique", next(system._ids))
        if system.holder is not None and system.holder != key:
            raise status_error(74, "HAILO_OUT_OF_PHYSICAL_DEVICES")
        system.holder, system.holder_users = key, system.holder_users + 1
        system.vdevices.append(self)

    @staticmethod
    def create_params():
        return types.SimpleNamespace(scheduling_algorithm=HailoSchedulingAlgorithm.ROUND_ROBIN, group_id="UNIQUE",
                                     multi_process_service=False, device_count=1)

    def create_infer_model(self, hef_source, name=""):
        if not isinstance(hef_source, str):
            raise ValueError("HEF can only be created from a file path (str) or a buffer (bytes)")
        self.models.append(hef_source)
        return InferModel(_network_at(self._system, hef_source), self, self._system)

    def get_physical_devices(self):
        return [self._physical_device()]

    def release(self):
        if not self.released:
            self.released = True
            self._system.holder_users -= 1
            if self._system.holder_users == 0:
                self._system.holder = None


def _module_class(system: System, cls: type, **attributes) -> type:
    """``cls`` as one module's class: a subclass whose instances reach ``system`` (HailoRT's constructors, which the
    code under test calls, have no place for it)."""
    return type(cls.__name__, (cls,), {"_system": system, **attributes})


def make_module(system: System) -> types.ModuleType:
    """A ``hailo_platform`` module over ``system``."""
    module = types.ModuleType("hailo_platform")
    module.__version__ = system.version
    module.HailoRTException = HailoRTException
    module.FormatType = FormatType
    module.HailoSchedulingAlgorithm = HailoSchedulingAlgorithm
    module.system = system
    module.HEF, module.Device = _module_class(system, HEF), _module_class(system, Device)
    module.VDevice = _module_class(system, VDevice, _physical_device=module.Device)
    return module
