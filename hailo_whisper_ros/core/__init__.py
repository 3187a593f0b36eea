"""The recognizer core: audio, features, encoders, decoder, streaming and evaluation. Imports no rclpy."""


class HailoWhisperError(Exception):
    """An error the user can act on (missing file, bad parameter, bad input); printed as one line, no traceback."""
