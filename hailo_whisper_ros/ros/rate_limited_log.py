"""Logging that says each kind of problem once, then at most once a minute with a count, never once per message."""

from __future__ import annotations

import time

REPEAT_AFTER_S = 60.0


class RateLimitedLog:
    def __init__(self, logger, repeat_after_s: float = REPEAT_AFTER_S):
        self.logger = logger
        self.repeat_after_s = repeat_after_s
        self.last_logged: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def _due(self, kind: str, message: str) -> str | None:
        """The line to log now for this kind (with the count of those held back since), or None to hold it back."""
        now = time.monotonic()
        last = self.last_logged.get(kind)
        if last is not None and now - last < self.repeat_after_s:
            self.suppressed[kind] = self.suppressed.get(kind, 0) + 1
            return None
        repeats = self.suppressed.pop(kind, 0)
        self.last_logged[kind] = now
        return message + (f" (and {repeats} more like it since)" if repeats else "")

    # rclpy fixes the severity of each line that calls its logger (a ValueError on any other severity from that
    # line), so each severity is logged from a line of its own.
    def info(self, kind: str, message: str) -> None:
        if (line := self._due(kind, message)) is not None:
            self.logger.info(line)

    def warn(self, kind: str, message: str) -> None:
        if (line := self._due(kind, message)) is not None:
            self.logger.warning(line)

    def error(self, kind: str, message: str) -> None:
        if (line := self._due(kind, message)) is not None:
            self.logger.error(line)
