"""The on-disk layout of an exported Whisper model directory, shared by the exporter and the runtime.

The layout follows Hugging Face Optimum's Whisper export so that a user can point the recognizer at an Optimum
export as well as at ours::

    MODEL_DIR/
      encoder_model.onnx             30 s encoder: input_features [1, n_mels, 3000] -> last_hidden_state [1, 1500, d]
      encoder_10s.onnx               10 s encoder: input_features [1, n_mels, 1000] -> last_hidden_state [1, 500, d]
      encoder_dynamic.onnx           any even frame count T <= 3000 -> [1, T/2, d]
      encoder_dynamic_int8.onnx      (ours) the same with its weight MatMuls dynamically quantized to INT8 (which:
                                     export/quantize.py): the 'dynamic' encoder
      encoder_10s_hailo.onnx         (export --hailo) static NCHW [1, n_mels, 1, 1000] graph for the Hailo compiler
      decoder_model.onnx             input_ids [1, S], encoder_hidden_states [1, T, d]
                                     (+ encoder_attention_bias [T] in ours, not in Optimum's)
                                     -> logits [1, S, V], present.{i}.{decoder,encoder}.{key,value}
      decoder_with_past_model.onnx   input_ids [1, 1], past_key_values.{i}.{decoder,encoder}.{key,value}
                                     (+ encoder_attention_bias [T] in ours)
                                     -> logits [1, 1, V], present.{i}.decoder.{key,value}
      decoder_cross_kv.onnx          (ours) encoder_hidden_states [1, T, d] -> present.{i}.encoder.{key,value}:
                                     with it, decoder_with_past alone runs the prefix too (from an empty
                                     self-attention cache), so decoder_model.onnx need not be loaded
      decoder_alignment_heads.onnx   (ours) input_ids [1, S], encoder_hidden_states [1, T, d],
                                     encoder_attention_bias [T] -> alignment_scores [heads, S, T]: the
                                     cross-attention scores of the alignment heads, for word timings
                                     (core/word_timing.py); FP32, loaded only with decoding.word_timestamps
      tokenizer.json
      hailo_whisper_model.json       ModelInfo below
      ggml-model-f16.bin             (export --ggml) the same weights as a whisper.cpp model
      default_int8/                  the two decoders, dynamically quantized to INT8, plus copies of
                                     tokenizer.json and hailo_whisper_model.json so the folder stands alone;
                                     its step decoder takes token_columns [d, 1, S] (uint8) beside input_ids:
                                     the rows of token_table_int8.npy [V, d] for the ids, looked up outside
                                     ONNX Runtime (export/writer.quantize_decoder says why), and logit_rows
                                     [R] (int64): the logits are those of these rows only, [1, R, V]

Key/value tensors are [batch, heads, positions, head_dim]. A decoder directory (``--decoder_onnx_dir``) is any
folder holding the two decoder files; its tokenizer and model JSON are looked up in it, then in its parent.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

ENCODER_30S = "encoder_model.onnx"
ENCODER_10S = "encoder_10s.onnx"
ENCODER_DYNAMIC = "encoder_dynamic.onnx"
ENCODER_DYNAMIC_INT8 = "encoder_dynamic_int8.onnx"
ENCODER_10S_HAILO = "encoder_10s_hailo.onnx"
DECODER = "decoder_model.onnx"
DECODER_WITH_PAST = "decoder_with_past_model.onnx"
DECODER_CROSS_KV = "decoder_cross_kv.onnx"
DECODER_ALIGNMENT = "decoder_alignment_heads.onnx"
TOKENIZER = "tokenizer.json"
MODEL_INFO = "hailo_whisper_model.json"
INT8_SUBDIR = "default_int8"
TOKEN_TABLE_INT8 = "token_table_int8.npy"  # (ours) the INT8 step decoder's token embedding, token by token
GGML_MODEL = "ggml-model-f16.bin"
# The file of each CPU encoder kind (RecognizerConfig.encoder); encoder_dynamic.onnx is the FP32 original of the
# 'dynamic' one, kept for --verify, compare and an explicit model.encoder_file.
ONNX_ENCODER_FILES = {"10s": ENCODER_10S, "30s": ENCODER_30S, "dynamic": ENCODER_DYNAMIC_INT8}

# ONNX tensor names (Optimum's).
INPUT_FEATURES = "input_features"
LAST_HIDDEN_STATE = "last_hidden_state"
INPUT_IDS = "input_ids"
ENCODER_HIDDEN_STATES = "encoder_hidden_states"
LOGITS = "logits"
ENCODER_ATTENTION_BIAS = "encoder_attention_bias"  # ours only: see export/graphs.build_decoder
ALIGNMENT_SCORES = "alignment_scores"  # ours only: the alignment heads' cross-attention scores, see above
TOKEN_COLUMNS = "token_columns"  # ours only: the INT8 step decoder's looked-up token embedding, see above
LOGIT_ROWS = "logit_rows"  # ours only: the rows of the INT8 step decoder's call whose logits it projects
# Metadata key of a step decoder whose every token row is computed on its own (export/writer.py): a pass over
# several tokens gives exactly the logits of one-token steps, so drafts can be verified (decoding.greedy_decode).
ROWS_INDEPENDENT = "rows_independent"


def past_name(layer: int, kind: str, kv: str) -> str:
    """Input name of a cached tensor: kind is 'decoder' (self-attention) or 'encoder' (cross-attention)."""
    return f"past_key_values.{layer}.{kind}.{kv}"


def present_name(layer: int, kind: str, kv: str) -> str:
    """Output name of a cached tensor, the counterpart of past_name."""
    return f"present.{layer}.{kind}.{kv}"


@dataclass(frozen=True)
class ModelInfo:
    """Dimensions and special tokens of one Whisper model, written next to the ONNX files."""

    name: str
    n_mels: int
    n_audio_ctx: int  # encoder positions for 30 s of audio (1500)
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int  # decoder positions (448)
    n_text_state: int
    n_text_head: int
    n_text_layer: int
    multilingual: bool
    sot: int  # <|startoftranscript|>
    eot: int  # <|endoftext|>
    no_timestamps: int
    no_speech: int  # <|nospeech|> (<|nocaptions|> in older vocabularies)
    transcribe: int
    translate: int
    timestamp_begin: int
    sot_prev: int
    sot_lm: int
    languages: dict[str, int] = field(default_factory=dict)  # language code -> token id; empty for .en models
    suppress_tokens: tuple[int, ...] = ()  # Whisper's generation_config suppress list (symbols, not speech)
    begin_suppress_tokens: tuple[int, ...] = ()  # suppressed at the first generated position (blank, EOT)
    # (decoder layer, head) of the cross-attention heads whose weights follow the words in time (word timings);
    # empty in the files of older exports, which lack decoder_alignment_heads.onnx too.
    alignment_heads: tuple[tuple[int, int], ...] = ()

    def save(self, directory: Path) -> Path:
        path = Path(directory) / MODEL_INFO
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> ModelInfo:
        data = json.loads(Path(path).read_text())
        data["suppress_tokens"] = tuple(data.get("suppress_tokens", ()))
        data["begin_suppress_tokens"] = tuple(data.get("begin_suppress_tokens", ()))
        data["alignment_heads"] = tuple((int(layer), int(head)) for layer, head in data.get("alignment_heads", ()))
        return cls(**data)

    def forced_prefix(self, language: str | None = None, task: str = "transcribe") -> list[int]:
        """The tokens the decoder is primed with: start, [language, task,] no-timestamps."""
        if not self.multilingual:
            return [self.sot, self.no_timestamps]
        language = language or "en"
        if language not in self.languages:
            raise ValueError(f"unknown language {language!r}; this model knows {sorted(self.languages)}")
        if task not in ("transcribe", "translate"):
            raise ValueError(f"task must be 'transcribe' or 'translate', not {task!r}")
        task_token = self.transcribe if task == "transcribe" else self.translate
        return [self.sot, self.languages[language], task_token, self.no_timestamps]


def find_beside(directory: Path, file_name: str) -> Path:
    """A file of a decoder directory: in it, or else in its parent (the full export)."""
    directory = Path(directory)
    for candidate in (directory / file_name, directory.parent / file_name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{file_name} not found in {directory} or {directory.parent}")
