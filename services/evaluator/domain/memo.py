"""Memo helpers shared by the evaluator's worker threads: a bounded memo (oldest dropped first), one bounded in
entries and in the length of its keys (least recently used dropped first), and key parts compared by identity."""

import threading
from collections import OrderedDict
from collections.abc import Sized
from typing import Generic, TypeVar

K = TypeVar("K")
S = TypeVar("S", bound=Sized)
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


class LengthBoundedMemo(Generic[S, V]):
    """A memo that never holds more than `size` entries nor keys longer than `length` in all (a key's length
    stands for its value's size: a certificate's DER or base64 and what is parsed from it); the least recently
    used entry goes first.

    Shared by the threads that evaluate: a lookup is a dict read and a move to the end, each one C call (atomic
    under the GIL; a key another thread has just dropped is simply not moved); an insertion takes the lock, since
    it counts the lengths and evicts.
    """

    def __init__(self, size: int, length: int) -> None:
        self.size, self.length = size, length
        self._entries: OrderedDict[S, V] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def get(self, key: S, default: D) -> V | D:
        """The remembered result, now the most recently used, or `default` (pass a marker if results may be None)."""
        found = self._entries.get(key, default)
        if found is not default:
            # Not `contextlib.suppress`: a context manager on every hit costs more than the lookup.
            try:  # noqa: SIM105
                self._entries.move_to_end(key)
            except KeyError:  # evicted by another thread since the read: the result read still holds
                pass
        return found

    def put(self, key: S, value: V) -> V:
        """Remember `value` for `key`, dropping the least recently used entries while over either bound; a key
        longer than `length` alone is not kept. Returns `value`."""
        if len(key) > self.length:
            return value
        with self._lock:
            if key not in self._entries:
                self._held += len(key)
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size or self._held > self.length:
                dropped, _ = self._entries.popitem(last=False)
                self._held -= len(dropped)
        return value

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()
            self._held = 0

    @property
    def held(self) -> int:
        """The length of the keys kept, in all."""
        return self._held

    def __len__(self) -> int:
        return len(self._entries)
