"""`export --hailo_decoder_assets` writes the decoder HEF's token embedding from the exported decoder, in Hailo's
assets layout, and the HEF decoder reads it: the rows are the embeddings the ONNX decoder looks up itself."""

import numpy as np
import onnx
from onnx import numpy_helper

from hailo_whisper_ros.cli.main import main
from hailo_whisper_ros.core.model_dir import DECODER, ModelInfo
from hailo_whisper_ros.export.graphs import EMBEDDING_T
from hailo_whisper_ros.export.hailo_assets import token_embedding_path, write_decoder_assets


def test_the_token_embedding_is_the_decoders_own_in_hailos_layout(model_dir, tmp_path, capsys):
    info = ModelInfo.load(model_dir / "hailo_whisper_model.json")
    # An up-to-date model directory (links to the shared export's files) is not exported again: only the asset is
    # written.
    linked = tmp_path / "tiny.en"
    for source in model_dir.rglob("*"):
        if source.is_file():
            (linked / source.relative_to(model_dir)).parent.mkdir(parents=True, exist_ok=True)
            (linked / source.relative_to(model_dir)).symlink_to(source)
    assets = tmp_path / "assets"
    assert main(["export", "tiny.en", "--out", str(linked), "--hailo_decoder_assets", str(assets)]) == 0
    path = token_embedding_path(assets, info.name)
    assert f"wrote {path}" in capsys.readouterr().out
    assert write_decoder_assets(model_dir, assets) == path
    assert path == assets / "tiny.en" / "decoder_tokenization" / "token_embedding_weight_tiny.en.npy"
    table = np.load(path)
    assert table.shape == (info.n_vocab, info.n_text_state) and table.dtype == np.float32
    (weight,) = [t for t in onnx.load(model_dir / DECODER).graph.initializer if t.name == EMBEDDING_T]
    np.testing.assert_array_equal(table[info.sot], numpy_helper.to_array(weight)[:, info.sot])
