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

    def _log(self, emit, kind: str, message: str) -> None:
        now = time.monotonic()
        last = self.last_logged.get(kind)
        if last is not None and now - last < self.repeat_after_s:
            self.suppressed[kind] = self.suppressed.get(kind, 0) + 1
            return
        repeats = self.suppressed.pop(kind, 0)
        self.last_logged[kind] = now
        emit(message + (f" (and {repeats} more like it since)" if repeats else ""))

    def info(self, kind: str, message: str) -> None:
        self._log(self.logger.info, kind, message)

    def warn(self, kind: str, message: str) -> None:
        self._log(self.logger.warning, kind, message)

    def error(self, kind: str, message: str) -> None:
        self._log(self.logger.error, kind, message)
