"""The PostgreSQL `DeliveryLog` (schema `notifier`): one row per idempotency key, written together with the
`notification.*.v1` event it causes (transactional outbox), plus the alarm events already handled. A `retrying`
row keeps the alarm event's envelope so that any replica, after any restart, can send it again."""

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from services.notifier.domain.deliveries import ChannelKind, Delivery, Notice
from services.notifier.ports import DeliveryRecord, PendingDelivery
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

    async def recorded_keys(self, keys: Sequence[str]) -> set[str]:
        """Which of these idempotency keys have a row, whatever its status."""
        rows = await self._pool.fetch(
            f'SELECT idempotency_key FROM "{SCHEMA}".deliveries WHERE idempotency_key = ANY($1::text[])', list(keys)
        )
        return {row["idempotency_key"] for row in rows}

    async def record(self, record: DeliveryRecord, result: CloudEvent) -> None:
        """Insert the delivery's row or update a `retrying` one (a final row is left alone, and then nothing is
        queued), enqueue `result`; after the commit, wake the relay."""
        delivery = record.delivery
        notice = record.notice.event.model_dump(mode="json") if record.status == "retrying" else None
        async with self._pool.acquire() as conn, conn.transaction():
            changed = await conn.fetchval(
                f'INSERT INTO "{SCHEMA}".deliveries AS d (idempotency_key, alarm_id, alarm_event_id, channel, '
                "recipient, recipients, owner, rule, status, attempts, last_error, updated_at, first_attempt_at, "
                "next_attempt_at, notice) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb) "
                "ON CONFLICT (idempotency_key) DO UPDATE SET status = excluded.status, "
                "attempts = d.attempts + excluded.attempts, last_error = excluded.last_error, "
                "updated_at = excluded.updated_at, next_attempt_at = excluded.next_attempt_at, "
                "notice = excluded.notice WHERE d.status = 'retrying' RETURNING 1",
                delivery.idempotency_key,
                record.notice.alarm.alarm_id,
                record.notice.event_id,
                delivery.channel.value,
                delivery.recipient,
                list(delivery.recipients),
                delivery.owner,
                delivery.rule,
                record.status,
                record.attempts,
                record.error,
                record.at,
                record.first_attempt_at,
                record.next_attempt_at,
                notice,
            )
            if changed is not None:
                await enqueue(conn, SCHEMA, result)
        self._relay.kick()

    async def claim_due(self, now: datetime, *, lease_until: datetime, limit: int) -> list[PendingDelivery]:
        """Lock up to `limit` due `retrying` rows that no other transaction holds (SKIP LOCKED), move their due
        time to `lease_until` and return them, oldest due first."""
        rows = await self._pool.fetch(
            f"WITH due AS (SELECT idempotency_key FROM \"{SCHEMA}\".deliveries WHERE status = 'retrying' "
            "AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) "
            f'UPDATE "{SCHEMA}".deliveries AS d SET next_attempt_at = $2 FROM due '
            "WHERE d.idempotency_key = due.idempotency_key "
            "RETURNING d.idempotency_key, d.channel, d.recipients, d.owner, d.rule, d.attempts, "
            "d.first_attempt_at, d.notice",
            now,
            lease_until,
            limit,
        )
        return [_pending(row) for row in rows]

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


def _pending(row: asyncpg.Record) -> PendingDelivery:
    delivery = Delivery(
        ChannelKind(row["channel"]), tuple(row["recipients"]), row["owner"], row["rule"], row["idempotency_key"]
    )
    notice = Notice.of(CloudEvent.model_validate(row["notice"]))
    return PendingDelivery(delivery, notice, row["attempts"], row["first_attempt_at"])
