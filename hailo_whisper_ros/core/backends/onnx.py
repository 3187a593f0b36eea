"""ONNX Runtime on the CPU: the one session set-up of the package, the Whisper encoders and the KV-cache decoder
stepped by decoding.greedy_decode."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hailo_whisper_ros.core.backends.base import zero_pad
from hailo_whisper_ros.core.constants import N_FRAMES
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.model_dir import (
    DECODER,
    DECODER_CROSS_KV,
    DECODER_WITH_PAST,
    ENCODER_ATTENTION_BIAS,
    ENCODER_HIDDEN_STATES,
    INPUT_IDS,
    LOGIT_ROWS,
    LOGITS,
    ROWS_INDEPENDENT,
    TOKEN_COLUMNS,
    TOKEN_TABLE_INT8,
    ModelInfo,
    find_beside,
)

PAST_PREFIX = "past_key_values."
PRESENT_PREFIX = "present."


def create_ort_session(model: Path | bytes, threads: int):
    """An ONNX Runtime CPU session tuned for one request at a time (a model file, or a serialized model built in
    memory), or HailoWhisperError naming the file."""
    import onnxruntime as ort

    if not isinstance(model, bytes):
        model = Path(model)
        if not model.is_file():
            raise HailoWhisperError(f"model file not found: {model}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: ORT's warnings about graph inputs are noise for our exports
    # Each session owns a thread pool whose idle workers would spin-wait for work; with three sessions (encoder,
    # two decoders) on two cores they steal time from the session that runs: measured on jfk with 2 threads, the
    # per-token time fell from 4.5 to 2.6 ms without spinning.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Not ONNX Runtime's one global pool for all sessions (set_global_thread_pool_sizes): from Python its workers
    # always spin, and the per-token time of 16 dev clips doubled (7.7 -> 16.5 ms, 8.2 -> 14.1 ms on a second run)
    # for a peak RSS within the run-to-run spread (179-194 MB). Nor session.disable_prepacking: 157 instead of 194 MB
    # peak, but MLAS then packs every weight on every call (46.6 instead of 13.7 ms per token, interleaved).
    # No arena and no memory pattern: tensors are freed back to the allocator after each run instead of the session
    # keeping its largest set for ever. Measured with tiny.en (10 s encoder, INT8 decoder): peak resident memory
    # 306 -> 266 MB, encoder and per-token times unchanged within noise.
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    try:
        source = model if isinstance(model, bytes) else str(model)
        return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as error:  # ORT raises its own Fail/InvalidProtobuf/... types for unreadable models
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        name = "an in-memory model" if isinstance(model, bytes) else model
        raise HailoWhisperError(f"cannot load ONNX model {name}: {first_line}") from error


def padded_encoder_inputs(states: np.ndarray, padded_positions: int) -> tuple[np.ndarray, np.ndarray]:
    """Encoder states [1, T, d] and their encoder_attention_bias for a decoder graph of ours, as if zero-padded to
    ``padded_positions``: one zero position whose score is raised by log(count) stands for all the zeros
    (export/graphs.build_decoder)."""
    positions = states.shape[1]
    bias = np.zeros(positions, dtype=np.float32)
    if padded_positions > positions:
        states = zero_pad(states, positions + 1)
        bias = np.append(bias, np.float32(np.log(padded_positions - positions)))
    return states, bias


class OnnxEncoder:
    """An encoder ONNX file on the CPU: the 30 s or 10 s export, the dynamic one, or the static NCHW
    [1, n_mels, 1, frames] graph made for the Hailo compiler (so its CPU output can be checked)."""

    def __init__(self, path: Path, threads: int):
        self.path = Path(path)
        self.name = f"onnx:{self.path.name}"
        self._session = create_ort_session(self.path, threads)
        (model_input,) = self._session.get_inputs()
        self._input_name = model_input.name
        self._four_d = len(model_input.shape) == 4
        frames = model_input.shape[-1]
        self.window_frames = frames if isinstance(frames, int) else None
        self.max_frames = self.window_frames or N_FRAMES
        self.output_positions = self.window_frames // 2 if self.window_frames else None

    def encode(self, mel: np.ndarray) -> np.ndarray:
        n_mels, frames = mel.shape
        if self.window_frames is not None and frames != self.window_frames:
            raise HailoWhisperError(f"{self.path} takes {self.window_frames} mel frames, got {frames}")
        if frames % 2 or frames > self.max_frames:
            raise HailoWhisperError(
                f"{self.path} takes an even number of mel frames up to {self.max_frames}, got {frames}"
            )
        features = mel.reshape(1, n_mels, 1, frames) if self._four_d else mel[np.newaxis]
        return self._session.run(None, {self._input_name: features})[0]

    def input_gain(self, audio: np.ndarray) -> np.ndarray:
        return audio

    def close(self) -> None:
        """The session goes with the object."""


class TokenTable:
    """The INT8 step decoder's token embedding (token_table_int8.npy, [V, d] uint8), read from the file a row per
    token: ONNX Runtime kept the whole table resident beside its prepacked copies (export/writer.quantize_decoder),
    and a memory map of it did not do much better (the kernel maps the neighbours of every page touched: 8.5 MB
    resident after one 24 s utterance). A row is d bytes; reading one costs microseconds against a step's
    milliseconds, and the file stays in the page cache, which the kernel can reclaim."""

    def __init__(self, path: Path):
        try:
            self._file = open(path, "rb", buffering=0)
        except FileNotFoundError:
            raise HailoWhisperError(f"model file not found: {path} (the token table of {DECODER_WITH_PAST})") from None
        try:
            version = np.lib.format.read_magic(self._file)
            shape, _, dtype = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)(self._file)
        except ValueError as error:
            raise HailoWhisperError(f"cannot read the token table {path}: {error}") from error
        if len(shape) != 2 or dtype != np.uint8 or self._file.tell() + shape[0] * shape[1] != path.stat().st_size:
            raise HailoWhisperError(f"{path} holds {dtype} {shape} in {path.stat().st_size} bytes, expected a "
                                    "complete uint8 [tokens, dimensions] table")
        self._start, (self.tokens, self.width) = self._file.tell(), shape

    def columns(self, ids: Sequence[int]) -> np.ndarray:
        """The rows of ``ids`` as the step graph's token_columns [d, 1, S]."""
        rows = b"".join(os.pread(self._file.fileno(), self.width, self._start + int(token) * self.width)
                        for token in ids)
        if len(rows) != len(ids) * self.width:  # pread past the end returns less
            raise HailoWhisperError(f"token ids {list(ids)} are not all below the table's {self.tokens}")
        return np.frombuffer(rows, dtype=np.uint8).reshape(len(ids), self.width).T[:, np.newaxis].copy()


class OnnxKvDecoder:
    """decoder_with_past_model.onnx runs one token per step against a KV cache, so the work per token stays (nearly)
    constant. The cache is a dict keyed by its input names (past_key_values.{i}.{kind}.{key|value}): the
    cross-attention entries are computed once per utterance, only the self-attention entries change each step.

    The utterance starts one of two ways. Ours: decoder_cross_kv.onnx computes the cross-attention cache and
    decoder_with_past runs the prefix from an empty self-attention cache, so the prefix decoder (as large as the
    step decoder) is never loaded. Optimum's: decoder_model.onnx runs the prefix and yields both caches.

    Zero padding of the encoder output costs nothing with decoders that take encoder_attention_bias (ours): one
    zero position whose score is raised by log(count) stands for all of them (see export/graphs.build_decoder).
    Decoders without it (Optimum's) get the zeros themselves.
    """

    fixed_encoder_positions = None  # any length

    def __init__(self, decoder_dir: Path, info: ModelInfo, threads: int):
        decoder_dir = Path(decoder_dir)
        self.name = f"onnx:{decoder_dir.name}"
        self.max_positions = info.n_text_ctx
        step_path = decoder_dir / DECODER_WITH_PAST
        self._with_past = create_ort_session(step_path, threads)
        step_inputs = {i.name for i in self._with_past.get_inputs()}
        self.rows_independent = self._with_past.get_modelmeta().custom_metadata_map.get(ROWS_INDEPENDENT) == "1"
        self.pads_by_bias = ENCODER_ATTENTION_BIAS in step_inputs
        past_names = [name for name in step_inputs if name.startswith(PAST_PREFIX)]
        self._feeds_states = ENCODER_HIDDEN_STATES in step_inputs
        self._step_targets = [name for name in past_names if ".decoder." in name]
        self._step_outputs = [LOGITS] + [PRESENT_PREFIX + name[len(PAST_PREFIX):] for name in self._step_targets]
        missing = set(self._step_outputs) - {o.name for o in self._with_past.get_outputs()}
        if missing:
            raise HailoWhisperError(f"{step_path} lacks outputs {sorted(missing)}")
        start_path = self._open_start(decoder_dir, info, threads, past_names)
        if self._empty_self_cache is None:
            self._check_prefix_decoder(start_path, step_path, step_inputs)
        missing = set(self._start_outputs) - {o.name for o in self._start_session.get_outputs()}
        if missing:
            raise HailoWhisperError(f"{start_path} lacks outputs {sorted(missing)}")
        self.start_file = start_path.name
        self._token_table = TokenTable(decoder_dir / TOKEN_TABLE_INT8) if TOKEN_COLUMNS in step_inputs else None
        self._projects_rows = LOGIT_ROWS in step_inputs
        self._all_rows = np.arange(self.max_positions, dtype=np.int64)  # logit_rows of the steps and draft passes

        self._token = np.zeros((1, 1), dtype=np.int64)  # reused input_ids buffer of the one-token steps
        self._feeds: dict[str, np.ndarray] = {INPUT_IDS: self._token}

    def _open_start(self, decoder_dir: Path, info: ModelInfo, threads: int, past_names: list[str]) -> Path:
        """The session that starts an utterance, ours (decoder_cross_kv) if there is one, else Optimum's; its path."""
        cross_targets = [name for name in past_names if ".encoder." in name]
        try:
            cross_path = find_beside(decoder_dir, DECODER_CROSS_KV) if self.pads_by_bias else None
        except FileNotFoundError:
            cross_path = None
        if cross_path is not None:
            self._start_session = create_ort_session(cross_path, threads)
            self._start_targets = cross_targets
            self._start_outputs = [PRESENT_PREFIX + name[len(PAST_PREFIX):] for name in cross_targets]
            head_dim = info.n_text_state // info.n_text_head
            empty = np.zeros((1, info.n_text_head, 0, head_dim), dtype=np.float32)
            self._empty_self_cache = {name: empty for name in self._step_targets}
            return cross_path
        start_path = decoder_dir / DECODER
        self._start_session = create_ort_session(start_path, threads)
        # Every cache entry comes from its present.* output.
        self._start_targets = past_names
        self._start_outputs = [LOGITS] + [PRESENT_PREFIX + name[len(PAST_PREFIX):] for name in past_names]
        self._empty_self_cache = None
        return start_path

    def _check_prefix_decoder(self, start_path: Path, step_path: Path, step_inputs: set[str]) -> None:
        """Optimum's prefix decoder must take the encoder's inputs as the step decoder does."""
        first_inputs = {i.name for i in self._start_session.get_inputs()}
        if first_inputs - {ENCODER_ATTENTION_BIAS} != {INPUT_IDS, ENCODER_HIDDEN_STATES} or self.pads_by_bias != (
            ENCODER_ATTENTION_BIAS in first_inputs
        ):
            raise HailoWhisperError(
                f"{start_path} has inputs {sorted(first_inputs)}, {step_path} {sorted(step_inputs)}; expected "
                f"{INPUT_IDS} and {ENCODER_HIDDEN_STATES}, and {ENCODER_ATTENTION_BIAS} in both or neither"
            )

    def start(self, encoder_states: np.ndarray, prefix: Sequence[int], padded_positions: int,
              rows: Sequence[int] | None = None) -> np.ndarray:
        ids = np.asarray([prefix], dtype=np.int64)
        if self.pads_by_bias:
            encoder_states, bias = padded_encoder_inputs(encoder_states, padded_positions)
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
            self._bind_feeds()
            return outputs[0][0] if rows is None else outputs[0][0][list(rows)]
        cross = self._start_session.run(self._start_outputs, {ENCODER_HIDDEN_STATES: encoder_states})
        self._feeds.update(zip(self._start_targets, cross))
        self._feeds.update(self._empty_self_cache)
        outputs = self._with_past.run(self._step_outputs, {**self._feeds, **self._token_feeds(ids, rows)})
        self._feeds.update(zip(self._step_targets, outputs[1:]))
        self._bind_feeds()
        return outputs[0][0] if rows is None or self._projects_rows else outputs[0][0][list(rows)]

    def rewind(self, positions: int) -> None:
        for name, value in self._self_cache.items():
            cache = value if isinstance(value, np.ndarray) else value.numpy()
            self._self_cache[name] = np.ascontiguousarray(cache[:, :, :positions])
            self._binding.bind_cpu_input(name, self._self_cache[name])

    def step(self, token: int) -> np.ndarray:
        self._token[0, 0] = token
        return self._advance(self._token)[-1]

    def extend(self, tokens: Sequence[int]) -> np.ndarray:
        return self._advance(np.asarray([tokens], dtype=np.int64))

    def close(self) -> None:
        """The sessions go with the object."""

    def _advance(self, ids: np.ndarray) -> np.ndarray:
        """Tokens ids [1, S] through the bound step graph, their logits [S, n_vocab]: the self-attention cache stays
        in ONNX Runtime's own tensors, each call's present.* bound as the next call's past_key_values.*, so no
        cache is copied into numpy."""
        for name, value in self._token_feeds(ids).items():
            self._binding.bind_cpu_input(name, value)
        for name in self._step_outputs:  # each call's outputs are longer than the last: ORT allocates them anew
            self._binding.bind_output(name, "cpu")
        self._with_past.run_with_iobinding(self._binding)
        logits, *present = self._binding.get_outputs()
        for name, value in zip(self._step_targets, present):
            self._binding.bind_ortvalue_input(name, value)
            self._self_cache[name] = value
        return logits.numpy()[0]

    def _token_feeds(self, ids: np.ndarray, rows: Sequence[int] | None = None) -> dict[str, np.ndarray]:
        """input_ids [1, S] and, for a step decoder that takes them, their token_columns [d, 1, S] and the rows whose
        logits it projects (logit_rows: ``rows``, else all S)."""
        feeds = {INPUT_IDS: ids}
        if self._token_table is not None:
            feeds[TOKEN_COLUMNS] = self._token_table.columns(ids[0])
        if self._projects_rows:
            feeds[LOGIT_ROWS] = self._all_rows[:ids.shape[1]] if rows is None else np.asarray(rows, dtype=np.int64)
        return feeds

    def _bind_feeds(self) -> None:
        """Bind the utterance's inputs (the caches of the prefix pass) and the step's outputs."""
        self._binding = self._with_past.io_binding()
        for name, value in self._feeds.items():
            self._binding.bind_cpu_input(name, value)
        # The bound self-attention cache: the prefix pass's arrays, then each step's present.* tensors.
        self._self_cache = {name: self._feeds[name] for name in self._step_targets}
