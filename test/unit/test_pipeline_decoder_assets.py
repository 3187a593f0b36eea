"""`pipeline --decoder_assets_path`: Hailo's decoder assets folder gives the token embedding only. Hailo's published
decoder HEFs add the positional embedding themselves (hailo_whisper_pipeline.py calls _tokenization(add_embed=False)
since Dec 2025), so onnx_add_input_<variant>.npy beside it must not be added on the host a second time."""

import numpy as np

from hailo_whisper_ros.cli.main import build_parser
from hailo_whisper_ros.cli.pipeline import recognizer_config


def test_hailos_assets_folder_adds_no_positional_embedding(tmp_path):
    tokenization = tmp_path / "assets" / "tiny" / "decoder_tokenization"
    tokenization.mkdir(parents=True)
    for name in ("token_embedding_weight_tiny.npy", "onnx_add_input_tiny.npy"):
        np.save(tokenization / name, np.zeros((2, 2), np.float32))
    args = build_parser().parse_args([
        "pipeline", "--audio_file", "clip.wav", "--model_dir", str(tmp_path),
        "--encoder_hef_file", "encoder.hef", "--decoder_hef_file", "decoder.hef",
        "--decoder_assets_path", str(tmp_path / "assets"),
    ])
    config = recognizer_config(args)
    assert config.decoder_hef_token_embedding == tokenization / "token_embedding_weight_tiny.npy"
    assert config.decoder_hef_positional_embedding is None
