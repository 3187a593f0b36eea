"""A long recording made of dev-set clips separated by silence, with the true speech boundaries of every clip.

Streaming recognition is judged on such a recording: its finals must reproduce every clip's reference, start and
end where the clip's speech does, and leave out nothing but the silences. Each clip is trimmed to its speech (found
by short-time energy, independently of the VAD under test) plus a short margin of its own background, so the
boundaries of the recording are the boundaries of the speech.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import cycle

import numpy as np

from hailo_whisper_ros.core.audio import load_audio, short_time_energy
from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.evaluation.datasets import Clip

ENERGY_FRAME_SAMPLES = SAMPLE_RATE // 100  # 10 ms frames, side by side
# The energy is averaged over this many frames (50 ms), so that a click or a breath in the background is not speech.
SMOOTHING_FRAMES = 5
# A frame is speech when its energy is within SPEECH_RANGE_DB of the loud frames (95th percentile) and at least
# ABOVE_FLOOR_DB over the background (10th percentile): the second rule keeps noisy recordings from counting their
# background as speech. Checked on speech_dev against faster-whisper's Silero VAD, on the 37 clips with silence
# before or after their speech: within 0.1 s on 26, within 0.35 s on all but the three with loud background
# (jfk's crowd, the AMI meeting, beckett's music), where this is not the tool.
SPEECH_RANGE_DB = 35.0
ABOVE_FLOOR_DB = 12.0


@dataclass(frozen=True)
class PlacedClip:
    """One clip in the long recording; ``speech_start``/``speech_end`` are samples of the recording."""

    source: str
    reference: str
    speech_start: int
    speech_end: int

    @property
    def speech_start_s(self) -> float:
        return self.speech_start / SAMPLE_RATE

    @property
    def speech_end_s(self) -> float:
        return self.speech_end / SAMPLE_RATE


@dataclass(frozen=True)
class LongRecording:
    audio: np.ndarray  # float32 mono at SAMPLE_RATE
    clips: tuple[PlacedClip, ...]

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    def speech_mask(self) -> np.ndarray:
        """True for every sample inside a clip's speech."""
        mask = np.zeros(len(self.audio), dtype=bool)
        for clip in self.clips:
            mask[clip.speech_start : clip.speech_end] = True
        return mask


def speech_bounds(audio: np.ndarray) -> tuple[int, int]:
    """[start, end) samples from the first to the last 10 ms frame of speech energy (see SPEECH_RANGE_DB)."""
    _, energies = short_time_energy(audio, ENERGY_FRAME_SAMPLES, ENERGY_FRAME_SAMPLES)
    if len(energies) == 0:
        raise HailoWhisperError(f"a clip of {len(audio)} samples is too short to find its speech in")
    power = np.convolve(energies / ENERGY_FRAME_SAMPLES, np.ones(SMOOTHING_FRAMES) / SMOOTHING_FRAMES, mode="same")
    level_db = 10.0 * np.log10(power + 1e-12)
    threshold = max(np.percentile(level_db, 95) - SPEECH_RANGE_DB, np.percentile(level_db, 10) + ABOVE_FLOOR_DB)
    loud = np.flatnonzero(level_db > threshold)
    return int(loud[0]) * ENERGY_FRAME_SAMPLES, (int(loud[-1]) + 1) * ENERGY_FRAME_SAMPLES


def build_long_recording(
    utterances: Sequence[Clip],
    gaps_s: Sequence[float] = (1.0, 1.5, 2.0),
    edge_silence_s: float = 1.0,
    margin_s: float = 0.1,
) -> LongRecording:
    """Concatenate the utterances' audio, each trimmed to its speech plus ``margin_s`` of its own background.

    Digital silence of ``edge_silence_s`` opens and closes the recording; between clips the gaps cycle through
    ``gaps_s``. Any rate and channel count are read (``load_audio``).
    """
    if not utterances:
        raise HailoWhisperError("a long recording needs at least one utterance")
    if not gaps_s or min(gaps_s) < 0 or edge_silence_s < 0 or margin_s < 0:
        raise HailoWhisperError("gaps_s, edge_silence_s and margin_s must be >= 0 (and gaps_s not empty)")
    margin = int(round(margin_s * SAMPLE_RATE))
    pieces = [np.zeros(int(round(edge_silence_s * SAMPLE_RATE)), dtype=np.float32)]
    position = len(pieces[0])
    clips = []
    for utterance, gap_s in zip(utterances, cycle(gaps_s)):
        audio = load_audio(utterance.audio_path)
        start, end = speech_bounds(audio)
        kept_from, kept_to = max(start - margin, 0), min(end + margin, len(audio))
        clips.append(
            PlacedClip(
                source=str(utterance.audio_path),
                reference=utterance.reference,
                speech_start=position + start - kept_from,
                speech_end=position + end - kept_from,
            )
        )
        silence_s = gap_s if len(clips) < len(utterances) else edge_silence_s
        pieces += [audio[kept_from:kept_to], np.zeros(int(round(silence_s * SAMPLE_RATE)), dtype=np.float32)]
        position += kept_to - kept_from + len(pieces[-1])
    return LongRecording(np.concatenate(pieces), tuple(clips))
