"""Whisper on the Hailo NPU: an encoder HEF, and Hailo's fixed-sequence decoder HEF; both run through the thin
HailoRT adapter (``hailort``), every shape is read from the HEF, and a HEF that does not fit the model directory is
refused before the device is opened (hef_file.model_mismatch), so the recognizer falls back to the CPU."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hailo_whisper_ros.core.backends.base import zero_pad
from hailo_whisper_ros.core.backends.hailort import ConfiguredHef, HailoDeviceOptions, HailoUnavailable
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.model_dir import ModelInfo

# Hailo's preprocessing raises quiet recordings by 20 dB before the mel features, and its encoder HEFs were
# calibrated on audio so raised (Hailo-Application-Code-Examples 5eab622, runtime/python/speech_recognition/common/
# preprocessing.py improve_input_audio: peak < 0.1 -> apply_gain(audio, 20)); the "15dB" of the tiny HEF's name.
QUIET_PEAK = 0.1
QUIET_GAIN_DB = 20.0


def calibration_gain(audio: np.ndarray) -> np.ndarray:
    """The audio as Hailo's encoder HEFs expect it: raised by QUIET_GAIN_DB when its peak is below QUIET_PEAK."""
    if not len(audio) or np.max(audio) >= QUIET_PEAK:
        return audio
    return (audio * np.float32(10.0 ** (QUIET_GAIN_DB / 20.0))).astype(np.float32)


def _without_unit_axes(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


class HailoEncoder:
    """A Whisper encoder HEF. Its input is the mel window either frames-major (NHWC [1, frames, n_mels], Hailo's
    10 s encoder) or mel-major (NCHW [n_mels, 1, frames]); its output is [positions, d_model] either way round."""

    def __init__(self, path: Path, info: ModelInfo, options: HailoDeviceOptions = HailoDeviceOptions()):
        self._hef = ConfiguredHef(path, options, info)
        if len(self._hef.input_names) != 1 or len(self._hef.sorted_output_names) != 1:
            self._hef.close()
            raise HailoUnavailable(f"encoder HEF {path} must have one input and one output")
        self.name = f"hailo:{Path(path).name}"
        self._input_name = self._hef.input_names[0]
        self._input_shape = self._hef.input_shapes[self._input_name]
        # The window is the HEF's own (Hailo's base encoder takes 5 s, its tiny one 10 s): the recognizer cuts
        # utterances and long audio to max_frames.
        in_dims = _without_unit_axes(self._input_shape)
        self._frames_major = in_dims[1] == info.n_mels
        self.window_frames = in_dims[0] if self._frames_major else in_dims[1]
        self.max_frames = self.window_frames
        out_dims = _without_unit_axes(next(iter(self._hef.outputs.values())).shape)
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

    def input_gain(self, audio: np.ndarray) -> np.ndarray:
        return calibration_gain(audio)

    def close(self) -> None:
        self._hef.close()


class HailoSequenceDecoder:
    """Hailo's fixed-sequence decoder HEF (no KV cache): the whole token sequence is re-run for every step.

    Inputs, in HEF name order as in Hailo's app: the encoder states, then the token embeddings looked up on the host
    (token embedding matrix [n_vocab, d], .npy). Hailo's published decoder HEFs add the positional embedding
    themselves (its pipeline calls ``_tokenization(add_embed=False)`` since Dec 2025), so a positional add-input
    [sequence, d] is added only when configured, for decoders compiled without it. The logits come split over the
    outputs whose name holds "conv", concatenated along the vocabulary in the HEF's sorted output order; any other
    output is not logits and is left alone, as Hailo's pipeline does.
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
        self._hef = ConfiguredHef(path, options, info)
        try:
            self._check_inputs(path, d_model, token_embedding)
        except HailoUnavailable:
            self._hef.close()
            raise
        self._logit_names = [stream.name for stream in self._hef.description.logit_outputs]
        tokens_shape = self._hef.input_shapes[self._tokens_name]
        self.max_positions = int(np.prod(tokens_shape)) // d_model
        states_shape = self._hef.input_shapes[self._states_name]
        self.fixed_encoder_positions = int(np.prod(states_shape)) // info.n_audio_state
        self._positional = None
        if positional_embedding is not None:
            self._positional = _load_npy(positional_embedding, ndim=None).reshape(-1, d_model)[: self.max_positions]
        self._ids = np.zeros(self.max_positions, dtype=np.int64)
        # Every call runs the whole fixed sequence, so a position's logits never depend on how it was reached.
        self.rows_independent = True
        self._position = 0
        self._states: np.ndarray | None = None

    def _check_inputs(self, path: Path, d_model: int, token_embedding: Path) -> None:
        if len(self._hef.input_names) != 2:
            raise HailoUnavailable(f"decoder HEF {path} must have two inputs (encoder states, token embeddings)")
        self._states_name, self._tokens_name = self._hef.input_names
        tokens_shape = self._hef.input_shapes[self._tokens_name]
        if _without_unit_axes(tokens_shape)[-1:] != (d_model,):
            raise HailoUnavailable(
                f"decoder HEF {path} token input {tokens_shape} does not end in d={d_model} of {token_embedding}"
            )

    def start(self, encoder_states: np.ndarray, prefix: Sequence[int], padded_positions: int,
              rows: Sequence[int] | None = None) -> np.ndarray:
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
        return self._logits(slice(0, len(prefix)) if rows is None else np.asarray(rows, dtype=np.int64))

    def step(self, token: int) -> np.ndarray:
        self._position += 1
        self._ids[self._position] = token
        return self._logits(self._position)

    def extend(self, tokens: Sequence[int]) -> np.ndarray:
        first = self._position + 1
        self._position += len(tokens)
        self._ids[first : self._position + 1] = tokens
        return self._logits(slice(first, self._position + 1))

    def rewind(self, positions: int) -> None:
        self._position = positions - 1  # the HEF recomputes every position each step: the ids beyond are ignored

    def _logits(self, rows) -> np.ndarray:
        embedded = self._embedding[self._ids]
        if self._positional is not None:
            embedded += self._positional
        tokens = embedded.astype(np.float32, copy=False).reshape(self._hef.input_shapes[self._tokens_name])
        outputs = self._hef.run({self._states_name: self._states, self._tokens_name: tokens})
        parts = [outputs[name].reshape(self.max_positions, -1)[rows] for name in self._logit_names]
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
