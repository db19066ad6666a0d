"""The transactional outbox: a database write and the events it causes commit together, and a relay
publishes them afterwards, at least once, in order.

`shared.db.migrate` creates its table in every service schema. The relay keeps
`certmon_outbox_backlog{schema}` (rows not yet published) up to date at each poll.
"""

import hashlib
from collections.abc import Sequence

import asyncpg
import structlog
from prometheus_client import Gauge

from shared.broker.bus import Bus
from shared.events import CloudEvent
from shared.periodic import PeriodicTask

log = structlog.get_logger(__name__)

OUTBOX_BACKLOG = Gauge(
    "certmon_outbox_backlog",
    "Outbox rows written and not yet published, by schema (the service), as its relay last saw them.",
    ["schema"],
)


async def enqueue(conn: asyncpg.Connection, schema: str, event: CloudEvent) -> None:
    """Add an event to the outbox inside the caller's transaction (a duplicate id is ignored)."""
    await enqueue_many(conn, schema, [event])


async def enqueue_many(conn: asyncpg.Connection, schema: str, events: Sequence[CloudEvent]) -> None:
    """Add events to the outbox inside the caller's transaction, in one statement and in their order (an id
    already queued, or repeated among them, is ignored)."""
    if not events:
        return
    await conn.execute(
        f'INSERT INTO "{schema}".outbox(event_id, event) '
        "SELECT event_id, event FROM unnest($1::text[], $2::jsonb[]) WITH ORDINALITY AS e(event_id, event, n) "
        "ORDER BY n ON CONFLICT (event_id) DO NOTHING",
        [event.id for event in events],
        [event.model_dump(mode="json") for event in events],
    )


class OutboxRelay:
    """Publishes unpublished outbox rows in order; `kick()` after a commit makes it run at once.

    It runs as a `PeriodicTask`, so a broker or database outage only delays publishing: the rows wait, and
    the loop retries with backoff until they are confirmed. Replicas of a service share one outbox table; an
    advisory lock lets one relay at a time publish it, so events leave in the order they were committed.
    """

    def __init__(self, pool: asyncpg.Pool, schema: str, bus: Bus, *, poll_seconds: float = 1.0) -> None:
        self._pool, self._schema, self._bus = pool, schema, bus
        self._lock_id = int.from_bytes(
            hashlib.sha256(f"certmon:outbox:{schema}".encode()).digest()[:8], "big", signed=True
        )
        self._loop = PeriodicTask(f"outbox:{schema}", self.flush, interval=poll_seconds)

    def kick(self) -> None:
        """Ask the relay to publish now."""
        self._loop.wake()

    async def start(self) -> None:
        """Start the relay loop."""
        await self._loop.start()

    async def stop(self) -> None:
        """Stop the loop, then publish what is pending once more (what cannot be published stays for later)."""
        await self._loop.stop()
        try:
            await self.flush()
        except Exception as exc:  # stopping anyway: the rows stay in the outbox for the next start
            log.warning("outbox_final_flush_failed", schema=self._schema, error_type=type(exc).__name__, error=str(exc))

    async def flush(self) -> int:
        """Publish every pending row in order; returns how many were published (0 if another relay holds the
        lock: it is publishing them). Sets the backlog gauge to what is left."""
        published = 0
        backlog = OUTBOX_BACKLOG.labels(self._schema)
        while True:
            failure: Exception | None = None
            async with self._pool.acquire() as conn, conn.transaction():
                if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._lock_id):
                    backlog.set(await self._backlog(conn))
                    return published
                rows = await conn.fetch(
                    f'SELECT seq, event FROM "{self._schema}".outbox WHERE published_at IS NULL '
                    "ORDER BY seq LIMIT 100 FOR UPDATE"
                )
                if not rows:
                    backlog.set(0)
                    return published
                done: list[int] = []
                for row in rows:
                    try:
                        await self._bus.publish(CloudEvent.model_validate(row["event"]))
                    except Exception as exc:  # raised after the commit below, so confirmed rows are not sent again
                        failure = exc
                        break
                    done.append(row["seq"])
                if done:
                    await conn.execute(
                        f'UPDATE "{self._schema}".outbox SET published_at = now() WHERE seq = ANY($1::bigint[])', done
                    )
                if failure is not None:
                    backlog.set(await self._backlog(conn))
            published += len(done)
            if failure is not None:
                raise failure

    async def _backlog(self, conn: asyncpg.Connection) -> int:
        """Rows not yet published (counted on the partial index of unpublished rows, so cheap while it is short)."""
        count = await conn.fetchval(f'SELECT count(*) FROM "{self._schema}".outbox WHERE published_at IS NULL')
        return int(count)
