"""The PostgreSQL `DeliveryLog` (schema `notifier`): one row per idempotency key, written together with the
`notification.*.v1` event it causes (transactional outbox), plus the alarm events already handled."""

from collections.abc import Sequence

import asyncpg

from services.notifier.ports import DeliveryRecord
from shared.db import claim_event, load_migrations, migrate
from shared.events import CloudEvent
from shared.outbox import OutboxRelay, enqueue

SCHEMA = "notifier"


class PostgresDeliveryLog:
    """Reads and writes the delivery log; each write enqueues its result event in the same transaction and then
    wakes `relay`, which publishes the outbox."""

    def __init__(self, pool: asyncpg.Pool, relay: OutboxRelay) -> None:
        self._pool, self._relay = pool, relay

    async def migrate(self) -> None:
        """Create or update the schema."""
        await migrate(self._pool, SCHEMA, load_migrations("services.notifier.adapters.migrations"))

    async def sent_keys(self, keys: Sequence[str]) -> set[str]:
        """Which of these idempotency keys were already delivered."""
        rows = await self._pool.fetch(
            f'SELECT idempotency_key FROM "{SCHEMA}".deliveries '
            "WHERE idempotency_key = ANY($1::text[]) AND status = 'sent'",
            list(keys),
        )
        return {row["idempotency_key"] for row in rows}

    async def record(self, record: DeliveryRecord, result: CloudEvent) -> None:
        """Upsert the delivery's row (a `sent` row never turns back into `failed`) and enqueue `result`; after
        the commit, wake the relay."""
        delivery = record.delivery
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f'INSERT INTO "{SCHEMA}".deliveries AS d (idempotency_key, alarm_id, alarm_event_id, '
                "channel, recipient, status, attempts, last_error, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
                "ON CONFLICT (idempotency_key) DO UPDATE SET status = excluded.status, "
                "attempts = d.attempts + excluded.attempts, last_error = excluded.last_error, "
                "updated_at = excluded.updated_at WHERE d.status <> 'sent'",
                delivery.idempotency_key,
                record.alarm_id,
                record.alarm_event_id,
                delivery.channel.value,
                delivery.recipient,
                record.status,
                record.attempts,
                record.error,
                record.at,
            )
            await enqueue(conn, SCHEMA, result)
        self._relay.kick()

    async def is_processed(self, event_id: str, consumer: str) -> bool:
        """Whether every delivery of this event was already recorded by `consumer`."""
        found = await self._pool.fetchval(
            f'SELECT 1 FROM "{SCHEMA}".processed_events WHERE consumer = $1 AND event_id = $2',
            consumer,
            event_id,
        )
        return found is not None

    async def mark_processed(self, event_id: str, consumer: str) -> None:
        """Record that every delivery of this event is settled, so a redelivery of it does nothing."""
        async with self._pool.acquire() as conn, conn.transaction():
            await claim_event(conn, SCHEMA, event_id, consumer)
