"""The CPU Whisper decoder: two ONNX Runtime sessions and a KV cache, stepped by decoding.greedy_decode."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from hailo_whisper_ros.core import HailoWhisperError
from hailo_whisper_ros.core.model_files import (
    DECODER,
    DECODER_CROSS_KV,
    DECODER_WITH_PAST,
    ENCODER_ATTENTION_BIAS,
    ENCODER_HIDDEN_STATES,
    INPUT_IDS,
    LOGITS,
    ModelInfo,
    find_beside,
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
    # No arena and no memory pattern: tensors are freed back to the allocator after each run instead of the session
    # keeping its largest set for ever. Measured with tiny.en (10 s encoder, INT8 decoder): peak resident memory
    # 306 -> 266 MB, encoder and per-token times unchanged within noise.
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as error:  # ORT raises its own Fail/InvalidProtobuf/... types for unreadable models
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise HailoWhisperError(f"cannot load ONNX model {path}: {first_line}") from error


class OnnxKvDecoder:
    """decoder_with_past_model.onnx runs one token per step against a KV cache, so the work per token stays (nearly)
    constant. The cache is a dict keyed by its input names (past_key_values.{i}.{kind}.{key|value}): the
    cross-attention entries are computed once per utterance, only the self-attention entries change each step.

    The utterance starts one of two ways. Ours: decoder_cross_kv.onnx computes the cross-attention cache and
    decoder_with_past runs the prefix from an empty self-attention cache, so the prefix decoder (as large as the
    step decoder) is never loaded. Optimum's: decoder_model.onnx runs the prefix and yields both caches.

    Zero padding of the encoder output costs nothing with decoders that take encoder_attention_bias (ours): one
    zero position whose score is raised by log(count) stands for all of them (see onnx_export.build_decoder).
    Decoders without it (Optimum's) get the zeros themselves.
    """

    fixed_encoder_positions = None  # any length

    def __init__(self, decoder_dir: Path, info: ModelInfo, threads: int = 2):
        decoder_dir = Path(decoder_dir)
        self.name = f"onnx:{decoder_dir.name}"
        self.max_positions = info.n_text_ctx
        step_path = decoder_dir / DECODER_WITH_PAST
        self._with_past = create_ort_session(step_path, threads)
        step_inputs = {i.name for i in self._with_past.get_inputs()}
        self.pads_by_bias = ENCODER_ATTENTION_BIAS in step_inputs
        past_names = [name for name in step_inputs if name.startswith(PAST_PREFIX)]
        self._feeds_states = ENCODER_HIDDEN_STATES in step_inputs
        self._step_targets = [name for name in past_names if ".decoder." in name]
        self._step_outputs = [LOGITS] + [PRESENT_PREFIX + name[len(PAST_PREFIX):] for name in self._step_targets]
        missing = set(self._step_outputs) - {o.name for o in self._with_past.get_outputs()}
        if missing:
            raise HailoWhisperError(f"{step_path} lacks outputs {sorted(missing)}")
        cross_targets = [name for name in past_names if ".encoder." in name]
        try:
            cross_path = find_beside(decoder_dir, DECODER_CROSS_KV) if self.pads_by_bias else None
        except FileNotFoundError:
            cross_path = None

        if cross_path is not None:
            start_path = cross_path
            self._start_session = create_ort_session(start_path, threads)
            self._start_targets = cross_targets
            self._start_outputs = [PRESENT_PREFIX + name[len(PAST_PREFIX):] for name in cross_targets]
            head_dim = info.n_text_state // info.n_text_head
            empty = np.zeros((1, info.n_text_head, 0, head_dim), dtype=np.float32)
            self._empty_self_cache = {name: empty for name in self._step_targets}
        else:
            start_path = decoder_dir / DECODER
            self._start_session = create_ort_session(start_path, threads)
            first_inputs = {i.name for i in self._start_session.get_inputs()}
            if first_inputs - {ENCODER_ATTENTION_BIAS} != {INPUT_IDS, ENCODER_HIDDEN_STATES} or self.pads_by_bias != (
                ENCODER_ATTENTION_BIAS in first_inputs
            ):
                raise HailoWhisperError(
                    f"{start_path} has inputs {sorted(first_inputs)}, {step_path} {sorted(step_inputs)}; expected "
                    f"{INPUT_IDS} and {ENCODER_HIDDEN_STATES}, and {ENCODER_ATTENTION_BIAS} in both or neither"
                )
            # Every cache entry comes from its present.* output.
            self._start_targets = past_names
            self._start_outputs = [LOGITS] + [PRESENT_PREFIX + name[len(PAST_PREFIX):] for name in past_names]
            self._empty_self_cache = None
        missing = set(self._start_outputs) - {o.name for o in self._start_session.get_outputs()}
        if missing:
            raise HailoWhisperError(f"{start_path} lacks outputs {sorted(missing)}")
        self.start_file = start_path.name

        self._token = np.zeros((1, 1), dtype=np.int64)  # reused input_ids buffer of the one-token steps
        self._feeds: dict[str, np.ndarray] = {INPUT_IDS: self._token}

    def start(self, encoder_states: np.ndarray, prefix: Sequence[int], padded_positions: int) -> np.ndarray:
        ids = np.asarray([prefix], dtype=np.int64)
        positions = encoder_states.shape[1]
        if self.pads_by_bias:
            bias = np.zeros(positions, dtype=np.float32)
            if padded_positions > positions:
                encoder_states = zero_pad(encoder_states, positions + 1)
                bias = np.append(bias, np.float32(np.log(padded_positions - positions)))
            self._feeds[ENCODER_ATTENTION_BIAS] = bias
        else:
            encoder_states = zero_pad(encoder_states, padded_positions)
        if self._feeds_states:
            self._feeds[ENCODER_HIDDEN_STATES] = encoder_states

        if self._empty_self_cache is None:  # Optimum's way: the prefix decoder
            first_feeds = {INPUT_IDS: ids, ENCODER_HIDDEN_STATES: encoder_states}
            if self.pads_by_bias:
                first_feeds[ENCODER_ATTENTION_BIAS] = self._feeds[ENCODER_ATTENTION_BIAS]
            outputs = self._start_session.run(self._start_outputs, first_feeds)
            self._feeds.update(zip(self._start_targets, outputs[1:]))
            return outputs[0][0]
        cross = self._start_session.run(self._start_outputs, {ENCODER_HIDDEN_STATES: encoder_states})
        self._feeds.update(zip(self._start_targets, cross))
        self._feeds.update(self._empty_self_cache)
        outputs = self._with_past.run(self._step_outputs, {**self._feeds, INPUT_IDS: ids})
        self._feeds.update(zip(self._step_targets, outputs[1:]))
        return outputs[0][0]

    def step(self, token: int) -> np.ndarray:
        self._token[0, 0] = token
        outputs = self._with_past.run(self._step_outputs, self._feeds)
        self._feeds.update(zip(self._step_targets, outputs[1:]))
        return outputs[0][0, -1]
