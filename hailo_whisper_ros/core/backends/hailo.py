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
from typing import Sequence

import numpy as np

from hailo_whisper_ros.core import HailoWhisperError
from hailo_whisper_ros.core.decoder import zero_pad
from hailo_whisper_ros.core.model_files import ModelInfo


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
    """A short reason for a HailoRT failure, naming the two common ones."""
    text = f"{type(error).__name__}: {error}"
    if "OUT_OF_PHYSICAL_DEVICES" in text:
        return "no free Hailo device (HAILO_OUT_OF_PHYSICAL_DEVICES): none present, or another process holds it"
    if any(marker in text for marker in ("NotCompatible", "NOT_COMPATIBLE", "InvalidHEF", "INVALID_HEF")):
        return f"HEF rejected by the device, likely compiled for another architecture (Hailo-8 vs 8L) [{text}]"
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


def _without_unit_axes(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


class HailoEncoder:
    """A Whisper encoder HEF. Its input is the mel window either frames-major (NHWC [1, frames, n_mels], Hailo's
    10 s encoder) or mel-major (NCHW [n_mels, 1, frames]); its output is [positions, d_model] either way round."""

    def __init__(self, path: Path, info: ModelInfo, options: HailoDeviceOptions = HailoDeviceOptions()):
        self._hef = ConfiguredHef(path, options)
        if len(self._hef.input_names) != 1 or len(self._hef.sorted_output_names) != 1:
            raise HailoWhisperError(f"encoder HEF {path} must have one input and one output")
        self.name = f"hailo:{Path(path).name}"
        self._input_name = self._hef.input_names[0]
        self._input_shape = self._hef.input_shapes[self._input_name]
        in_dims = _without_unit_axes(self._input_shape)
        if len(in_dims) != 2 or info.n_mels not in in_dims:
            raise HailoWhisperError(
                f"encoder HEF {path} input shape {self._input_shape} is not a {info.n_mels}-mel window"
            )
        self._frames_major = in_dims[1] == info.n_mels
        self.window_frames = in_dims[0] if self._frames_major else in_dims[1]
        self.max_frames = self.window_frames
        out_dims = _without_unit_axes(next(iter(self._hef.outputs.values())).shape)
        if len(out_dims) != 2 or info.n_audio_state not in out_dims:
            raise HailoWhisperError(f"encoder HEF {path} output shape {out_dims} lacks d_model {info.n_audio_state}")
        self._positions_major = out_dims[1] == info.n_audio_state
        self.output_positions = out_dims[0] if self._positions_major else out_dims[1]

    def encode(self, mel: np.ndarray) -> np.ndarray:
        if mel.shape[1] != self.window_frames:
            raise HailoWhisperError(f"{self._hef.path} takes {self.window_frames} mel frames, got {mel.shape[1]}")
        window = mel.T if self._frames_major else mel
        features = np.ascontiguousarray(window, dtype=np.float32).reshape(self._input_shape)
        (output,) = self._hef.run({self._input_name: features}).values()
        if self._positions_major:
            states = output.reshape(self.output_positions, -1)
        else:
            states = output.reshape(-1, self.output_positions).T
        return states[np.newaxis].copy()  # the binding's buffer is reused by the next call

    def close(self) -> None:
        self._hef.close()


class HailoSequenceDecoder:
    """Hailo's fixed-sequence decoder HEF (no KV cache): the whole token sequence is re-run for every step.

    Inputs, in HEF name order as in Hailo's app: the encoder states, then the token embeddings computed on the host
    (token embedding matrix [n_vocab, d] and, for older HEFs, a positional add-input [sequence, d], both .npy).
    The logits come split over several outputs, concatenated along the vocabulary in the HEF's sorted output order.
    """

    def __init__(
        self,
        path: Path,
        token_embedding: Path,
        positional_embedding: Path | None,
        info: ModelInfo,
        options: HailoDeviceOptions = HailoDeviceOptions(),
    ):
        self.name = f"hailo:{Path(path).name}"
        self._embedding = _load_npy(token_embedding, ndim=2)
        if self._embedding.shape[0] != info.n_vocab:
            raise HailoWhisperError(
                f"{token_embedding} has {self._embedding.shape[0]} tokens; model {info.name} has {info.n_vocab}"
            )
        d_model = self._embedding.shape[1]
        self._hef = ConfiguredHef(path, options)
        if len(self._hef.input_names) != 2:
            raise HailoWhisperError(f"decoder HEF {path} must have two inputs (encoder states, token embeddings)")
        self._states_name, self._tokens_name = self._hef.input_names
        tokens_shape = self._hef.input_shapes[self._tokens_name]
        if _without_unit_axes(tokens_shape)[-1:] != (d_model,):
            raise HailoWhisperError(
                f"decoder HEF {path} token input {tokens_shape} does not end in d={d_model} of {token_embedding}"
            )
        self.max_positions = int(np.prod(tokens_shape)) // d_model
        states_shape = self._hef.input_shapes[self._states_name]
        self.fixed_encoder_positions = int(np.prod(states_shape)) // info.n_audio_state
        self._positional = None
        if positional_embedding is not None:
            self._positional = _load_npy(positional_embedding, ndim=None).reshape(-1, d_model)[: self.max_positions]
        vocabulary = sum(int(np.prod(out.shape)) for out in self._hef.outputs.values()) // self.max_positions
        if vocabulary != self._embedding.shape[0]:
            raise HailoWhisperError(
                f"decoder HEF {path} has {vocabulary} logits, {token_embedding} {self._embedding.shape[0]} tokens"
            )
        self._ids = np.zeros(self.max_positions, dtype=np.int64)
        self._position = 0
        self._states: np.ndarray | None = None

    def start(self, encoder_states: np.ndarray, prefix: Sequence[int], padded_positions: int) -> np.ndarray:
        """The HEF's encoder input is fixed: the states are zero-padded to its size whatever ``padded_positions``."""
        if encoder_states.shape[1] > self.fixed_encoder_positions:
            raise HailoWhisperError(
                f"the decoder HEF takes {self.fixed_encoder_positions} encoder positions, the encoder gives "
                f"{encoder_states.shape[1]}"
            )
        states = zero_pad(encoder_states, self.fixed_encoder_positions)
        states_shape = self._hef.input_shapes[self._states_name]
        self._states = np.ascontiguousarray(states, dtype=np.float32).reshape(states_shape)
        self._ids[:] = 0
        self._ids[: len(prefix)] = prefix
        self._position = len(prefix) - 1
        return self._logits(slice(0, len(prefix)))

    def step(self, token: int) -> np.ndarray:
        self._position += 1
        self._ids[self._position] = token
        return self._logits(self._position)

    def _logits(self, rows) -> np.ndarray:
        embedded = self._embedding[self._ids]
        if self._positional is not None:
            embedded += self._positional
        tokens = embedded.astype(np.float32, copy=False).reshape(self._hef.input_shapes[self._tokens_name])
        outputs = self._hef.run({self._states_name: self._states, self._tokens_name: tokens})
        parts = [outputs[name].reshape(self.max_positions, -1)[rows] for name in self._hef.sorted_output_names]
        return np.concatenate(parts, axis=-1)

    def close(self) -> None:
        self._hef.close()


def _load_npy(path: Path, ndim: int | None) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise HailoWhisperError(f"decoder asset not found: {path}")
    try:
        array = np.load(path)
    except (OSError, ValueError) as error:
        raise HailoWhisperError(f"cannot read {path}: {error}") from error
    if ndim is not None and array.ndim != ndim:
        raise HailoWhisperError(f"{path} should be a {ndim}-D array, has shape {array.shape}")
    return array
