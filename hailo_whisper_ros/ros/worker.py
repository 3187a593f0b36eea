"""A node's worker thread. Executor callbacks only queue work and wake the worker, so that inference or conversion
never blocks the executor; the worker runs one step at a time until the node stops it."""

from __future__ import annotations

import threading
from collections.abc import Callable


class NodeWorker:
    """Runs ``step`` on a thread of its own, after waiting (``idle_wait_s`` at most) for a wake-up unless
    ``has_work()`` says there is work already (asked with the worker's lock held, so a wake-up is never missed)."""

    def __init__(self, name: str, step: Callable[[], None], idle_wait_s: float,
                 has_work: Callable[[], bool] = lambda: False):
        self._condition = threading.Condition(threading.Lock())
        self._step = step
        self._has_work = has_work
        self._idle_wait_s = idle_wait_s
        self._running = True
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """New work is queued (any thread)."""
        with self._condition:
            self._condition.notify()

    def stop(self, timeout_s: float) -> None:
        """Let the step in progress finish, then end the thread (also when it never started). Called before the
        node's publishers and its context go, since the step may publish and log."""
        with self._condition:
            self._running = False
            self._condition.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        while True:
            with self._condition:
                if self._running and not self._has_work():
                    self._condition.wait(timeout=self._idle_wait_s)
                if not self._running:
                    return
            self._step()
