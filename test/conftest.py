"""Shared fixtures: the exported default model, the speech samples that ship with the package, and the shared speech
dev set beside the clone.

`make test` exports the model before running the tests, so a missing model is a setup failure, not a skip. The
speech samples are part of the repository, so they are always there. The dev set is not: CI and the developers'
machines have it beside the clone (../shared/data/speech_dev), a user's clone does not, and the tests that need it
skip with a one-line reason. Set HAILO_WHISPER_SPEECH_DEV to use a dev set elsewhere, or to a path that does not
exist (HAILO_WHISPER_SPEECH_DEV=/nonexistent) to run the tests as on a user's clone.
"""

import os
from pathlib import Path

import pytest

from hailo_whisper_ros.evaluation.datasets import SPEECH_SAMPLES

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO_ROOT / "models" / "tiny.en"
# The multilingual base model is not exported by `make setup`: its tests run where HAILO_WHISPER_BASE_MODEL_DIR names
# an export (`hailo-whisper export base --out DIR`) or models/base holds one, and skip with the reason elsewhere.
BASE_MODEL_DIR = Path(os.environ.get("HAILO_WHISPER_BASE_MODEL_DIR", REPO_ROOT / "models" / "base"))
SPEECH_DEV = Path(os.environ.get("HAILO_WHISPER_SPEECH_DEV", REPO_ROOT.parent / "shared" / "data" / "speech_dev"))


def cached_loader(root: Path):
    """load_audio of a clip by its path relative to ``root`` (16 kHz float32 mono), each clip read once."""
    from hailo_whisper_ros.core.audio import load_audio

    cache = {}

    def load(relative_path: str):
        if relative_path not in cache:
            cache[relative_path] = load_audio(root / relative_path)
        return cache[relative_path]

    return load


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """models/tiny.en, exported by `make setup` / `make test`."""
    if not (MODEL_DIR / "hailo_whisper_model.json").is_file():
        pytest.fail(f"exported model missing: {MODEL_DIR} (run `make test`, which exports it first)", pytrace=False)
    return MODEL_DIR


@pytest.fixture(scope="session")
def base_model_dir() -> Path:
    """An export of the multilingual base model, or a skip saying how to make one."""
    if not (BASE_MODEL_DIR / "hailo_whisper_model.json").is_file():
        pytest.skip(f"no base export in {BASE_MODEL_DIR} (`hailo-whisper export base --out DIR` and "
                    "HAILO_WHISPER_BASE_MODEL_DIR=DIR, about a minute)")
    return BASE_MODEL_DIR


@pytest.fixture(scope="session")
def speech_samples() -> Path:
    """The real speech shipped with the package (ALL.tsv + FLAC clips, the dev set's relative paths)."""
    if not (SPEECH_SAMPLES / "ALL.tsv").is_file():
        pytest.fail(f"speech samples missing: {SPEECH_SAMPLES}/ALL.tsv (they ship with the repository)", pytrace=False)
    return SPEECH_SAMPLES


@pytest.fixture(scope="session")
def sample_clips(speech_samples):
    """Every shipped clip (audio path, reference, duration) by its path relative to the samples, in ALL.tsv order."""
    from hailo_whisper_ros.evaluation.datasets import load_dataset

    return {clip.audio_path.relative_to(speech_samples).as_posix(): clip for clip in load_dataset(speech_samples)}


@pytest.fixture(scope="session")
def sample_audio(speech_samples):
    """Loads a shipped clip by its relative path, e.g. sample_audio("jfk/jfk.flac")."""
    return cached_loader(speech_samples)


@pytest.fixture(scope="session")
def speech_dev() -> Path:
    """The shared dev set beside the clone (ALL.tsv + audio); the test skips where it is absent."""
    if not (SPEECH_DEV / "ALL.tsv").is_file():
        pytest.skip(f"dev set absent: {SPEECH_DEV} (only CI and developers' machines have it)")
    return SPEECH_DEV


@pytest.fixture(scope="session")
def dev_utterances(speech_dev):
    """Every dev utterance (audio path, reference, duration) in ALL.tsv order."""
    from hailo_whisper_ros.evaluation.datasets import load_dataset

    return load_dataset(speech_dev)


@pytest.fixture(scope="session")
def dev_audio(speech_dev):
    """Loads a dev clip by its path relative to the set, e.g. dev_audio("jfk/jfk.flac")."""
    return cached_loader(speech_dev)


@pytest.fixture(scope="session")
def recognizer(model_dir):
    """The default path: dynamic ONNX encoder + INT8 KV-cache decoder, loaded once per test session."""
    from hailo_whisper_ros.core.config import RecognizerConfig
    from hailo_whisper_ros.core.recognizer import Recognizer

    return Recognizer(RecognizerConfig(model_dir))
