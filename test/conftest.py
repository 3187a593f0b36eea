"""Shared fixtures: the exported default model (found from the repo root) and the shared speech dev set beside it.

`make test` exports the model before running the tests, so a missing model is a setup failure, not a skip.
"""

from pathlib import Path

import pytest

from hailo_whisper_ros.core.datasets import SPEECH_DEV

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO_ROOT / "models" / "tiny.en"


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """models/tiny.en, exported by `make setup` / `make test`."""
    if not (MODEL_DIR / "hailo_whisper_model.json").is_file():
        pytest.fail(f"exported model missing: {MODEL_DIR} (run `make test`, which exports it first)", pytrace=False)
    return MODEL_DIR


@pytest.fixture(scope="session")
def speech_dev() -> Path:
    """The shared dev set beside the repo (ALL.tsv + audio)."""
    if not (SPEECH_DEV / "ALL.tsv").is_file():
        pytest.fail(f"speech dev set missing: {SPEECH_DEV}/ALL.tsv", pytrace=False)
    return SPEECH_DEV


@pytest.fixture(scope="session")
def dev_utterances(speech_dev):
    """Every dev utterance (audio path, reference, duration) in ALL.tsv order."""
    from hailo_whisper_ros.core.evaluation import load_dataset

    return load_dataset(speech_dev)


@pytest.fixture(scope="session")
def dev_audio(speech_dev):
    """Loads a dev clip by its path relative to the set (16 kHz float32 mono), caching it."""
    from hailo_whisper_ros.core.audio import load_audio

    cache = {}

    def load(relative_path: str):
        if relative_path not in cache:
            cache[relative_path] = load_audio(speech_dev / relative_path)
        return cache[relative_path]

    return load


@pytest.fixture(scope="session")
def recognizer(model_dir):
    """The default path: dynamic ONNX encoder + INT8 KV-cache decoder, loaded once per test session."""
    from hailo_whisper_ros.core.recognizer import Recognizer, RecognizerConfig

    return Recognizer(RecognizerConfig(model_dir))
