"""The CPU Whisper decoder: two ONNX Runtime sessions and a KV cache, stepped by decoding.greedy_decode."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from hailo_whisper_ros.core import HailoWhisperError
from hailo_whisper_ros.core.model_files import (
    DECODER,
    DECODER_WITH_PAST,
    ENCODER_ATTENTION_BIAS,
    ENCODER_HIDDEN_STATES,
    INPUT_IDS,
    LOGITS,
    ModelInfo,
)

PAST_PREFIX = "past_key_values."
PRESENT_PREFIX = "present."


def zero_pad(states: np.ndarray, positions: int) -> np.ndarray:
    """Encoder states [1, T, d] zero-padded to ``positions`` (T if already that long)."""
    if states.shape[1] >= positions:
        return states
    padded = np.zeros((1, positions, states.shape[2]), dtype=np.float32)
    padded[:, : states.shape[1]] = states
    return padded


def create_ort_session(path: Path, threads: int):
    """An ONNX Runtime CPU session tuned for one request at a time, or HailoWhisperError naming the file."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise HailoWhisperError(f"model file not found: {path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Each session owns a thread pool whose idle workers would spin-wait for work; with three sessions (encoder,
    # two decoders) on two cores they steal time from the session that runs: measured on jfk with 2 threads, the
    # per-token time fell from 4.5 to 2.6 ms without spinning.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as error:  # ORT raises its own Fail/InvalidProtobuf/... types for unreadable models
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise HailoWhisperError(f"cannot load ONNX model {path}: {first_line}") from error


class OnnxKvDecoder:
    """decoder_model.onnx runs once over the forced prefix and yields the self- and cross-attention caches;
    decoder_with_past_model.onnx then runs one token per step, so the work per token stays (nearly) constant.

    The cache is a dict keyed by the with-past session's input names (past_key_values.{i}.{kind}.{key|value});
    the cross-attention entries are computed once per utterance by the first pass and only the self-attention
    entries are replaced each step.

    Zero padding of the encoder output costs nothing with decoders that take encoder_attention_bias (ours): one
    zero position whose score is raised by log(count) stands for all of them (see onnx_export.build_decoder).
    Decoders without it (Optimum's) get the zeros themselves.
    """

    fixed_encoder_positions = None  # any length

    def __init__(self, decoder_dir: Path, info: ModelInfo, threads: int = 2):
        decoder_dir = Path(decoder_dir)
        self.name = f"onnx:{decoder_dir.name}"
        self.max_positions = info.n_text_ctx
        first_path, step_path = decoder_dir / DECODER, decoder_dir / DECODER_WITH_PAST
        self._first = create_ort_session(first_path, threads)
        self._with_past = create_ort_session(step_path, threads)

        first_inputs = {i.name for i in self._first.get_inputs()}
        step_inputs = {i.name for i in self._with_past.get_inputs()}
        self.pads_by_bias = ENCODER_ATTENTION_BIAS in first_inputs
        if first_inputs - {ENCODER_ATTENTION_BIAS} != {INPUT_IDS, ENCODER_HIDDEN_STATES} or self.pads_by_bias != (
            ENCODER_ATTENTION_BIAS in step_inputs
        ):
            raise HailoWhisperError(
                f"{first_path} has inputs {sorted(first_inputs)}, {step_path} {sorted(step_inputs)}; expected "
                f"{INPUT_IDS} and {ENCODER_HIDDEN_STATES}, and {ENCODER_ATTENTION_BIAS} in both or neither"
            )
        past_names = [name for name in step_inputs if name.startswith(PAST_PREFIX)]
        self._feeds_states = ENCODER_HIDDEN_STATES in step_inputs

        # First pass: every cache entry comes from its present.* output.
        self._first_outputs = [LOGITS] + [PRESENT_PREFIX + name[len(PAST_PREFIX):] for name in past_names]
        missing = set(self._first_outputs) - {o.name for o in self._first.get_outputs()}
        if missing:
            raise HailoWhisperError(f"{first_path} lacks outputs {sorted(missing)} needed by {step_path}")
        self._first_targets = past_names
        # Steps: only the self-attention entries change.
        step_outputs = {o.name for o in self._with_past.get_outputs()}
        self._step_targets = [name for name in past_names if ".decoder." in name]
        self._step_outputs = [LOGITS] + [PRESENT_PREFIX + name[len(PAST_PREFIX):] for name in self._step_targets]
        missing = set(self._step_outputs) - step_outputs
        if missing:
            raise HailoWhisperError(f"{step_path} lacks outputs {sorted(missing)}")

        self._token = np.zeros((1, 1), dtype=np.int64)  # reused input_ids buffer of the one-token steps
        self._feeds: dict[str, np.ndarray] = {INPUT_IDS: self._token}

    def start(self, encoder_states: np.ndarray, prefix: Sequence[int], padded_positions: int) -> np.ndarray:
        first_feeds = {INPUT_IDS: np.asarray([prefix], dtype=np.int64)}
        positions = encoder_states.shape[1]
        if self.pads_by_bias:
            bias = np.zeros(positions, dtype=np.float32)
            if padded_positions > positions:
                encoder_states = zero_pad(encoder_states, positions + 1)
                bias = np.append(bias, np.float32(np.log(padded_positions - positions)))
            first_feeds[ENCODER_ATTENTION_BIAS] = self._feeds[ENCODER_ATTENTION_BIAS] = bias
        else:
            encoder_states = zero_pad(encoder_states, padded_positions)
        first_feeds[ENCODER_HIDDEN_STATES] = encoder_states
        outputs = self._first.run(self._first_outputs, first_feeds)
        self._feeds.update(zip(self._first_targets, outputs[1:]))
        if self._feeds_states:
            self._feeds[ENCODER_HIDDEN_STATES] = encoder_states
        return outputs[0][0]

    def step(self, token: int) -> np.ndarray:
        self._token[0, 0] = token
        outputs = self._with_past.run(self._step_outputs, self._feeds)
        self._feeds.update(zip(self._step_targets, outputs[1:]))
        return outputs[0][0, -1]
