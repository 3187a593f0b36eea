"""Whisper's byte-level BPE tokenizer, read from the model directory's tokenizer.json."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hailo_whisper_ros.core.errors import HailoWhisperError


class WhisperTokenizer:
    """Text <-> token ids. Ids at or above ``eot`` (special, language and timestamp tokens) are never text."""

    def __init__(self, path: Path, eot: int):
        from tokenizers import Tokenizer

        try:
            self._tokenizer = Tokenizer.from_file(str(path))
        except Exception as error:  # the Rust binding raises a bare Exception for unreadable JSON
            raise HailoWhisperError(f"cannot read tokenizer {path}: {error}") from error
        self.eot = eot

    def decode(self, ids: Sequence[int]) -> str:
        return self._tokenizer.decode([int(i) for i in ids if i < self.eot], skip_special_tokens=True)

    def encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False).ids
