"""A bounded memo shared by the evaluator's worker threads: computed results by key, oldest dropped first."""

import threading
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")


class BoundedMemo(Generic[K, V]):
    """A dict of results that never grows past `size` entries: when full, the oldest insertion goes.

    Shared by the threads that evaluate: a lookup is a single dict read (atomic under the GIL); an insertion
    takes the lock, because dropping the oldest entry iterates the dict, which another insertion would break.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: dict[K, V] = {}
        self._lock = threading.Lock()

    def get(self, key: K, default: D) -> V | D:
        """The remembered result, or `default` (results may be None: pass a marker to tell them apart)."""
        return self._entries.get(key, default)

    def put(self, key: K, value: V) -> V:
        """Remember `value` for `key` (dropping the oldest entry when full) and return it."""
        with self._lock:
            if key not in self._entries and len(self._entries) >= self.size:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = value
        return value

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
