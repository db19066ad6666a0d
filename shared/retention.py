"""Retention: deleting, in small batches, what a service no longer needs, so its tables stop growing.

Every service schema has two tables that grow with every event (`shared.db.migrate`): the processed event ids
that make consumers idempotent, kept for `DEDUP_WINDOW`, and the outbox, whose rows stay once published, kept for
`PUBLISHED_WINDOW`; a `Retention` loop each service runs deletes them. A service with more to prune (the
reporter's history) passes its own `prune`.

Deletes go in batches of `BATCH` rows, each its own short transaction, and skip rows another replica is
deleting (`FOR UPDATE SKIP LOCKED`), so several replicas prune side by side, none holds locks for long, and a
batch that fails is simply done again by the next tick.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import asyncpg
import structlog

from shared.clock import Clock, utc_now
from shared.periodic import PeriodicTask

log = structlog.get_logger(__name__)

#: How long a processed event id is kept. A redelivery comes from a delivery whose ack was lost (the broker
#: redelivers it as soon as the consumer's channel closes) or from a dead-lettered message replayed by hand; a
#: week covers both, a broker outage over a weekend included. An id pruned and then delivered again would be
#: handled again.
DEDUP_WINDOW = timedelta(days=7)
#: How long a published outbox row is kept. Its id is only there to be published once, which happened, and a
#: scanner's rows carry whole chains: kept a week, 100,000 hourly targets would hold tens of gigabytes of them. A
#: quarter of an hour leaves what just left visible to an operator or a test.
PUBLISHED_WINDOW = timedelta(minutes=15)
#: Rows deleted per statement: a batch takes milliseconds, so the locks it holds never stall a consumer.
BATCH = 5000
#: How often a loop prunes by default: history retention is measured in days, an hour late changes nothing.
INTERVAL_SECONDS = 3600.0
#: How often the dedup loop prunes: often enough that published rows outlive their window by a third at most.
DEDUP_INTERVAL_SECONDS = 300.0


async def delete_in_batches(pool: asyncpg.Pool, table: str, condition: str, *args: object, batch: int = BATCH) -> int:
    """Delete the rows of `table` (schema-qualified, quoted) matching `condition` (`$1`... are `args`), `batch` at
    a time, each batch committed on its own; returns how many were deleted."""
    limit = f"${len(args) + 1}"
    statement = (
        f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("
        f"SELECT ctid FROM {table} WHERE {condition} LIMIT {limit} FOR UPDATE SKIP LOCKED))"
    )
    deleted = 0
    while True:
        status = await pool.execute(statement, *args, batch)
        count = int(status.split()[-1])
        deleted += count
        if count < batch:
            return deleted


async def prune_dedup(pool: asyncpg.Pool, schema: str, now: datetime, *, batch: int = BATCH) -> int:
    """Delete, as of `now`, the processed event ids older than `DEDUP_WINDOW` and the outbox rows published longer
    ago than `PUBLISHED_WINDOW` in `schema`."""
    processed_before, published_before = now - DEDUP_WINDOW, now - PUBLISHED_WINDOW
    processed = await delete_in_batches(
        pool, f'"{schema}".processed_events', "processed_at < $1", processed_before, batch=batch
    )
    published = await delete_in_batches(pool, f'"{schema}".outbox', "published_at < $1", published_before, batch=batch)
    return processed + published


class Retention:
    """Calls `prune(now)` at start and then every `interval` seconds, as a `PeriodicTask` (a failure is retried)."""

    def __init__(
        self,
        schema: str,
        prune: Callable[[datetime], Awaitable[int]],
        *,
        clock: Clock = utc_now,
        interval: float = INTERVAL_SECONDS,
    ) -> None:
        self._schema, self._prune, self._clock = schema, prune, clock
        self._loop = PeriodicTask(f"retention:{schema}", self.run_once, interval=interval)

    async def run_once(self) -> int:
        """Prune now; returns how many rows were deleted."""
        deleted = await self._prune(self._clock())
        if deleted:
            log.info("retention_pruned", schema=self._schema, rows=deleted)
        return deleted

    async def start(self) -> None:
        """Start pruning in the background."""
        await self._loop.start()

    async def stop(self) -> None:
        """Stop pruning (a batch in progress rolls back)."""
        await self._loop.stop()


def dedup_retention(pool: asyncpg.Pool, schema: str, *, clock: Clock = utc_now) -> Retention:
    """The `Retention` of a service whose only growing tables are the processed event ids and the outbox."""

    async def prune(now: datetime) -> int:
        return await prune_dedup(pool, schema, now)

    return Retention(schema, prune, clock=clock, interval=DEDUP_INTERVAL_SECONDS)
