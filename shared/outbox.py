"""The transactional outbox: a database write and the events it causes commit together, and a relay
publishes them afterwards, at least once, in order.

`shared.db.migrate` creates its table in every service schema.
"""

import asyncio
import contextlib

import asyncpg
import structlog

from shared.broker.bus import Bus, BusError
from shared.events import CloudEvent

log = structlog.get_logger(__name__)


async def enqueue(conn: asyncpg.Connection, schema: str, event: CloudEvent) -> None:
    """Add an event to the outbox inside the caller's transaction (a duplicate id is ignored)."""
    await conn.execute(
        f'INSERT INTO "{schema}".outbox(event_id, event) VALUES ($1, $2) ON CONFLICT (event_id) DO NOTHING',
        event.id,
        event.model_dump(mode="json"),
    )


class OutboxRelay:
    """Publishes unpublished outbox rows; `kick()` after a commit makes it run at once."""

    def __init__(self, pool: asyncpg.Pool, schema: str, bus: Bus, *, poll_seconds: float = 1.0) -> None:
        self._pool, self._schema, self._bus, self._poll = pool, schema, bus, poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        """Ask the relay to publish now."""
        self._wake.set()

    async def start(self) -> None:
        """Start the relay loop."""
        self._task = asyncio.create_task(self._run(), name=f"outbox:{self._schema}")

    async def stop(self) -> None:
        """Publish what is pending once more, then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(BusError, OSError, asyncpg.PostgresError):
            await self.flush()

    async def flush(self) -> int:
        """Publish every pending row in order; returns how many were published."""
        published = 0
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    f'SELECT seq, event FROM "{self._schema}".outbox WHERE published_at IS NULL '
                    "ORDER BY seq LIMIT 100 FOR UPDATE SKIP LOCKED"
                )
                if not rows:
                    return published
                for row in rows:
                    await self._bus.publish(CloudEvent.model_validate(row["event"]))
                    await conn.execute(
                        f'UPDATE "{self._schema}".outbox SET published_at = now() WHERE seq = $1', row["seq"]
                    )
                    published += 1

    async def _run(self) -> None:
        while True:
            try:
                await self.flush()
            except (BusError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("outbox_publish_failed", schema=self._schema, error=str(exc))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()
            self._wake.clear()
