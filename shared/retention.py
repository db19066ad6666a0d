"""Retention: deleting, in small batches, what a service no longer needs, so its tables stop growing.

Every service schema has two tables that grow with every event (`shared.db.migrate`): the processed event ids
that make consumers idempotent, and the outbox, whose rows stay once published. Both are kept for
`DEDUP_WINDOW`, then deleted by a `Retention` loop each service runs. A service with more to prune (the
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

#: How long a processed event id and a published outbox row are kept. A redelivery comes from a delivery whose ack
#: was lost (the broker redelivers it as soon as the consumer's channel closes) or from a dead-lettered message
#: replayed by hand; a week covers both, a broker outage over a weekend included. An id pruned and then delivered
#: again would be handled again; the outbox's ids are only there to be published once, which happened.
DEDUP_WINDOW = timedelta(days=7)
#: Rows deleted per statement: a batch takes milliseconds, so the locks it holds never stall a consumer.
BATCH = 5000
#: How often the loop prunes: retention is measured in days, an hour late changes nothing.
INTERVAL_SECONDS = 3600.0


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


async def prune_dedup(pool: asyncpg.Pool, schema: str, before: datetime, *, batch: int = BATCH) -> int:
    """Delete the processed event ids recorded, and the outbox rows published, before `before` in `schema`."""
    processed = await delete_in_batches(pool, f'"{schema}".processed_events', "processed_at < $1", before, batch=batch)
    published = await delete_in_batches(pool, f'"{schema}".outbox', "published_at < $1", before, batch=batch)
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
        return await prune_dedup(pool, schema, now - DEDUP_WINDOW)

    return Retention(schema, prune, clock=clock)
