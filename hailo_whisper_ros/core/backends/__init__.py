"""Encoder and decoder backends behind the two small interfaces of ``base``: ONNX Runtime on the CPU (``onnx``),
HEFs on the Hailo NPU (``hailo``, over the thin HailoRT adapter ``hailort``), and the choice between them with the
CPU fallback (``select``)."""
