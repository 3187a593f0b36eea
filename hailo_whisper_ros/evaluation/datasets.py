"""Speech folders for evaluation: which layout a folder uses, and its clips with their reference transcripts.

Supported layouts, tried in this order for a folder:

``ALL.tsv``
    ``path<TAB>duration_s<TAB>reference`` with a header row, paths relative to the folder (speech_dev's index).
``transcripts.tsv``
    ``id<TAB>reference``, no header; the audio is ``id.wav`` or ``id.flac`` beside it (a speech_dev set).
``txt-pairs``
    ``<id>.wav|flac`` with ``<id>.txt`` holding the reference (the Pi 5 Hailo-8L study's layout, README, Sources).
    Audio without a ``.txt`` is listed as unreferenced and skipped.
``librispeech``
    ``*.trans.txt`` files whose lines are ``<id> <REFERENCE>``, the audio ``<id>.flac|wav`` beside each.
``set-folders``
    none of the above, but subfolders that hold a layout (searched recursively): a folder of sets such as
    speech_dev without its ALL.tsv, or a LibriSpeech tree (speaker/chapter/*.trans.txt). Clip ids are prefixed
    with the subfolder path, so they stay unique.

An empty reference marks a non-speech clip: the right transcript for it is an empty one.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from hailo_whisper_ros.core.errors import HailoWhisperError

LAYOUTS = ("ALL.tsv", "transcripts.tsv", "txt-pairs", "librispeech", "set-folders")
LIBRISPEECH_SUFFIX = ".trans.txt"
AUDIO_SUFFIXES = (".wav", ".flac")
# Real speech shipped with the package (short public-domain and CC BY clips, see its SOURCES.md): the demo's audio,
# the commands' default folder and the core tests' input, wherever the package is installed.
SPEECH_SAMPLES = Path(__file__).resolve().parents[1] / "speech_samples"


@dataclass(frozen=True)
class Clip:
    """One speech clip with its reference transcript: the one record type of every speech folder."""

    id: str  # unique within the listing: the path below the listed folder, without the audio suffix
    audio_path: Path
    reference: str  # "" for a non-speech clip
    duration_s: float | None = None  # as listed in ALL.tsv; None where the folder does not say


def load_dataset(folder: str | Path) -> list[Clip]:
    """The clips of one set folder, from its ALL.tsv or else its transcripts.tsv, in listing order."""
    folder = Path(folder)
    if (folder / "ALL.tsv").is_file():
        rows = _read_tsv(folder / "ALL.tsv")
        if rows and rows[0][:1] == ["path"]:
            rows = rows[1:]
        return [_clip(folder, folder / path, reference, float(duration)) for path, duration, reference in rows]
    if (folder / "transcripts.tsv").is_file():
        clips = []
        for utterance_id, reference in _read_tsv(folder / "transcripts.tsv"):
            audio = _audio_for(folder, utterance_id)
            if audio is None:
                raise HailoWhisperError(f"no audio file {utterance_id}{{{','.join(AUDIO_SUFFIXES)}}} in {folder}")
            clips.append(_clip(folder, audio, reference))
        return clips
    raise HailoWhisperError(f"speech set {folder} has neither ALL.tsv nor transcripts.tsv")


def _read_tsv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as file:
        rows = [row for row in csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE) if row]
    for number, row in enumerate(rows, start=1):
        if len(row) not in (2, 3):
            raise HailoWhisperError(f"{path} line {number}: expected 2 or 3 tab-separated fields, got {len(row)}")
    return rows


@dataclass(frozen=True)
class SpeechFolder:
    root: Path
    layout: str  # one of LAYOUTS
    clips: tuple[Clip, ...]
    set_layouts: tuple[str, ...]  # for set-folders: the layout of each set found, in listing order
    unreferenced: tuple[Path, ...]  # audio files of txt-pairs sets without a reference (skipped)

    def describe(self) -> str:
        """One line for the user, e.g. 'set-folders: 8 sets (transcripts.tsv x8), 61 clips'."""
        layout = self.layout
        if self.set_layouts:
            counts = {name: self.set_layouts.count(name) for name in dict.fromkeys(self.set_layouts)}
            kinds = ", ".join(f"{name} x{count}" for name, count in counts.items())
            layout = f"{layout}: {len(self.set_layouts)} set{'s' if len(self.set_layouts) > 1 else ''} ({kinds})"
        return f"{layout}, {len(self.clips)} clips"


def detect_layout(folder: str | Path) -> str | None:
    """The layout of a folder (see the module docstring), or None when it holds no clips with references."""
    folder = Path(folder)
    if (folder / "ALL.tsv").is_file():
        return "ALL.tsv"
    if (folder / "transcripts.tsv").is_file():
        return "transcripts.tsv"
    if _txt_pairs(folder)[0]:
        return "txt-pairs"
    if any(folder.glob("*" + LIBRISPEECH_SUFFIX)):
        return "librispeech"
    if any(detect_layout(sub) for sub in _subfolders(folder)):
        return "set-folders"
    return None


def list_clips(folder: str | Path) -> SpeechFolder:
    """Every clip of a speech folder with its reference; HailoWhisperError when there is none or audio is missing."""
    root = Path(folder)
    if not root.is_dir():
        raise HailoWhisperError(f"audio folder not found: {root}")
    layout = detect_layout(root)
    if layout is None:
        raise HailoWhisperError(
            f"no clips with references in {root}: expected ALL.tsv, transcripts.tsv, <id>.wav|flac with <id>.txt, "
            f"LibriSpeech *{LIBRISPEECH_SUFFIX}, or subfolders holding one of these"
        )
    clips: list[Clip] = []
    set_layouts: list[str] = []
    unreferenced: list[Path] = []
    if layout == "set-folders":
        _collect_sets(root, root, clips, set_layouts, unreferenced)
    else:
        clips.extend(_set_clips(root, root, layout, unreferenced))
    missing = [clip.audio_path for clip in clips if not clip.audio_path.is_file()]
    if missing:
        raise HailoWhisperError(f"{len(missing)} audio file(s) listed in {root} are missing, e.g. {missing[0]}")
    ids = [clip.id for clip in clips]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise HailoWhisperError(f"clip id {duplicate!r} appears more than once in {root}")
    return SpeechFolder(root, layout, tuple(clips), tuple(set_layouts), tuple(unreferenced))


def _collect_sets(root: Path, folder: Path, clips: list, set_layouts: list, unreferenced: list) -> None:
    for sub in _subfolders(folder):
        layout = detect_layout(sub)
        if layout == "set-folders":
            _collect_sets(root, sub, clips, set_layouts, unreferenced)
        elif layout is not None:
            set_layouts.append(layout)
            clips.extend(_set_clips(root, sub, layout, unreferenced))


def _set_clips(root: Path, folder: Path, layout: str, unreferenced: list) -> list[Clip]:
    if layout in ("ALL.tsv", "transcripts.tsv"):
        return [_clip(root, clip.audio_path, clip.reference, clip.duration_s) for clip in load_dataset(folder)]
    if layout == "txt-pairs":
        pairs, lonely_audio = _txt_pairs(folder)
        unreferenced.extend(lonely_audio)
        return [_clip(root, audio, text.read_text(encoding="utf-8").strip()) for audio, text in pairs]
    clips = []
    for transcript in sorted(folder.glob("*" + LIBRISPEECH_SUFFIX)):
        for number, line in enumerate(transcript.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            utterance_id, _, reference = line.strip().partition(" ")
            audio = _audio_for(folder, utterance_id)
            if audio is None:
                raise HailoWhisperError(f"{transcript} line {number}: no audio {utterance_id}.flac or .wav beside it")
            clips.append(_clip(root, audio, reference.strip()))
    return clips


def _txt_pairs(folder: Path) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(audio, reference .txt) pairs of a folder, and its audio files without a .txt."""
    pairs, lonely = [], []
    for audio in sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()):
        text = audio.with_suffix(".txt")
        if text.is_file():
            pairs.append((audio, text))
        else:
            lonely.append(audio)
    return pairs, lonely


def _audio_for(folder: Path, stem: str) -> Path | None:
    return next((folder / (stem + s) for s in AUDIO_SUFFIXES if (folder / (stem + s)).is_file()), None)


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _clip(root: Path, audio: Path, reference: str, duration_s: float | None = None) -> Clip:
    relative = audio.relative_to(root) if audio.is_relative_to(root) else Path(audio.name)
    return Clip(relative.with_suffix("").as_posix(), audio, reference, duration_s)
