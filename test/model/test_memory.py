"""Memory figures of a loaded model (evaluation/memory.py), as the pipeline command prints them."""

import pytest

from hailo_whisper_ros.core.config import RecognizerConfig
from hailo_whisper_ros.core.model_dir import ONNX_ENCODER_FILES
from hailo_whisper_ros.evaluation.memory import load_recognizer


def test_memory_figures_of_a_load_and_its_warm_up(model_dir, sample_audio):
    recognizer, memory = load_recognizer(RecognizerConfig(model_dir))
    print(f"\nmemory: {memory}")
    assert memory.before_load_mb < memory.after_load_mb <= memory.after_warmup_mb + 1
    assert memory.model_mb == pytest.approx(memory.load_mb + memory.warmup_mb)
    assert recognizer.transcribe(sample_audio("jfk/jfk.flac")).text  # warmed up and ready


def test_memory_figure_of_a_reload_counts_the_models_again(model_dir):
    """Models freed by an earlier recognizer must not hide the next one's memory (freed heap is returned first)."""
    config = RecognizerConfig(model_dir)
    first = load_recognizer(config)[1].load_mb
    second = load_recognizer(config)[1].load_mb
    # What is loaded: the dynamic encoder, the INT8 step decoder and the cross-attention cache graph.
    files = (model_dir / ONNX_ENCODER_FILES["dynamic"], model_dir / "default_int8/decoder_with_past_model.onnx",
             model_dir / "decoder_cross_kv.onnx")
    weights_mb = sum(path.stat().st_size for path in files) / 2**20
    print(f"\nload: {first:.0f} MB, after a reload: {second:.0f} MB, weights {weights_mb:.0f} MB")
    assert second > weights_mb and first > weights_mb
