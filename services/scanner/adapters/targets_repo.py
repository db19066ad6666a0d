"""The PostgreSQL `TargetStore`: configured targets with their schedule, processed events, and the outbox.

`claim_due` is what keeps several scheduler replicas from scheduling a target twice: it locks due rows with
`FOR UPDATE SKIP LOCKED`, moves their `next_due` on and enqueues their `scan.requested.v1` events in one
transaction, so a row is either claimed by exactly one replica or by none.
"""

from datetime import datetime

import asyncpg

from services.scanner.domain.schedule import next_due
from services.scanner.ports import SyncSummary, scan_request
from shared.db import claim_event, load_migrations, migrate
from shared.events import CloudEvent, Observation, Target
from shared.outbox import enqueue

SCHEMA = "scanner"


class TargetsRepository:
    """The `TargetStore` in schema `scanner`: targets, their schedule, processed events and the outbox."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def migrate(self) -> list[str]:
        """Apply the scanner's missing migrations; returns their names."""
        return await migrate(self._pool, SCHEMA, load_migrations("services.scanner.adapters.migrations"))

    async def sync(self, targets: list[Target], *, now: datetime) -> SyncSummary:
        """Upsert the configured targets (new ones due at `now`) and disable, never delete, the others.

        A target whose interval shrank is due no later than one new interval from `now`. Targets a discovery
        sweep registered are not configured, so they are left alone rather than disabled.
        """
        rows = [(t.key, t.model_dump(mode="json"), now, next_due(t.key, t.interval_seconds, now)) for t in targets]
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO scanner.targets AS t (key, target, next_due, enabled) VALUES ($1, $2, $3, true) "
                "ON CONFLICT (key) DO UPDATE SET target = EXCLUDED.target, enabled = true, updated_at = now(), "
                "next_due = LEAST(t.next_due, $4)",
                rows,
            )
            disabled = await conn.fetch(
                "UPDATE scanner.targets SET enabled = false, updated_at = now() "
                "WHERE enabled AND key <> ALL($1::text[]) AND target->>'discovered_by' IS NULL RETURNING key",
                [t.key for t in targets],
            )
        return SyncSummary(configured=len(rows), disabled=len(disabled))

    async def register_discovered(self, targets: list[Target], *, now: datetime) -> None:
        """Upsert targets a discovery sweep found (new ones due at `now`), enabled; a configured target with
        the same key wins and is left as it is, unless the config dropped it (then discovery takes it over)."""
        rows = [(t.key, t.model_dump(mode="json"), now, next_due(t.key, t.interval_seconds, now)) for t in targets]
        await self._pool.executemany(
            "INSERT INTO scanner.targets AS t (key, target, next_due, enabled) VALUES ($1, $2, $3, true) "
            "ON CONFLICT (key) DO UPDATE SET target = EXCLUDED.target, enabled = true, updated_at = now(), "
            "next_due = LEAST(t.next_due, $4) WHERE t.target->>'discovered_by' IS NOT NULL OR NOT t.enabled",
            rows,
        )

    async def claim_due(self, now: datetime, limit: int) -> list[Target]:
        """Claim up to `limit` enabled targets due at `now`: reschedule them and enqueue their scan requests."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT key, target, next_due FROM scanner.targets WHERE enabled AND next_due <= $1 "
                "ORDER BY next_due LIMIT $2 FOR UPDATE SKIP LOCKED",
                now,
                limit,
            )
            claimed = []
            for row in rows:
                target = Target.model_validate(row["target"])
                due: datetime = row["next_due"]
                await conn.execute(
                    "UPDATE scanner.targets SET next_due = $2 WHERE key = $1",
                    row["key"],
                    next_due(row["key"], target.interval_seconds, now),
                )
                await enqueue(conn, SCHEMA, scan_request(target, due))
                claimed.append(target)
        return claimed

    async def make_all_due(self, now: datetime) -> int:
        """Make every enabled target due at `now` (a "scan everything now"); returns how many."""
        rows = await self._pool.fetch("UPDATE scanner.targets SET next_due = $1 WHERE enabled RETURNING key", now)
        return len(rows)

    async def already_processed(self, consumer: str, event_id: str) -> bool:
        """Whether `consumer` already committed its work for `event_id` (a redelivery to skip early)."""
        row = await self._pool.fetchval(
            "SELECT 1 FROM scanner.processed_events WHERE consumer = $1 AND event_id = $2", consumer, event_id
        )
        return row is not None

    async def record_observation(
        self, consumer: str, event_id: str, observation: Observation, outgoing: CloudEvent
    ) -> bool:
        """In one transaction: mark `event_id` processed, note the target's last result, enqueue `outgoing`.

        Returns False (and changes nothing) when the event was already processed.
        """
        error = observation.error
        async with self._pool.acquire() as conn, conn.transaction():
            if not await claim_event(conn, SCHEMA, event_id, consumer):
                return False
            await conn.execute(
                "UPDATE scanner.targets SET last_observed_at = $2, last_error = $3 WHERE key = $1",
                observation.target.key,
                observation.observed_at,
                f"{error.kind}: {error.message}" if error else None,
            )
            await enqueue(conn, SCHEMA, outgoing)
        return True
