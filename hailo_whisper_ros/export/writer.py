"""Write a model directory in the layout of hailo_whisper_ros/core/model_dir.py: the graphs of graphs.py, the INT8
decoders and the partially INT8 dynamic encoder quantized from them (export/quantize.py), the whisper.cpp model if
asked (export/ggml.py), the tokenizer and model info, and a stamp that tells whether the export is up to date.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hailo_whisper_ros.core import model_dir as mf
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.export.graphs import (
    EMBEDDING_T,
    HAILO_FRAMES,
    build_alignment,
    build_cross_kv,
    build_decoder,
    build_encoder,
)
from hailo_whisper_ros.export.hailo_assets import hailo_encoder_difference
from hailo_whisper_ros.export.quantize import quantize_encoder, quantize_matmuls
from hailo_whisper_ros.export.weights import WhisperWeights

# Bump whenever the graphs or the files written change, so that existing exports are rebuilt. Written into every
# ONNX file as its producer version, and into the stamp.
EXPORTER_VERSION = 14
STAMP = "export_stamp.json"


def _save(model: onnx.ModelProto, path: Path) -> None:
    """Check, then write atomically so a killed export never leaves a truncated file behind."""
    model.producer_version = str(EXPORTER_VERSION)
    onnx.checker.check_model(model, full_check=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(model.SerializeToString(deterministic=True))
    os.replace(partial, path)


def quantize_decoder(source: Path, target: Path, n_text_layer: int, row_by_row_source: Path | None = None,
                     token_table: Path | None = None) -> None:
    """Dynamic INT8 quantization of the weight MatMuls (activations are quantized per call at run time). With
    ``row_by_row_source`` (the step decoder built with graphs.attend_row_by_row), quantized too with activations
    per row: the body that runs the passes over a draft (_choose_body). With ``token_table``, the INT8 token
    embedding is written there token by token and the graph takes its looked-up columns as the input
    token_columns: ONNX Runtime drops an initializer that only prepacking kernels read, so the logits MatMuls' INT8
    weights are then held only prepacked, while a lookup inside the graph kept the table a further time (measured
    with tiny.en: the step session 87.6 -> 68.5 MB). The runtime reads the decoded tokens' rows from the file
    (core/backends/onnx.TokenTable); the same bytes reach the same Cast, so the logits are unchanged.

    Measured on the 61 speech_dev clips with tiny.en (greedy transcripts identical to FP32): QInt8 per tensor
    54, QInt8 per channel 51, QUInt8 per channel 56 (u8 x u8 does not saturate in AVX2's int16 sums), 58 with the
    INT8 token lookup added below; 59 when the logits MatMul stays FP32, but that forgoes most of the speed-up.
    WER against the references is the same for all (0.077-0.084). The cross-attention K/V projection runs once
    per utterance, so it stays FP32: quantizing it would cost accuracy for no per-token gain."""
    columns_as_input = token_table is not None
    model = _quantized(source, n_text_layer, columns_as_input)
    if row_by_row_source is not None:
        per_row = _quantized(row_by_row_source, n_text_layer, columns_as_input)
        _quantize_activations_per_row(per_row)
        model = _choose_body(model, per_row)
        _project_logits_once(model)
    if token_table is not None:
        (table,) = [tensor for tensor in model.graph.initializer if tensor.name == f"{EMBEDDING_T}_quantized"]
        partial = token_table.with_name(token_table.name + ".partial")
        with open(partial, "wb") as file:
            np.save(file, np.ascontiguousarray(numpy_helper.to_array(table).T))  # [V, d]: a token's row is contiguous
        os.replace(partial, token_table)
    _save(model, target)


def _quantized(source: Path, n_text_layer: int, columns_as_input: bool) -> onnx.ModelProto:
    partial = source.with_name(source.name + ".int8.partial")
    quantize_matmuls(source, partial,
                     nodes_to_exclude=[f"decoder/layer_{i}/attention/linear_1/MatMul" for i in range(n_text_layer)])
    try:
        model = onnx.load(partial)
    finally:
        partial.unlink()
    _look_up_tokens_in_quantized_embedding(model, columns_as_input)
    _sort_topologically(model.graph)
    return model


def _sort_topologically(graph: onnx.GraphProto) -> None:
    """quantize_dynamic sorts the nodes by their inputs alone, and so may put a Loop (graphs.attend_row_by_row)
    before the nodes whose outputs only its body reads. Sort again with those outer names counted as inputs,
    keeping the given order wherever it is already valid."""
    def reads(node: onnx.NodeProto) -> set[str]:
        names = set(node.input)
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                for inner in attribute.g.node:
                    names |= reads(inner)
        return names

    produced_by = {output: index for index, node in enumerate(graph.node) for output in node.output}
    after = [sorted({produced_by[name] for name in reads(node) if name in produced_by}) for node in graph.node]
    placed, order = set(), []

    def place(index: int) -> None:
        if index not in placed:
            placed.add(index)
            for before in after[index]:
                place(before)
            copy = onnx.NodeProto()
            copy.CopyFrom(graph.node[index])
            order.append(copy)

    for index in range(len(graph.node)):
        place(index)
    graph.ClearField("node")
    graph.node.extend(order)


def _choose_body(per_call: onnx.ModelProto, per_row: onnx.ModelProto) -> onnx.ModelProto:
    """One step graph with two bodies and an If between them.

    A pass over a draft (several tokens after the prefix) runs ``per_row``: activations quantized per row, and
    attention row by row (graphs.attend_row_by_row), so that its rows are independent and its logits are bit for
    bit those of one-token steps. Everything else runs ``per_call``, the plain graph with quantize_dynamic's own
    quantization, as fast as it is alone (ONNX Runtime fuses it into DynamicQuantizeMatMul): the one-token steps,
    which compute exactly what a row of ``per_row`` does, and the prefix pass (from an empty cache), which so
    stays the same with or without drafts. The branches read the outer graph's initializers, and an
    initializer of ``per_row`` with the contents of one of ``per_call`` (every weight) is stored once. ONNX
    Runtime still prepacks the INT8 weights once per branch (without prepacking a step takes three times as long),
    so the largest, the logits projection's, is taken out of both (_project_logits_once)."""
    graph = per_call.graph
    outer = {tensor.name for tensor in graph.input}
    per_call_names, per_row_names = _share_initializers(graph, per_row.graph)
    past = mf.past_name(0, "decoder", "key")
    graph.initializer.extend(numpy_helper.from_array(np.array([value], dtype=np.int64), f"body/{name}")
                             for name, value in (("one", 1), ("zero", 0)))
    choice = [
        _node("Shape", [mf.INPUT_IDS], "body/rows", start=1, end=2),
        _node("Shape", [past], "body/cached", start=2, end=3),
        _node("Equal", ["body/rows", "body/one"], "body/one_row"),
        _node("Equal", ["body/cached", "body/zero"], "body/prefix_pass"),
        _node("Or", ["body/one_row", "body/prefix_pass"], "body/per_call"),
        helper.make_node(
            "If", ["body/per_call"], [output.name for output in graph.output], "body/If",
            then_branch=_branch(graph, "per_call/", per_call_names, outer),
            else_branch=_branch(per_row.graph, "per_row/", per_row_names, outer),
        ),
    ]
    graph.ClearField("node")
    graph.ClearField("value_info")
    graph.node.extend(choice)
    domains = {opset.domain: opset for opset in list(per_row.opset_import) + list(per_call.opset_import)}
    per_call.ClearField("opset_import")
    per_call.opset_import.extend(domains.values())
    per_call.metadata_props.add(key=mf.ROWS_INDEPENDENT, value="1")
    return per_call


def _node(op_type: str, inputs: list[str], output: str, **attributes) -> onnx.NodeProto:
    """A node with one output, named after it."""
    return helper.make_node(op_type, inputs, [output], f"{output}/{op_type}", **attributes)


def _share_initializers(graph: onnx.GraphProto, per_row: onnx.GraphProto) -> tuple[dict[str, str], dict[str, str]]:
    """Adds ``per_row``'s initializers to ``graph``, each under per_row/ unless ``graph`` already holds one with the
    same contents. Returns, for ``graph`` and for ``per_row``, the name each of its initializers has in ``graph``."""
    by_contents = {_contents(tensor): tensor.name for tensor in graph.initializer}
    per_call_names = {tensor.name: tensor.name for tensor in graph.initializer}
    per_row_names = {}
    for tensor in per_row.initializer:
        name, contents = tensor.name, _contents(tensor)
        if contents not in by_contents:
            by_contents[contents] = tensor.name = f"per_row/{name}"
            graph.initializer.append(tensor)
        per_row_names[name] = by_contents[contents]
    return per_call_names, per_row_names


def _branch(body: onnx.GraphProto, prefix: str, initializers: dict[str, str], outer: set[str]) -> onnx.GraphProto:
    """``body``'s nodes as a branch of the If: every name the branch's own (``prefix``), except the outer graph's
    inputs (``outer``) and the initializers, read under their name in the outer graph (``initializers``)."""

    def outer_name(value: str) -> str:
        return value if not value or value in outer else initializers.get(value, prefix + value)

    outputs = [onnx.ValueInfoProto(name=prefix + output.name, type=output.type) for output in body.output]
    return helper.make_graph(_renamed(body.node, prefix, outer_name), prefix.strip("/"), [], outputs)


def _renamed(nodes, prefix: str, outer_name) -> list[onnx.NodeProto]:
    """Copies of the nodes with every name the branch's own, in the Loops' bodies too (they read outer names)."""
    copies = []
    for node in nodes:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = prefix + node.name
        copy.input[:] = [outer_name(value) for value in node.input]
        copy.output[:] = [outer_name(value) for value in node.output]
        for attribute in copy.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                inner = attribute.g
                inner_nodes = _renamed(inner.node, prefix, outer_name)
                inner.ClearField("node")
                inner.node.extend(inner_nodes)
                for value_info in list(inner.input) + list(inner.output):
                    value_info.name = outer_name(value_info.name)
        copies.append(copy)
    return copies


def _project_logits_once(model: onnx.ModelProto) -> None:
    """Both bodies of _choose_body end in the logits projection, and ONNX Runtime prepacks its INT8 weights once
    per body (tiny.en: 20 MB each). Project once, after the If: the bodies yield the final layer norm's output, and
    the per-row body's projection moves out of it, its activation range taken per row for a draft pass and over
    the whole call otherwise (Where on the If's condition; max and min are exact, so over all rows they are those
    of the fused DynamicQuantizeMatMul the plain body had). Its arithmetic is the per-row body's, which computes a
    one-token step's logits bit for bit, so every call's logits stay what they were."""
    graph = model.graph
    choice = next(node for node in graph.node if node.op_type == "If")
    per_call_flag = choice.input[0]
    branches = {attribute.name: attribute.g for attribute in choice.attribute}
    normed = "decoder/normed"
    cut_off = {}  # branch -> (its projection's nodes in graph order, its logits' name, its layer norm's output)
    for name, body in branches.items():
        produced_by = {output: node for node in body.node for output in node.output}
        tail, pending = [], [body.output[0].name]
        while pending:  # the nodes between the final layer norm and the logits
            node = produced_by.get(pending.pop())
            if node is not None and node.op_type != "LayerNormalization" and node not in tail:
                tail.append(node)
                pending += node.input
        (body_normed,) = {value for node in tail for value in node.input
                          if value in produced_by and produced_by[value].op_type == "LayerNormalization"}
        d_model = next(t.dims[0] for t in graph.initializer if t.name == produced_by[body_normed].input[1])
        cut_off[name] = [node for node in body.node if node in tail], body.output[0].name, body_normed
        kept = [node for node in body.node if node not in tail]
        body.ClearField("node")
        body.node.extend(kept)
        body.output[0].CopyFrom(helper.make_tensor_value_info(
            body_normed, TensorProto.FLOAT, [1, "decoder_sequence_length", d_model]))
    choice.output[0] = normed
    per_row_projection, per_row_logits, per_row_normed = cut_off["else_branch"]
    projection = []
    for node in per_row_projection:
        node.input[:] = [normed if value == per_row_normed else value for value in node.input]
        node.output[:] = [mf.LOGITS if value == per_row_logits else value for value in node.output]
        if node.op_type in ("ReduceMax", "ReduceMin"):  # per row [1, S, 1]; over the call when not a draft pass
            per_row, over_call = node.output[0], node.output[0] + "/over_call"
            node.output[0] = per_row + "/per_row"
            projection += [node,
                           helper.make_node(node.op_type, [per_row + "/per_row"], [over_call + "/rows"],
                                            over_call + "/" + node.op_type, axes=[1]),
                           helper.make_node("Where", [per_call_flag, over_call + "/rows", per_row + "/per_row"],
                                            [per_row], per_row + "/Where")]
            continue
        projection.append(node)
    graph.node.extend(_project_only_rows(graph, projection, normed))


def _project_only_rows(graph: onnx.GraphProto, projection: list[onnx.NodeProto], normed: str) -> list[onnx.NodeProto]:
    """The projection of the rows the input logit_rows names only: the prefix pass needs two of its S rows' logits
    (the start of transcript's, for p(no_speech), and the last), and the projection of 30 rows took 9.7 ms of CPU
    against 2.3 for two (tiny.en, 2 threads, the MatMulInteger alone). The activations' range is still taken over
    every row before the rows are gathered, and each logit is the same integer dot product times the same scales,
    so the logits of the rows kept are bit for bit what they were."""
    graph.input.append(helper.make_tensor_value_info(mf.LOGIT_ROWS, TensorProto.INT64, ["logit_rows"]))
    ranges = [node.output[0] for node in projection if node.op_type == "Where"]
    gathers = [helper.make_node("Gather", [value + "/all_rows", mf.LOGIT_ROWS], [value], value + "/Gather", axis=1)
               for value in ranges]
    gathers.append(helper.make_node("Gather", [normed, mf.LOGIT_ROWS], [normed + "/rows"], normed + "/Gather", axis=1))
    for node in projection:
        if node.op_type == "Where":
            node.output[0] += "/all_rows"
        elif node.op_type not in ("ReduceMax", "ReduceMin"):
            node.input[:] = [normed + "/rows" if value == normed else value for value in node.input]
    last_range = max(index for index, node in enumerate(projection) if node.op_type == "Where")
    return projection[:last_range + 1] + gathers + projection[last_range + 1:]


def _contents(tensor: onnx.TensorProto) -> tuple:
    return tensor.data_type, tuple(tensor.dims), numpy_helper.to_array(tensor).tobytes()


def _quantize_activations_per_row(model: onnx.ModelProto) -> None:
    """quantize_dynamic's DynamicQuantizeLinear gives all S token rows of a call one scale and zero point, so a
    pass over several tokens computes other logits than one-token steps (measured: up to 1.9 apart), and a draft
    cannot be verified exactly (core/decoding.greedy_decode). Quantize each row on its own instead, with the same
    arithmetic (range including 0, /255, round half to even): for one row it is exactly DynamicQuantizeLinear.
    MatMulInteger takes one zero point only, so each row's is subtracted afterwards as zero point x the column
    sums of the centred weights, in int32 and so exactly."""
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    zero = _constant(graph, "per_row/zero", 0.0, np.float32)
    levels = _constant(graph, "per_row/levels", 255.0, np.float32)
    rows_zero_points: dict[str, str] = {}  # quantized activation -> its rows' zero points (int32)
    nodes = []
    for node in graph.node:
        if node.op_type == "DynamicQuantizeLinear":
            nodes += _quantize_rows(node, zero, levels)
            rows_zero_points[node.output[0]] = f"{node.name}/per_row/zero_point_int32"
        elif node.op_type == "MatMulInteger" and node.input[0] in rows_zero_points:
            nodes += _subtract_rows_zero_points(graph, initializers, node, rows_zero_points[node.input[0]])
        else:
            nodes.append(node)
    graph.ClearField("node")
    graph.node.extend(nodes)


def _constant(graph: onnx.GraphProto, name: str, value, dtype) -> str:
    graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
    return name


def _quantize_rows(node: onnx.NodeProto, zero: str, levels: str) -> list[onnx.NodeProto]:
    """The nodes that replace a DynamicQuantizeLinear ``node``: its outputs computed per row, and beside them the
    rows' zero points as int32 (``node.name``/per_row/zero_point_int32) for the MatMulIntegers that read them."""
    x, (quantized, scale, _) = node.input[0], node.output
    row = f"{node.name}/per_row/".__add__
    return [
        _node(op_type, inputs, output, **attributes)
        for op_type, inputs, output, attributes in (
            ("ReduceMax", [x], row("max"), {"axes": [-1]}),
            ("ReduceMin", [x], row("min"), {"axes": [-1]}),
            ("Max", [row("max"), zero], row("max0"), {}),
            ("Min", [row("min"), zero], row("min0"), {}),
            ("Sub", [row("max0"), row("min0")], row("range"), {}),
            ("Div", [row("range"), levels], scale, {}),
            ("Neg", [row("min0")], row("minus_min"), {}),
            ("Div", [row("minus_min"), scale], row("zero_point_exact"), {}),
            ("Round", [row("zero_point_exact")], row("zero_point"), {}),
            ("Div", [x, scale], row("scaled"), {}),
            ("Round", [row("scaled")], row("rounded"), {}),
            ("Add", [row("rounded"), row("zero_point")], row("shifted"), {}),
            ("Clip", [row("shifted"), zero, levels], row("clipped"), {}),
            ("Cast", [row("clipped")], quantized, {"to": TensorProto.UINT8}),
            ("Cast", [row("zero_point")], row("zero_point_int32"), {"to": TensorProto.INT32}),
        )
    ]


def _subtract_rows_zero_points(graph: onnx.GraphProto, initializers: dict[str, onnx.TensorProto],
                               node: onnx.NodeProto, rows_zero_point: str) -> list[onnx.NodeProto]:
    """A MatMulInteger ``node`` without its activation zero point, followed by the subtraction of each row's
    (``rows_zero_point``) times the column sums of the centred weights."""
    weights, weight_zero_point = (
        numpy_helper.to_array(initializers[name]).astype(np.int32) for name in (node.input[1], node.input[3])
    )
    column_sums = _constant(graph, f"{node.name}/per_row/column_sums", (weights - weight_zero_point).sum(0), np.int32)
    product, correction = node.output[0], f"{node.name}/per_row/correction"
    node.input[2] = ""
    node.output[0] = f"{node.name}/per_row/uncorrected"
    return [node, helper.make_node("Mul", [rows_zero_point, column_sums], [correction], correction),
            helper.make_node("Sub", [node.output[0], correction], [product], f"{node.name}/per_row/Sub")]


def _look_up_tokens_in_quantized_embedding(model: onnx.ModelProto, columns_as_input: bool) -> None:
    """quantize_dynamic leaves the token lookup reading the FP32 embedding (80 MB for tiny.en) beside its INT8
    copy. Gather the INT8 columns instead (or, ``columns_as_input``, take them as the input token_columns) and
    dequantize them with their per-token (per-channel) scale, so that the FP32 table can go."""
    graph = model.graph
    index, lookup = next(
        (i, node) for i, node in enumerate(graph.node) if node.op_type == "Gather" and node.input[0] == EMBEDDING_T
    )
    ids, embedded = lookup.input[1], lookup.output[0]
    quantized, scale, zero_point = (f"{EMBEDDING_T}_{suffix}" for suffix in ("quantized", "scale", "zero_point"))
    prefix = "decoder/embeddings/lookup"
    if columns_as_input:
        columns_q = mf.TOKEN_COLUMNS
        d_model = next(tensor.dims[0] for tensor in graph.initializer if tensor.name == quantized)
        graph.input.append(helper.make_tensor_value_info(columns_q, TensorProto.UINT8,
                                                         [d_model, 1, "decoder_sequence_length"]))
        nodes = []
    else:
        columns_q = f"{prefix}/columns_q"
        nodes = [helper.make_node("Gather", [quantized, ids], [columns_q], f"{prefix}/Gather_columns", axis=1)]
    nodes += [
        helper.make_node("Cast", [columns_q], [f"{prefix}/columns"], f"{prefix}/Cast_columns", to=TensorProto.FLOAT),
        helper.make_node("Gather", [zero_point, ids], [f"{prefix}/zero_point_q"], f"{prefix}/Gather_zero_point"),
        helper.make_node("Cast", [f"{prefix}/zero_point_q"], [f"{prefix}/zero_point"], f"{prefix}/Cast_zero_point",
                         to=TensorProto.FLOAT),
        helper.make_node("Gather", [scale, ids], [f"{prefix}/scale"], f"{prefix}/Gather_scale"),
        helper.make_node("Sub", [f"{prefix}/columns", f"{prefix}/zero_point"], [f"{prefix}/centred"], f"{prefix}/Sub"),
        helper.make_node("Mul", [f"{prefix}/centred", f"{prefix}/scale"], [embedded], f"{prefix}/Mul"),
    ]
    graph.node.remove(lookup)
    for offset, node in enumerate(nodes):
        graph.node.insert(index + offset, node)
    (table,) = [tensor for tensor in graph.initializer if tensor.name == EMBEDDING_T]
    graph.initializer.remove(table)


def expected_files(hailo: bool, ggml: bool = False) -> list[str]:
    files = [mf.ENCODER_30S, mf.ENCODER_10S, mf.ENCODER_DYNAMIC, mf.ENCODER_DYNAMIC_INT8, mf.DECODER,
             mf.DECODER_WITH_PAST, mf.DECODER_CROSS_KV, mf.DECODER_ALIGNMENT, mf.TOKENIZER, mf.MODEL_INFO]
    files += [f"{mf.INT8_SUBDIR}/{name}"
              for name in (mf.DECODER, mf.DECODER_WITH_PAST, mf.TOKEN_TABLE_INT8, mf.TOKENIZER, mf.MODEL_INFO)]
    return files + ([mf.ENCODER_10S_HAILO] if hailo else []) + ([mf.GGML_MODEL] if ggml else [])


def read_stamp(directory: Path) -> dict | None:
    try:
        return json.loads((Path(directory) / STAMP).read_text())
    except (OSError, ValueError):
        return None


def is_up_to_date(directory: Path, fingerprint: dict, hailo: bool, ggml: bool = False) -> bool:
    """True when ``directory`` holds a complete export of the same source by this exporter version."""
    stamp = read_stamp(directory)
    if not stamp or stamp.get("exporter_version") != EXPORTER_VERSION or stamp.get("source") != fingerprint:
        return False
    if (hailo and not stamp.get("hailo")) or (ggml and not stamp.get("ggml")):
        return False
    sizes = stamp.get("files", {})
    return all(
        name in sizes and (Path(directory) / name).is_file() and (Path(directory) / name).stat().st_size == sizes[name]
        for name in expected_files(bool(stamp.get("hailo")), bool(stamp.get("ggml")))
    )


def export_model_dir(
    weights: WhisperWeights, tokenizer: Path, directory: Path, fingerprint: dict, hailo: bool, log=print,
    ggml: bool = False,
) -> None:
    """Write every file of the layout into ``directory``; the stamp last, so only a complete export counts."""
    directory = Path(directory)
    int8 = directory / mf.INT8_SUBDIR
    int8.mkdir(parents=True, exist_ok=True)
    (directory / STAMP).unlink(missing_ok=True)
    _write_graphs(weights, directory, hailo, log)
    for folder in (directory, int8):
        shutil.copyfile(tokenizer, folder / mf.TOKENIZER)
        weights.info.save(folder)
    _write_int8_decoders(weights, directory, log)
    quantize_encoder(directory / mf.ENCODER_DYNAMIC, directory / mf.ENCODER_DYNAMIC_INT8)
    log(f"  wrote {mf.ENCODER_DYNAMIC_INT8}")
    if ggml:
        from hailo_whisper_ros.export.ggml import write_ggml

        write_ggml(weights, tokenizer, directory / mf.GGML_MODEL)
        log(f"  wrote {mf.GGML_MODEL}")
    if hailo:
        difference = hailo_encoder_difference(directory, weights.info.n_mels)
        log(f"  {mf.ENCODER_10S_HAILO} vs {mf.ENCODER_10S}: max abs diff {difference:.2e}")
        if difference > 1e-3:
            raise HailoWhisperError(f"{mf.ENCODER_10S_HAILO} disagrees with {mf.ENCODER_10S} by {difference}")
    stamp = {
        "exporter_version": EXPORTER_VERSION,
        "source": fingerprint,
        "hailo": hailo,
        "ggml": ggml,
        "files": {name: (directory / name).stat().st_size for name in expected_files(hailo, ggml)},
    }
    (directory / STAMP).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n")


def _write_graphs(weights: WhisperWeights, directory: Path, hailo: bool, log) -> None:
    """The FP32 graphs of graphs.py: the encoders, the decoders, the cross-attention K/V projection and the
    alignment heads' pass."""
    n_frames = 2 * weights.info.n_audio_ctx
    graphs = [
        (mf.ENCODER_30S, lambda: build_encoder(weights, n_frames)),
        (mf.ENCODER_10S, lambda: build_encoder(weights, n_frames // 3)),
        (mf.ENCODER_DYNAMIC, lambda: build_encoder(weights, None)),
        (mf.DECODER, lambda: build_decoder(weights, with_past=False)),
        (mf.DECODER_WITH_PAST, lambda: build_decoder(weights, with_past=True)),
        (mf.DECODER_CROSS_KV, lambda: build_cross_kv(weights)),  # FP32, shared by the INT8 decoders
        (mf.DECODER_ALIGNMENT, lambda: build_alignment(weights)),  # FP32 too: word timings, run once per segment
    ]
    if hailo:
        graphs.append((mf.ENCODER_10S_HAILO, lambda: build_encoder(weights, HAILO_FRAMES, hailo=True)))
    for name, build in graphs:
        _save(build(), directory / name)
        log(f"  wrote {name}")


def _write_int8_decoders(weights: WhisperWeights, directory: Path, log) -> None:
    """The INT8 decoders, quantized from the FP32 ones that _write_graphs wrote."""
    int8 = directory / mf.INT8_SUBDIR
    quantize_decoder(directory / mf.DECODER, int8 / mf.DECODER, weights.info.n_text_layer)
    log(f"  wrote {mf.INT8_SUBDIR}/{mf.DECODER}")
    # The INT8 step decoder verifies drafts with a second body that attends row by row.
    row_by_row = int8 / f"{mf.DECODER_WITH_PAST}.row_by_row.partial"
    _save(build_decoder(weights, True, row_by_row=True), row_by_row)
    try:
        quantize_decoder(directory / mf.DECODER_WITH_PAST, int8 / mf.DECODER_WITH_PAST, weights.info.n_text_layer,
                         row_by_row_source=row_by_row, token_table=int8 / mf.TOKEN_TABLE_INT8)
    finally:
        row_by_row.unlink()
    log(f"  wrote {mf.INT8_SUBDIR}/{mf.DECODER_WITH_PAST}")
