"""The input queue of both transcribers: filled from any thread, bounded in audio (beyond ``max_queue_s`` the oldest
audio is dropped, exactly, and counted), taken by the worker in order, with the accounting of every sample and the
time each arrived."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from hailo_whisper_ros.core.constants import SAMPLE_RATE

ARRIVAL_HISTORY = 4096  # inputs whose arrival times are kept: minutes of 20 ms messages, more than an utterance

Item = TypeVar("Item")


class InputQueue(Generic[Item]):
    """Items that may carry audio: ``samples_of(item)`` says how much, ``without_first(item, n)`` is the item
    without its first ``n`` samples (the oldest item is cut to drop exactly the excess); items without audio are
    never dropped. ``is_end(item)``: the item (without audio) ends an utterance (``ends_queued`` counts them).

    Counts, in samples: ``fed`` = ``processed`` + ``dropped`` + ``queued``. ``reset`` empties the queue and
    increments ``generation``, so that the worker notices at its next take."""

    def __init__(
        self,
        max_queue_s: float,
        samples_of: Callable[[Item], int],
        without_first: Callable[[Item, int], Item],
        is_end: Callable[[Item], bool] = lambda item: False,
    ):
        self.lock = threading.Lock()
        self.max_queue_s = max_queue_s
        self._samples_of, self._without_first, self._is_end = samples_of, without_first, is_end
        self._items: deque[tuple[int, Item]] = deque()  # (put order, item)
        self.puts = 0  # items put so far: the order of the next
        self.fed = self.dropped = self.processed = self.queued = self.max_queued = 0
        self.ends_queued = 0
        self.generation = 0
        # (stream position, time.perf_counter()) after each input's audio: when each sample arrived
        self._arrivals: deque[tuple[int, float]] = deque(maxlen=ARRIVAL_HISTORY)

    def put(self, item: Item, arrived_at: float, audio_end: int | None = None) -> None:
        """Append an item that arrived at ``arrived_at``; ``audio_end``: the stream position after its audio (None:
        after every sample fed so far, as in a queue of audio arrays)."""
        samples = self._samples_of(item)
        with self.lock:
            self._items.append((self.puts, item))
            self.puts += 1
            self.queued += samples
            self.fed += samples
            self.ends_queued += self._is_end(item)
            if samples:
                self._arrivals.append((self.fed if audio_end is None else audio_end, arrived_at))
            self._drop_oldest_beyond(self.max_queue_s)
            self.max_queued = max(self.max_queued, self.queued)

    def take_one(self, until: int) -> tuple[int, Item | None]:
        """(reset generation, the oldest item if it was put before the ``until``-th, else None)."""
        with self.lock:
            if not self._items or self._items[0][0] >= until:
                return self.generation, None
            _, item = self._items.popleft()
            self._taken(self._samples_of(item))
            self.ends_queued -= self._is_end(item)
            return self.generation, item

    def take_audio(self, until: int, max_samples: int) -> tuple[int, int, list[Item]]:
        """(reset generation, stream position of the first sample taken, the oldest items put before the
        ``until``-th that make up ``max_samples`` of audio at most, the last one cut to fit). For a queue of audio
        arrays only: positions count every sample fed."""
        with self.lock:
            start = self.fed - self.queued  # the queue always holds the newest audio
            taken, wanted = [], max_samples
            while wanted > 0 and self._items and self._items[0][0] < until:
                order, item = self._items[0]
                samples = self._samples_of(item)
                if samples <= wanted:
                    self._items.popleft()
                else:
                    self._items[0] = (order, self._without_first(item, wanted))
                    item = item[:wanted]
                    samples = wanted
                taken.append(item)
                wanted -= samples
                self._taken(samples)
            return self.generation, start, taken

    def discard(self, samples: int) -> None:
        """Audio taken that the worker could not use: counted as dropped instead of processed."""
        with self.lock:
            self.processed -= samples
            self.dropped += samples

    def reset(self) -> None:
        """Drop everything queued (its audio counted as dropped)."""
        with self.lock:
            self.dropped += self.queued
            self._items.clear()
            self.queued = self.ends_queued = 0
            self.generation += 1

    def set_max_queue_s(self, max_queue_s: float) -> None:
        with self.lock:
            self.max_queue_s = max_queue_s
            self._drop_oldest_beyond(max_queue_s)

    def seconds(self) -> tuple[float, float, float, float, float]:
        """(fed, dropped, queued, max queued, processed), in seconds."""
        with self.lock:
            counts = (self.fed, self.dropped, self.queued, self.max_queued, self.processed)
        return tuple(samples / SAMPLE_RATE for samples in counts)

    def arrival_of(self, position: int) -> float | None:
        """When the sample before stream position ``position`` arrived (None: longer ago than the history)."""
        with self.lock:
            arrived_at = None
            for end, at in reversed(self._arrivals):
                if end < position:
                    break
                arrived_at = at
            return arrived_at

    def _taken(self, samples: int) -> None:
        self.queued -= samples
        self.processed += samples

    def _drop_oldest_beyond(self, max_queue_s: float) -> None:
        """Drop the oldest queued audio beyond max_queue_s, exactly; call with the lock held."""
        excess = self.queued - int(round(max_queue_s * SAMPLE_RATE))
        kept = []
        while excess > 0:
            order, item = self._items.popleft()
            samples = self._samples_of(item)
            if samples == 0:
                kept.append((order, item))
                continue
            dropped = min(samples, excess)
            if dropped < samples:
                self._items.appendleft((order, self._without_first(item, dropped)))
            excess -= dropped
            self.queued -= dropped
            self.dropped += dropped
        self._items.extendleft(reversed(kept))

