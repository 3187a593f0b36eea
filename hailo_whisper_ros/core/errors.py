"""The one error type of the package."""


class HailoWhisperError(Exception):
    """An error the user can act on (missing file, bad parameter, bad input); printed as one line, no traceback."""
