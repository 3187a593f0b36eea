"""What a robot runs: audio in, Whisper features, encoder and decoder backends, decoding, VAD and streaming.

Nothing here imports rclpy or another part of the package (``test/unit/test_import_directions.py`` checks it);
``hailo_platform`` is imported only by ``backends/hailort.py``, and only when a HEF is configured.
"""
