"""Build Whisper's encoder and decoder as ONNX graphs straight from numpy weights (no PyTorch); writer.py writes
them into a model directory.

Every graph is assembled from the same blocks (layer_norm, linear, attention, mlp, encoder_layer, decoder_layer);
the variants differ only in their inputs: frame count, KV cache in or out, Hailo's NCHW front end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hailo_whisper_ros.core import model_dir as mf
from hailo_whisper_ros.export.weights import WhisperWeights

OPSET = 17
IR_VERSION = 9  # what the Hailo Dataflow Compiler reads; ONNX Runtime reads it too
LAYER_NORM_EPS = 1e-5
HAILO_FRAMES = 1000
LOGITS_MATMUL = "decoder/logits/MatMul"
EMBEDDING_T = "decoder/embeddings/weight.T"  # [d, n_vocab]: token lookup (columns) and output projection
MASK_VALUE = float(np.finfo(np.float32).min)  # additive causal mask; stays finite unlike -inf


class GraphBuilder:
    """Collects nodes and initializers; names are derived from the call order, so output is deterministic."""

    def __init__(self, weights: WhisperWeights, decomposed_layer_norm: bool = False, row_by_row: bool = False):
        self.tensors = weights.tensors
        self.info = weights.info
        self.decomposed_layer_norm = decomposed_layer_norm
        self.row_by_row = row_by_row  # attend's, for the decoder's rows-independent body
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, onnx.TensorProto] = {}
        self._constants: dict[tuple, str] = {}
        self._count = 0

    def op(
        self, op_type: str, inputs: list[str], outputs: int | list[str] = 1, name: str | None = None, **attributes
    ) -> str | list[str]:
        """Add a node; returns its output name (or names when ``outputs`` is a count > 1 or a list)."""
        self._count += 1
        names = outputs if isinstance(outputs, list) else [f"{op_type}_{self._count}_{i}" for i in range(outputs)]
        name = name or f"{op_type}_{self._count}"
        self.nodes.append(helper.make_node(op_type, inputs, names, name=name, **attributes))
        return names[0] if len(names) == 1 and not isinstance(outputs, list) else names

    def rename(self, tensor: str, name: str) -> str:
        """Give a node output its public name (a graph output) instead of adding an Identity node; the Loops'
        bodies (attend_row_by_row) read it under that name too."""
        nodes = list(self.nodes)
        while nodes:
            node = nodes.pop()
            for names in (node.input, node.output):
                for index, existing in enumerate(names):
                    if existing == tensor:
                        names[index] = name
            nodes += [n for attribute in node.attribute if attribute.type == onnx.AttributeProto.GRAPH
                      for n in attribute.g.node]
        return name

    def heads_of(self, prefix: str) -> int:
        return self.info.n_audio_head if prefix.startswith("encoder/") else self.info.n_text_head

    def weight(self, name: str, array: np.ndarray) -> str:
        """A named initializer (weights keep their canonical name so the graphs are readable)."""
        if name not in self.initializers:
            self.initializers[name] = numpy_helper.from_array(np.ascontiguousarray(array), name)
        return name

    def const(self, values, dtype=np.int64) -> str:
        """A small constant (shapes, axes, scalars), shared by value."""
        array = np.asarray(values, dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._constants:
            self._constants[key] = self.weight(f"const_{len(self._constants)}", array)
        return self._constants[key]

    def graph(self, name: str, inputs: list, outputs: list) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, list(self.initializers.values()))
        # The producer version is the exporter's, set by writer.py when it writes the file.
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="hailo_whisper_ros"
        )
        model.ir_version = IR_VERSION
        return model


# --- blocks -------------------------------------------------------------------------------------------------------


def layer_norm(g: GraphBuilder, x: str, prefix: str) -> str:
    gamma = g.weight(f"{prefix}/gamma", g.tensors[f"{prefix}/gamma"])
    beta = g.weight(f"{prefix}/beta", g.tensors[f"{prefix}/beta"])
    if not g.decomposed_layer_norm:
        return g.op("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=LAYER_NORM_EPS)
    # The primitive form PyTorch exports below opset 17; what the Hailo compiler recognises as layer norm.
    centred = g.op("Sub", [x, g.op("ReduceMean", [x], axes=[-1])])
    variance = g.op("ReduceMean", [g.op("Mul", [centred, centred])], axes=[-1])
    deviation = g.op("Sqrt", [g.op("Add", [variance, g.const(LAYER_NORM_EPS, np.float32)])])
    return g.op("Add", [g.op("Mul", [g.op("Div", [centred, deviation]), gamma]), beta])


def linear(g: GraphBuilder, x: str, prefix: str, scale_rows: int = 0) -> str:
    """x @ W.T + b, with W stored transposed. The first ``scale_rows`` output rows (the query) are multiplied by
    head_dim**-0.5 here rather than in the graph: exact for Whisper's head_dim 64, a power of 4."""
    weight = g.tensors[f"{prefix}/weight"].copy()
    bias = g.tensors[f"{prefix}/bias"].copy()
    if scale_rows:
        scale = np.float32(weight.shape[1] // g.heads_of(prefix)) ** -0.5
        weight[:scale_rows] *= scale
        bias[:scale_rows] *= scale
    projected = g.op("MatMul", [x, g.weight(f"{prefix}/weight.T", weight.T)], name=f"{prefix}/MatMul")
    return g.op("Add", [projected, g.weight(f"{prefix}/bias", bias)])


def gelu(g: GraphBuilder, x: str) -> str:
    """Exact GELU, x * 0.5 * (1 + erf(x / sqrt 2)); ONNX Runtime fuses this pattern."""
    erf = g.op("Erf", [g.op("Div", [x, g.const(np.sqrt(2.0), np.float32)])])
    return g.op("Mul", [g.op("Mul", [x, g.op("Add", [erf, g.const(1.0, np.float32)])]), g.const(0.5, np.float32)])


def split_heads(g: GraphBuilder, x: str, parts: int, heads: int, head_dim: int) -> list[str]:
    """[1, S, parts*d] -> ``parts`` tensors [1, heads, S, head_dim] with one Reshape, Transpose and Split."""
    shaped = g.op("Reshape", [x, g.const([1, -1, parts * heads, head_dim])])
    transposed = g.op("Transpose", [shaped], perm=[0, 2, 1, 3])
    return [transposed] if parts == 1 else g.op("Split", [transposed], outputs=parts, axis=1)


def attend(g: GraphBuilder, q: str, k: str, v: str, mask: str | None, width: int, heads_one_by_one: int = 0,
           causal: bool = False, scores: list[str] | None = None) -> str:
    """softmax(q k^T + mask) v for pre-scaled q, then heads merged back to [1, S, width].

    ``heads_one_by_one`` (the head count; the encoder): each head's scores, softmax and context in turn, so that
    ONNX Runtime, running the nodes in this order without an arena, holds one head's [S, S] scores at a time instead
    of all of them (the encoder over 28 s: 8 instead of 47 MB per score tensor).

    With g.row_by_row and a mask (the decoder's attentions): attend_row_by_row. ``scores``: gets the scores
    q k^T [1, heads, S, keys] before the mask (the alignment heads' pass, build_alignment)."""
    if g.row_by_row and mask is not None:
        return attend_row_by_row(g, q, k, v, mask, width, causal)
    if heads_one_by_one:
        splits = [g.op("Split", [t], outputs=heads_one_by_one, axis=1) for t in (q, k, v)]
        contexts = [attend_one(g, *head, mask) for head in zip(*splits)]
        context = g.op("Concat", contexts, axis=1)
    else:
        context = attend_one(g, q, k, v, mask, scores)
    merged = g.op("Transpose", [context], perm=[0, 2, 1, 3])
    return g.op("Reshape", [merged, g.const([1, -1, width])])


def attend_row_by_row(g: GraphBuilder, q: str, k: str, v: str, mask: str, width: int, causal: bool) -> str:
    """attend for each of the S query rows on its own, in a Loop: row i runs attend_one exactly as a one-token step
    at its position does, over the keys that step had (the first P + i + 1 of a ``causal`` attention, all of the
    cross-attention's). So a pass over several tokens gives, bit for bit, the logits of one-token steps, which
    speculative decoding (core/decoding.greedy_decode's draft) needs. Running the S rows together would not: an
    S-row product may sum in another order than a one-row one, and MLAS does not sum a row's weights x values in
    the same order over K keys and over K plus masked ones (measured: 2e-6 apart over 7 and 7 + 9 keys; on dev
    speech a pass's rows then differed from their steps by up to 1e-5 in the logits)."""
    rows = g.op("Shape", [q], start=2, end=3)
    cached = g.op("Sub", [g.op("Shape", [k], start=2, end=3), rows])  # P (causal); unused for the cross-attention
    outer_nodes, g.nodes = g.nodes, []
    g._count += 1
    index, condition = f"row_loop_{g._count}/index", f"row_loop_{g._count}/condition"
    row = g.op("Unsqueeze", [index, g.const([0])])
    next_row = g.op("Add", [row, g.const([1])])
    q_row = g.op("Slice", [q, row, next_row, g.const([2])])
    if causal:
        seen = g.op("Add", [cached, next_row])  # this row's step attended over P + i + 1 positions
        k_row, v_row = (g.op("Slice", [t, g.const([0]), seen, g.const([2])]) for t in (k, v))
        mask_row = g.op("Slice", [mask, g.op("Concat", [row, g.const([0])], axis=0),
                                  g.op("Concat", [next_row, seen], axis=0), g.const([0, 1])])
    else:
        k_row, v_row, mask_row = k, v, mask
    context = attend_one(g, q_row, k_row, v_row, mask_row)
    kept = g.op("Identity", [condition])
    body_nodes, g.nodes = g.nodes, outer_nodes
    body = helper.make_graph(
        body_nodes, f"row_loop_{g._count}",
        [_tensor(index, TensorProto.INT64, []), _tensor(condition, TensorProto.BOOL, [])],
        [_tensor(kept, TensorProto.BOOL, []), _tensor(context, TensorProto.FLOAT, None)],
    )
    trips = g.op("Squeeze", [rows, g.const([0])])
    contexts = g.op("Loop", [trips, ""], body=body)  # [S, 1, heads, 1, head_dim]: row-major as [1, S, width]
    return g.op("Reshape", [contexts, g.const([1, -1, width])])


def attend_one(g: GraphBuilder, q: str, k: str, v: str, mask: str | None, kept: list[str] | None = None) -> str:
    scores = g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 1, 3, 2])])
    if kept is not None:
        kept.append(scores)
    if mask is not None:
        scores = g.op("Add", [scores, mask])
    return g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])


@dataclass
class Cache:
    """Key/value tensors of one attention, [1, heads, positions, head_dim]."""

    key: str
    value: str


def self_attention(g: GraphBuilder, x: str, prefix: str, past: Cache | None = None, mask: str | None = None,
                   heads_one_by_one: bool = False):
    """Pre-norm self-attention with fused QKV projection. Returns (residual output, the full key/value cache)."""
    width = g.tensors[f"{prefix}/linear_1/weight"].shape[0]
    heads = g.heads_of(prefix)
    normed = layer_norm(g, x, f"{prefix}/layer_norm")
    q, k, v = split_heads(g, linear(g, normed, f"{prefix}/linear_0", scale_rows=width), 3, heads, width // heads)
    if past is not None:
        k = g.op("Concat", [past.key, k], axis=2)
        v = g.op("Concat", [past.value, v], axis=2)
    context = attend(g, q, k, v, mask, width, heads if heads_one_by_one else 0, causal=True)
    return g.op("Add", [x, linear(g, context, f"{prefix}/linear_1")]), Cache(k, v)


def cross_attention_cache(g: GraphBuilder, encoder_states: str, prefix: str) -> Cache:
    """The cross-attention key/value of the encoder output: one fused [d, 2d] projection."""
    width = g.tensors[f"{prefix}/linear_0/weight"].shape[0]
    heads = g.heads_of(prefix)
    k, v = split_heads(g, linear(g, encoder_states, f"{prefix}/linear_1"), 2, heads, width // heads)
    return Cache(k, v)


def cross_attention(g: GraphBuilder, x: str, prefix: str, cache: Cache, bias: str,
                    scores: list[str] | None = None) -> str:
    """``bias`` is added to the attention scores of each encoder position (encoder_attention_bias); ``scores``
    gets the scores before it (attend)."""
    width = g.tensors[f"{prefix}/linear_0/weight"].shape[0]
    heads = g.heads_of(prefix)
    normed = layer_norm(g, x, f"{prefix}/layer_norm")
    (q,) = split_heads(g, linear(g, normed, f"{prefix}/linear_0", scale_rows=width), 1, heads, width // heads)
    context = attend(g, q, cache.key, cache.value, bias, width, scores=scores)
    return g.op("Add", [x, linear(g, context, f"{prefix}/linear_2")])


def mlp(g: GraphBuilder, x: str, prefix: str) -> str:
    hidden = gelu(g, linear(g, layer_norm(g, x, f"{prefix}/layer_norm"), f"{prefix}/linear_0"))
    return g.op("Add", [x, linear(g, hidden, f"{prefix}/linear_1")])


def encoder_layer(g: GraphBuilder, x: str, prefix: str, heads_one_by_one: bool) -> str:
    x, _ = self_attention(g, x, f"{prefix}/self_attention", heads_one_by_one=heads_one_by_one)
    return mlp(g, x, f"{prefix}/ffn")


def decoder_layer(g: GraphBuilder, x: str, prefix: str, mask: str, past: Cache | None, cross: Cache, bias: str):
    x, self_cache = self_attention(g, x, f"{prefix}/self_attention", past, mask)
    x = cross_attention(g, x, f"{prefix}/attention", cross, bias)
    return mlp(g, x, f"{prefix}/ffn"), self_cache


# --- graphs -------------------------------------------------------------------------------------------------------


def _tensor(name: str, elem_type: int, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, shape)


def build_encoder(weights: WhisperWeights, frames: int | None, hailo: bool = False) -> onnx.ModelProto:
    """Log-mel [1, n_mels, frames] -> [1, frames/2, d]. ``frames=None``: any even count up to 2*n_audio_ctx.
    ``hailo``: NCHW input [1, n_mels, 1, frames], Conv2d with (1, 3) kernels, primitive layer norm."""
    info = weights.info
    g = GraphBuilder(weights, decomposed_layer_norm=hailo)
    tensors = weights.tensors
    time_axis = frames if frames is not None else "frames"
    input_shape = [1, info.n_mels, 1, time_axis] if hailo else [1, info.n_mels, time_axis]

    def conv(x: str, name: str, stride: int) -> str:
        prefix = f"encoder/{name}"
        kernel = tensors[f"{prefix}/weight"]
        if hailo:
            kernel = kernel[:, :, None, :]
        pads = [0, 1, 0, 1] if hailo else [1, 1]
        strides = [1, stride] if hailo else [stride]
        weight = g.weight(f"{prefix}/weight", kernel)
        bias = g.weight(f"{prefix}/bias", tensors[f"{prefix}/bias"])
        return gelu(g, g.op("Conv", [x, weight, bias], pads=pads, strides=strides))

    x = conv(conv(mf.INPUT_FEATURES, "conv1", 1), "conv2", 2)
    if hailo:
        x = g.op("Reshape", [x, g.const([1, info.n_audio_state, -1])])
    x = g.op("Transpose", [x], perm=[0, 2, 1])  # [1, positions, d]
    positions = tensors["encoder/position_encodings/encodings"]
    if frames is not None:
        embedding = g.weight("encoder/position_encodings/encodings", positions[: frames // 2])
    else:  # slice the table to the runtime length
        length = g.op("Gather", [g.op("Shape", [x]), g.const([1])])
        table = g.weight("encoder/position_encodings/encodings", positions)
        embedding = g.op("Slice", [table, g.const([0]), length, g.const([0])])
    x = g.op("Add", [x, embedding])
    for layer in range(info.n_audio_layer):
        x = encoder_layer(g, x, f"encoder/layer_{layer}", heads_one_by_one=not hailo)  # the Hailo compiler's form as is
    x = g.rename(layer_norm(g, x, "encoder/layer_norm"), mf.LAST_HIDDEN_STATE)
    positions_out = frames // 2 if frames is not None else "positions"
    return g.graph(
        "whisper_encoder",
        [_tensor(mf.INPUT_FEATURES, TensorProto.FLOAT, input_shape)],
        [_tensor(x, TensorProto.FLOAT, [1, positions_out, info.n_audio_state])],
    )


def build_decoder(weights: WhisperWeights, with_past: bool, row_by_row: bool = False) -> onnx.ModelProto:
    """Token ids -> logits and KV cache, Optimum's interface (core/model_dir.py).

    Without past: input_ids [1, S] and encoder_hidden_states -> logits, self- and cross-attention caches.
    With past: input_ids [1, S] continue a cache of P positions (P read from the cache's shape) -> logits and the
    grown self-attention cache; the cross-attention cache is only read.

    Both also take encoder_attention_bias [T] (not in Optimum's interface), added to the cross-attention scores. It
    makes zero-padding the encoder output free: P zero positions all have key 0 (Whisper's key projection has no
    bias) and value = the value bias, so they act exactly like one zero position whose score is raised by log(P).

    ``row_by_row``: attention row by row (attend_row_by_row), the body of the INT8 decoder's draft passes."""
    info = weights.info
    g = GraphBuilder(weights, row_by_row=row_by_row)
    inputs, past, cross, start = _decoder_inputs(g, with_past)
    embedding_t, x, end = _embed_tokens(g, start)
    mask = _causal_mask(g, start, end)
    outputs = [_tensor(mf.LOGITS, TensorProto.FLOAT, [1, "decoder_sequence_length", info.n_vocab])]
    for layer in range(info.n_text_layer):
        x, self_cache = decoder_layer(
            g, x, f"decoder/layer_{layer}", mask, past[layer], cross[layer], mf.ENCODER_ATTENTION_BIAS
        )
        present = [(self_cache, "decoder")] + ([] if with_past else [(cross[layer], "encoder")])
        outputs += _present_outputs(g, layer, present)
    x = layer_norm(g, x, "decoder/layer_norm")
    g.op("MatMul", [x, embedding_t], outputs=[mf.LOGITS], name=LOGITS_MATMUL)
    return g.graph("whisper_decoder_with_past" if with_past else "whisper_decoder", inputs, outputs)


def _decoder_inputs(g: GraphBuilder, with_past: bool, layers: int | None = None
                    ) -> tuple[list, list[Cache | None], list[Cache], str]:
    """The decoder's inputs; each layer's self-attention cache coming in (None without past) and cross-attention
    cache (of the first ``layers`` without past, all by default); and the position of the first new token (P,
    shape [1])."""
    info = g.info
    heads, head_dim = info.n_text_head, info.n_text_state // info.n_text_head
    float_type = TensorProto.FLOAT
    inputs = [_tensor(mf.INPUT_IDS, TensorProto.INT64, [1, "decoder_sequence_length"])]
    if with_past:
        past = [
            Cache(mf.past_name(i, "decoder", "key"), mf.past_name(i, "decoder", "value"))
            for i in range(info.n_text_layer)
        ]
        cross = [
            Cache(mf.past_name(i, "encoder", "key"), mf.past_name(i, "encoder", "value"))
            for i in range(info.n_text_layer)
        ]
        past_shape = [1, heads, "past_decoder_sequence_length", head_dim]
        encoder_kv_shape = [1, heads, "encoder_sequence_length", head_dim]
        for self_cache, cross_cache in zip(past, cross):
            inputs += [_tensor(name, float_type, past_shape) for name in (self_cache.key, self_cache.value)]
            inputs += [_tensor(name, float_type, encoder_kv_shape) for name in (cross_cache.key, cross_cache.value)]
        start = g.op("Gather", [g.op("Shape", [past[0].key]), g.const([2])])  # P, shape [1]
    else:
        inputs.append(_tensor(mf.ENCODER_HIDDEN_STATES, float_type, [1, "encoder_sequence_length", info.n_audio_state]))
        past = [None] * info.n_text_layer
        cross = [
            cross_attention_cache(g, mf.ENCODER_HIDDEN_STATES, f"decoder/layer_{i}/attention")
            for i in range(info.n_text_layer if layers is None else layers)
        ]
        start = g.const([0])
    inputs.append(_tensor(mf.ENCODER_ATTENTION_BIAS, float_type, ["encoder_sequence_length"]))
    return inputs, past, cross, start


def _embed_tokens(g: GraphBuilder, start: str) -> tuple[str, str, str]:
    """The new tokens' embeddings plus their positions' encodings; returns the transposed embedding (the output
    projection's weight too), the sum, and the position after the last new token (P+S, shape [1])."""
    # The embedding is stored once, transposed, for the output projection; token lookup gathers its columns.
    embedding_t = g.weight(EMBEDDING_T, g.tensors["decoder/embeddings/weight"].T)
    tokens = g.op("Transpose", [g.op("Gather", [embedding_t, mf.INPUT_IDS], axis=1)], perm=[1, 2, 0])
    length = g.op("Gather", [g.op("Shape", [mf.INPUT_IDS]), g.const([1])])  # S, shape [1]
    end = g.op("Add", [start, length])
    table = g.weight("decoder/position_encodings/encodings", g.tensors["decoder/position_encodings/encodings"])
    return embedding_t, g.op("Add", [tokens, g.op("Slice", [table, start, end, g.const([0])])]), end


def _causal_mask(g: GraphBuilder, start: str, end: str) -> str:
    """Causal mask [S, P+S]: new token i (absolute position P+i) sees positions j <= P+i."""
    first, last = (g.op("Squeeze", [bound, g.const([0])]) for bound in (start, end))
    columns = g.op("Range", [g.const(0), last, g.const(1)])
    rows = g.op("Unsqueeze", [g.op("Range", [first, last, g.const(1)]), g.const([1])])
    future = g.op("Greater", [columns, rows])
    return g.op("Where", [future, g.const(MASK_VALUE, np.float32), g.const(0.0, np.float32)])


def _present_outputs(g: GraphBuilder, layer: int, present: list[tuple[Cache, str]]) -> list[onnx.ValueInfoProto]:
    """A layer's caches going out ("decoder": self-attention, "encoder": cross-attention), under Optimum's names."""
    info = g.info
    heads, head_dim = info.n_text_head, info.n_text_state // info.n_text_head
    outputs = []
    for cache, kind in present:
        names = [g.rename(cache.key, mf.present_name(layer, kind, "key")),
                 g.rename(cache.value, mf.present_name(layer, kind, "value"))]
        positions = "total_sequence_length" if kind == "decoder" else "encoder_sequence_length"
        outputs += [_tensor(name, TensorProto.FLOAT, [1, heads, positions, head_dim]) for name in names]
    return outputs


def build_cross_kv(weights: WhisperWeights) -> onnx.ModelProto:
    """Encoder states -> the cross-attention caches of every decoder layer (decoder_model.onnx's present.*.encoder.*
    outputs), so that decoder_with_past_model.onnx can run the prefix without decoder_model.onnx."""
    info = weights.info
    g = GraphBuilder(weights)
    heads, head_dim = info.n_text_head, info.n_text_state // info.n_text_head
    outputs = []
    for layer in range(info.n_text_layer):
        cache = cross_attention_cache(g, mf.ENCODER_HIDDEN_STATES, f"decoder/layer_{layer}/attention")
        for tensor, kv in ((cache.key, "key"), (cache.value, "value")):
            name = g.rename(tensor, mf.present_name(layer, "encoder", kv))
            outputs.append(_tensor(name, TensorProto.FLOAT, [1, heads, "encoder_sequence_length", head_dim]))
    states = _tensor(mf.ENCODER_HIDDEN_STATES, TensorProto.FLOAT, [1, "encoder_sequence_length", info.n_audio_state])
    return g.graph("whisper_decoder_cross_kv", [states], outputs)


def build_alignment(weights: WhisperWeights) -> onnx.ModelProto:
    """The alignment heads' pass (core/word_timing.py): input_ids [1, S] (forced prefix, text tokens, EOT) and
    encoder_hidden_states [1, T, d] with encoder_attention_bias [T] as build_decoder takes them -> alignment_scores
    [heads, S, T], the cross-attention scores q k^T of ModelInfo.alignment_heads, in that order, before the bias
    and the softmax (openai/whisper's timing.py softmaxes them over the audio's frames only). The decoder without
    past, cut after the last layer that holds an alignment head: no logits, no layer after it."""
    info = weights.info
    heads = info.alignment_heads
    last = max(layer for layer, _ in heads)
    g = GraphBuilder(weights)
    inputs, _, cross, start = _decoder_inputs(g, with_past=False, layers=last + 1)
    _, x, end = _embed_tokens(g, start)
    mask = _causal_mask(g, start, end)
    kept = []
    for layer in range(last + 1):
        prefix = f"decoder/layer_{layer}"
        x, _ = self_attention(g, x, f"{prefix}/self_attention", None, mask)
        layer_scores: list[str] = []
        x = cross_attention(g, x, f"{prefix}/attention", cross[layer], mf.ENCODER_ATTENTION_BIAS, layer_scores)
        chosen = [head for head_layer, head in heads if head_layer == layer]
        if chosen:
            kept.append(g.op("Gather", [layer_scores[0], g.const(chosen)], axis=1))
        if layer < last:
            x = mlp(g, x, f"{prefix}/ffn")
    scores = g.op("Squeeze", [g.op("Concat", kept, axis=1), g.const([0])])
    g.rename(scores, mf.ALIGNMENT_SCORES)
    output = _tensor(mf.ALIGNMENT_SCORES, TensorProto.FLOAT, [len(heads), "decoder_sequence_length",
                                                            "encoder_sequence_length"])
    return g.graph("whisper_decoder_alignment_heads", inputs, [output])
