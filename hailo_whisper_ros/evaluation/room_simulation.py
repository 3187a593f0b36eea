"""Simulated rooms of issue 30: each clip of a speech folder said by a talker 1.5-2.5 m from the robot's microphone
in a room of RT60 0.4-0.7 s (image-source room impulse responses, pyroomacoustics), in three sets of the same rooms:

- ``clean``: the talker alone, the reverberation's tail after;
- ``steady-noise``: a robot's fan (pink noise with a blade-pass hum) at 10-20 dB SNR instead;
- ``background-talkers``: three other talkers of the folder (other speakers) 10 dB below the talker together, who
  talk throughout and go on for 1.5-3 s after the talker stops.

Every set has the same length per clip (the clip and the tail), so that only what fills the tail differs. The rooms
are drawn from a generator seeded by ``SEED`` and the clip's index, so the sets are the same on every machine; they
are written once to a cache folder (``rooms_cache``) as FLAC files with an ALL.tsv per set, which any command taking
``--audio_folder`` reads too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hailo_whisper_ros.core.constants import SAMPLE_RATE
from hailo_whisper_ros.core.errors import HailoWhisperError
from hailo_whisper_ros.evaluation.datasets import Clip

SETS = ("clean", "steady-noise", "background-talkers")
SEED = 30  # issue 30
ROOM_VERSION = 1  # part of the cache key: raise it when the simulation changes


@dataclass(frozen=True)
class RoomRanges:
    """What the rooms are drawn from (issue 30's description)."""

    rt60_s: tuple[float, float] = (0.4, 0.7)
    talker_distance_m: tuple[float, float] = (1.5, 2.5)
    background_talkers: int = 3
    background_below_db: float = 10.0  # the three together, against the talker's reverberant power
    background_tail_s: tuple[float, float] = (1.5, 3.0)  # they go on this long after the talker's clip ends
    noise_snr_db: tuple[float, float] = (10.0, 20.0)
    length_m: tuple[float, float] = (4.0, 8.0)
    width_m: tuple[float, float] = (3.5, 6.0)
    height_m: tuple[float, float] = (2.5, 3.2)


RANGES = RoomRanges()
WALL_MARGIN_M = 0.5  # nobody stands closer to a wall
MIC_HEIGHT_M = (1.0, 1.4)  # a robot's head
MOUTH_HEIGHT_M = (1.5, 1.8)
PEAK = 0.5  # each room's reverberant talker is scaled to this peak, the same in its three sets


def speaker_of(clip: Clip) -> str:
    """Who speaks a clip of the dev set: the LibriSpeech speaker of its name, LJ for LJSpeech, else its folder."""
    name = clip.audio_path.stem
    if re.match(r"LJ\d", name):
        return "LJ"
    librispeech = re.search(r"(?:^|_)(\d+)-\d+-\d+$", name)
    if librispeech:
        return librispeech.group(1)
    return clip.id.split("/")[0] if "/" in clip.id else name


def rooms_cache(clips: Sequence[Clip]) -> Path:
    """The folder of these clips' rooms: under $XDG_CACHE_HOME (or ~/.cache)/hailo_whisper_ros/rooms, named by a
    hash of the clips, the seed and the ranges, so that a change of any makes a new set."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hailo_whisper_ros" / "rooms"
    key = json.dumps([ROOM_VERSION, SEED, asdict(RANGES), [(c.id, str(c.audio_path)) for c in clips]])
    return base / hashlib.sha256(key.encode()).hexdigest()[:16]


def build_rooms(clips: Sequence[Clip], audio: Sequence[np.ndarray], folder: Path) -> dict[str, list[Clip]]:
    """The three sets of ``clips`` (their 16 kHz ``audio``) in ``folder``, simulated where not yet there; returns
    each set's clips, in the clips' order."""
    if len({speaker_of(clip) for clip in clips}) <= RANGES.background_talkers:
        raise HailoWhisperError(f"the rooms need more than {RANGES.background_talkers} speakers among the clips")
    sets: dict[str, list[Clip]] = {name: [] for name in SETS}
    for index, clip in enumerate(clips):
        paths = {name: folder / name / f"{clip.id}.flac" for name in SETS}
        if not all(path.is_file() for path in paths.values()):
            mixes = simulate_room(index, clips, audio)
            for name, path in paths.items():
                write_clip(path, mixes[name])
        for name, path in paths.items():
            sets[name].append(Clip(clip.id, path, clip.reference))
    for name, set_clips in sets.items():
        rows = [f"{c.id}.flac\t0\t{c.reference}" for c in set_clips]
        (folder / name / "ALL.tsv").write_text("path\tduration_s\treference\n" + "\n".join(rows) + "\n")
    return sets


def write_clip(path: Path, audio: np.ndarray) -> None:
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part.flac")
    soundfile.write(partial, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_24")
    partial.replace(path)  # a run stopped half-way leaves no truncated clip behind


def simulate_room(index: int, clips: Sequence[Clip], audio: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Clip ``index`` in its room: {set name: 16 kHz float32 audio}."""
    rng = np.random.default_rng([SEED, index])
    talker = audio[index].astype(np.float64)
    tail = int(rng.uniform(*RANGES.background_tail_s) * SAMPLE_RATE)
    length = len(talker) + tail
    others = background_speech(index, clips, audio, length, rng)
    rirs = room_responses(rng, 1 + len(others))
    heard = [_convolved(rir, signal, length) for rir, signal in zip(rirs, [talker, *others])]
    scale = PEAK / (np.max(np.abs(heard[0])) or 1.0)
    speech = heard[0] * scale
    power = float(np.mean(np.square(speech[: len(talker)])))
    background = sum(signal / (np.sqrt(np.mean(np.square(signal))) or 1.0) for signal in heard[1:])
    background *= np.sqrt(power * 10.0 ** (-RANGES.background_below_db / 10.0) / np.mean(np.square(background)))
    noise = fan_noise(rng, length)
    noise *= np.sqrt(power * 10.0 ** (-rng.uniform(*RANGES.noise_snr_db) / 10.0))
    return {
        "clean": speech.astype(np.float32),
        "steady-noise": (speech + noise).astype(np.float32),
        "background-talkers": (speech + background).astype(np.float32),
    }


def background_speech(
    index: int, clips: Sequence[Clip], audio: Sequence[np.ndarray], length: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Three talkers other than clip ``index``'s (and other than each other), each the clips of one speaker one
    after the other from a random one, ``length`` samples long."""
    by_speaker: dict[str, list[int]] = {}
    for number, clip in enumerate(clips):
        by_speaker.setdefault(speaker_of(clip), []).append(number)
    others = sorted(set(by_speaker) - {speaker_of(clips[index])})
    chosen = rng.choice(len(others), size=RANGES.background_talkers, replace=False)
    talkers = []
    for choice in chosen:
        numbers = by_speaker[others[choice]]
        first = int(rng.integers(len(numbers)))
        order = numbers[first:] + numbers[:first]
        joined = np.concatenate([audio[number] for number in order]).astype(np.float64)
        talkers.append(np.resize(joined, length))  # a short speaker's clips come round again
    return talkers


def room_responses(rng: np.random.Generator, sources: int) -> list[np.ndarray]:
    """Room impulse responses (image source method) from ``sources`` positions to one microphone of a shoebox room:
    the first at the talker's distance, the others anywhere in the room."""
    import pyroomacoustics as pra

    size = np.array([rng.uniform(*RANGES.length_m), rng.uniform(*RANGES.width_m), rng.uniform(*RANGES.height_m)])
    absorption, max_order = pra.inverse_sabine(rng.uniform(*RANGES.rt60_s), size)
    room = pra.ShoeBox(size, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=max_order)
    low, high = np.full(2, WALL_MARGIN_M), size[:2] - WALL_MARGIN_M
    microphone = np.append(rng.uniform(low, high), rng.uniform(*MIC_HEIGHT_M))
    room.add_microphone(microphone)
    for source in range(sources):
        while True:  # a position inside the room, away from the walls
            if source == 0:
                angle, distance = rng.uniform(0, 2 * np.pi), rng.uniform(*RANGES.talker_distance_m)
                place = microphone[:2] + distance * np.array([np.cos(angle), np.sin(angle)])
            else:
                place = rng.uniform(low, high)
            if np.all(place >= low) and np.all(place <= high) and np.linalg.norm(place - microphone[:2]) >= 1.0:
                break
        room.add_source(np.append(place, rng.uniform(*MOUTH_HEIGHT_M)))
    room.compute_rir()
    return [np.asarray(rir) for rir in room.rir[0]]


def _convolved(rir: np.ndarray, signal: np.ndarray, length: int) -> np.ndarray:
    from scipy.signal import fftconvolve

    heard = fftconvolve(signal, rir)[:length]
    return np.pad(heard, (0, length - len(heard)))


def fan_noise(rng: np.random.Generator, length: int) -> np.ndarray:
    """A fan: pink noise (1/f power) with a blade-pass hum of 80-160 Hz and three harmonics, unit power."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    frequencies = np.fft.rfftfreq(length, 1.0 / SAMPLE_RATE)
    spectrum /= np.sqrt(np.maximum(frequencies, 20.0))
    noise = np.fft.irfft(spectrum, length)
    noise /= np.std(noise) or 1.0
    blade = rng.uniform(80.0, 160.0)
    times = np.arange(length) / SAMPLE_RATE
    hum = sum(np.sin(2 * np.pi * blade * k * times + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 5))
    noise += 0.5 * hum / (np.std(hum) or 1.0)
    return noise / np.std(noise)
