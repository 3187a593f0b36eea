"""`export --hailo` writes the decoder HEF's token embedding from the exported decoder, in Hailo's assets layout, and
the HEF decoder reads it: the rows are the embeddings the ONNX decoder looks up itself."""

import numpy as np
import onnx
from onnx import numpy_helper

from hailo_whisper_ros.core.model_dir import DECODER, ModelInfo
from hailo_whisper_ros.export.graphs import EMBEDDING_T
from hailo_whisper_ros.export.hailo_assets import token_embedding_path, write_decoder_assets


def test_the_token_embedding_is_the_decoders_own_in_hailos_layout(model_dir, tmp_path):
    info = ModelInfo.load(model_dir / "hailo_whisper_model.json")
    path = write_decoder_assets(model_dir, tmp_path)
    assert path == tmp_path / "tiny.en" / "decoder_tokenization" / "token_embedding_weight_tiny.en.npy"
    assert path == token_embedding_path(tmp_path, info.name)
    table = np.load(path)
    assert table.shape == (info.n_vocab, info.n_text_state) and table.dtype == np.float32
    (weight,) = [t for t in onnx.load(model_dir / DECODER).graph.initializer if t.name == EMBEDDING_T]
    np.testing.assert_array_equal(table[info.sot], numpy_helper.to_array(weight)[:, info.sot])
