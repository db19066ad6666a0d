"""Memo helpers shared by the evaluator's worker threads: a bounded memo (oldest dropped first), and key parts
compared by identity."""

import threading
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")
T = TypeVar("T")


class Identity(Generic[T]):
    """A key part compared by identity, for an object with no hash (a config of dicts and lists) or a costly
    one (a certificate hashes its DER); it holds the object, so its id is never reused while the key lives."""

    __slots__ = ("item",)

    def __init__(self, item: T) -> None:
        self.item = item

    def __hash__(self) -> int:
        return id(self.item)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity) and other.item is self.item


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
