"""What the recognizer needs of an encoder and of a decoder, whichever device runs them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Encoder(Protocol):
    name: str
    window_frames: int | None
    """Mel frames of every call, or None when any even count up to max_frames is accepted."""
    max_frames: int
    """The longest input, in mel frames; longer audio is split by the recognizer."""
    output_positions: int | None
    """Encoder positions of every call (window_frames / 2), or None for a dynamic encoder (frames / 2)."""

    def input_gain(self, audio: np.ndarray) -> np.ndarray:
        """The audio as this encoder was calibrated to hear it, before its features are computed (Hailo's encoder
        HEFs: quiet recordings raised; ONNX: unchanged)."""

    def encode(self, mel: np.ndarray) -> np.ndarray:
        """log-mel [n_mels, frames] float32 -> hidden states [1, frames / 2, d_model] float32."""

    def close(self) -> None:
        """Give back the device's resources (a HEF's share of the NPU); nothing for CPU sessions."""


class DecoderSteps(Protocol):
    """What a decoder backend provides to the shared greedy loop (decoding.greedy_decode)."""

    name: str

    max_positions: int
    """Token positions the backend can hold, forced prefix included."""

    fixed_encoder_positions: int | None
    """Encoder positions the backend requires (a HEF's input shape), or None when it takes any count."""

    rows_independent: bool
    """Whether a pass over several tokens gives exactly the logits that one-token steps would: then drafts are
    verified in one pass (decoding.greedy_decode); otherwise the recognizer decodes without them."""

    def start(self, encoder_states: np.ndarray, prefix: Sequence[int], padded_positions: int,
              rows: Sequence[int] | None = None) -> np.ndarray:
        """Begin an utterance: return the logits [len(rows), n_vocab] of these prefix positions (of all of them
        without ``rows``). The decoder attends over the encoder states [1, T, d] zero-padded to
        ``padded_positions`` (or to its fixed count, if it has one)."""

    def step(self, token: int) -> np.ndarray:
        """Append one token and return the logits [n_vocab] for the position after it."""

    def extend(self, tokens: Sequence[int]) -> np.ndarray:
        """Append several tokens in one pass and return the logits [len(tokens), n_vocab] after each of them."""

    def rewind(self, positions: int) -> None:
        """Forget every token position from ``positions`` on (a rejected draft, see decoding.greedy_decode); the
        next step appends at ``positions``."""

    def close(self) -> None:
        """Give back the device's resources (a HEF's share of the NPU); nothing for CPU sessions."""


def zero_pad(states: np.ndarray, positions: int) -> np.ndarray:
    """Encoder states [1, T, d] zero-padded to ``positions`` (T if already that long)."""
    if states.shape[1] >= positions:
        return states
    padded = np.zeros((1, positions, states.shape[2]), dtype=np.float32)
    padded[:, : states.shape[1]] = states
    return padded
