"""Where `/metrics` reads the estate: the latest evaluation of every target, by target key, a page at a time.

A scrape must not hold the whole estate (100,000 evaluation objects are gigabytes), so it pages through `latest`
by key (keyset pagination: each page is one index range) and decodes a page only when it renders it, in a worker
thread, dropping it before the next. `PostgresLatest` reads the reporter's tables itself; `HistoryLatest` pages
through any `HistoryStore` (the in-memory twin, in tests and `certmon run` without a database).
"""

from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Protocol

import asyncpg

from services.reporter.adapters.runs import LAST_SEEN_COLUMNS, as_last_seen
from services.reporter.ports import HistoryStore
from shared.events import Evaluation

#: Targets per page: a few megabytes of evaluations, and a hundred round trips for 100,000 targets.
PAGE_SIZE = 1000

#: A page of latest evaluations, not decoded yet: calling it decodes them (CPU work, for a worker thread).
Page = Callable[[], list[Evaluation]]

# Keys are non-empty, so the first page is the one after "" and every page is the same statement. A row of
# `evaluations` is a run of sightings (`runs`): the page reads it as its last sighting, as `History.latest` does.
_PAGE = f"""
SELECT l.target_key, {LAST_SEEN_COLUMNS}
FROM reporter.latest l JOIN reporter.evaluations e ON e.event_id = l.event_id
WHERE l.target_key > $1 ORDER BY l.target_key LIMIT $2
"""


class LatestEvaluations(Protocol):
    """The latest evaluation of every target, by target key, in pages."""

    def pages(self) -> AsyncIterator[Page]:
        """Each page once, in key order; the next one is read only when asked for."""
        ...


def _decode(rows: list[asyncpg.Record]) -> list[Evaluation]:
    return [as_last_seen(row) for row in rows]


class PostgresLatest:
    """The latest evaluations in the reporter's schema, through a pool from `shared.db.create_pool`."""

    def __init__(self, pool: asyncpg.Pool, *, page_size: int = PAGE_SIZE) -> None:
        self._pool, self._size = pool, page_size

    async def pages(self) -> AsyncIterator[Page]:
        """Each page once, in key order; the next one is read only when asked for."""
        after = ""
        while rows := await self._pool.fetch(_PAGE, after, self._size):
            yield partial(_decode, rows)
            if len(rows) < self._size:
                return
            after = rows[-1]["target_key"]


class HistoryLatest:
    """The latest evaluations of a `HistoryStore`, paged through its `latest(after=, limit=)`."""

    def __init__(self, history: HistoryStore, *, page_size: int = PAGE_SIZE) -> None:
        self._history, self._size = history, page_size

    async def pages(self) -> AsyncIterator[Page]:
        """Each page once, in key order; the next one is read only when asked for."""
        after: str | None = None
        while evaluations := await self._history.latest(after=after, limit=self._size):
            yield partial(list, evaluations)
            if len(evaluations) < self._size:
                return
            after = evaluations[-1].target_key
