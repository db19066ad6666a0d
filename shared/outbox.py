"""The transactional outbox: a database write and the events it causes commit together, and a relay
publishes them afterwards, at least once, in commit order unless the broker refuses some of them.

`shared.db.migrate` creates its table in every service schema. The relay sets `certmon_outbox_backlog{schema}`
(rows not yet published) at each poll, and once per poll interval while it drains a long backlog.

The relay publishes a batch of rows with up to `IN_FLIGHT` publishes awaiting their confirm at once (the
broker confirms a window of them together). The publishes start in the rows' commit order and the AMQP client
sends their frames in that order, so when every publish succeeds the events leave in commit order. When some
fail, the relay stops starting new ones, lets those in flight finish, marks every confirmed row as published
(a confirmed event is never sent again), keeps the others for the next flush and, after the commit, raises the
failure of the earliest row. A row refused there may then leave after rows committed later than it: order
holds while the broker takes every event, at-least-once always. A quorum queue at its length limit learns it is
full while publishes are in flight, so it takes up to a window of them past the limit before refusing.

A publish refused because a queue is full (`QueueFull`) makes the relay back off exponentially up to
`DEFAULT_BACKOFF.maximum`, 30 s (the poll interval caps the backoff after any other failure): each refused publish
of an event routed to several queues leaves a copy in those that are not full, so retrying every second
would fill them with duplicates. The backoff ends with the first flush the broker takes whole, so normal
publishing is never slowed; while it lasts, kicks are ignored and the backlog gauge keeps the count of the
last refused flush.
"""

import asyncio
import hashlib
import time
from collections.abc import Sequence

import asyncpg
import structlog
from prometheus_client import Gauge

from shared.broker.bus import Bus, QueueFull
from shared.events import CloudEvent
from shared.periodic import PeriodicTask

log = structlog.get_logger(__name__)

OUTBOX_BACKLOG = Gauge(
    "certmon_outbox_backlog",
    "Outbox rows written and not yet published, by schema (the service), as its relay last saw them.",
    ["schema"],
)

#: Rows per transaction. Between two batches nothing is in flight (the last confirms, the update, the commit and
#: the next select come one after the other), so a batch should be long; at the relay's rate a batch of 1000 holds
#: its row locks about a second, and a relay stopped mid-batch sends at most that many again. In
#: `benchmarks/outbox_relay.py --sweep`, 1000 drained faster than 500; 2000 gained nothing clear.
BATCH = 1000
#: Publishes awaiting their confirm at once: enough for the broker's confirms to come in windows (100 to 1000 drained
#: alike in the benchmark), few enough that when a queue starts refusing, at most this many refused publishes (each
#: a duplicate in the other queues its event routes to) are already on the wire.
IN_FLIGHT = 100


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
        self._poll_seconds = poll_seconds
        self._loop = PeriodicTask(f"outbox:{schema}", self.flush, interval=poll_seconds, patient_with=(QueueFull,))
        self._backlog = OUTBOX_BACKLOG.labels(schema)
        self._counted_at = -poll_seconds  # monotonic time of the last count of the backlog

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
        """Publish every pending row, a batch per transaction; returns how many were published (0 if another relay
        holds the lock: it is publishing them). Sets the backlog gauge to what is left when it returns or raises,
        and while it drains a long backlog, once per poll interval.

        A batch some of whose publishes fail commits the confirmed ones and then raises the earliest failure
        (see the module's docstring)."""
        published = 0
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._lock_id):
                    await self._count_backlog(conn)
                    return published
                rows = await conn.fetch(
                    f'SELECT seq, event FROM "{self._schema}".outbox WHERE published_at IS NULL '
                    "ORDER BY seq LIMIT $1 FOR UPDATE",
                    BATCH,
                )
                if not rows:
                    self._backlog.set(0)
                    self._counted_at = time.monotonic()
                    return published
                confirmed, failure = await self._publish([CloudEvent.model_validate(row["event"]) for row in rows])
                done = [row["seq"] for row, ok in zip(rows, confirmed, strict=True) if ok]
                if done:
                    await conn.execute(
                        f'UPDATE "{self._schema}".outbox SET published_at = now() WHERE seq = ANY($1::bigint[])', done
                    )
                # Counting costs a scan of the unpublished rows: not at every batch of a long drain.
                if failure is not None or time.monotonic() - self._counted_at >= self._poll_seconds:
                    await self._count_backlog(conn)
            published += len(done)
            if failure is not None:
                raise failure

    async def _publish(self, events: Sequence[CloudEvent]) -> tuple[list[bool], Exception | None]:
        """Publish `events` with up to `IN_FLIGHT` awaiting their confirm, started in order; once one fails no
        more are started. Returns which were confirmed, and the failure of the earliest that was not."""
        confirmed = [False] * len(events)
        failures: dict[int, Exception] = {}
        slots = asyncio.Semaphore(IN_FLIGHT)

        async def publish(i: int) -> None:
            try:
                await self._bus.publish(events[i])
                confirmed[i] = True
            except Exception as exc:  # kept for the caller, who commits what was confirmed before raising it
                failures[i] = exc
            finally:
                slots.release()

        async with asyncio.TaskGroup() as group:
            for i in range(len(events)):
                await slots.acquire()
                if failures:
                    break
                group.create_task(publish(i))
        return confirmed, failures[min(failures)] if failures else None

    async def _count_backlog(self, conn: asyncpg.Connection) -> None:
        """Set the backlog gauge to the rows not yet published (counted on the partial index of unpublished rows,
        so cheap while it is short)."""
        count = await conn.fetchval(f'SELECT count(*) FROM "{self._schema}".outbox WHERE published_at IS NULL')
        self._backlog.set(int(count))
        self._counted_at = time.monotonic()
