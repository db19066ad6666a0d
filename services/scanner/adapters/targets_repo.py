"""The PostgreSQL `TargetStore`: configured targets with their schedule, processed events, and the outbox.

`claim_due` is what keeps several scheduler replicas from scheduling a target twice: one statement locks a
batch of claimable rows with `FOR UPDATE SKIP LOCKED`, moves their `next_due` on and marks their request
pending, and one more enqueues their `scan.requested.v1` events, in one transaction, so a row is either claimed
by exactly one replica or by none.
"""

from datetime import datetime

import asyncpg

from services.scanner.domain.schedule import MIN_REQUEST_LEASE, jitter, next_due, request_lease
from services.scanner.ports import SyncSummary, scan_request
from shared.db import load_migrations, migrate
from shared.events import CloudEvent, Observation, ScanRequested, Target
from shared.outbox import enqueue_many

SCHEMA = "scanner"

#: The interval of a row's target, from the target itself (the one place it is stored).
_INTERVAL = "make_interval(secs => (t.target->>'interval_seconds')::int)"

#: Claim a batch ($2 rows) at $1: due and not waiting on a pending request (or its lease ran out), earliest
#: first. Each is due again one interval plus its jitter after $1 (`domain.schedule.next_due`), and its request,
#: for the slot it was due in (the `next_due` it had, as SET reads the row before the update), is pending until
#: its lease ($3 at least, `domain.schedule.request_lease`) ends. The keys come as an array so the update finds
#: each row by its primary key, where a join would scan the whole table for every batch.
_CLAIM = f"""
WITH claimed AS (
    UPDATE scanner.targets AS t
    SET next_due = $1::timestamptz + {_INTERVAL} + t.jitter,
        pending_due_at = t.next_due,
        pending_until = $1::timestamptz + GREATEST({_INTERVAL}, $3::interval)
    WHERE t.key = ANY(ARRAY(
        SELECT key FROM scanner.targets
        WHERE enabled AND GREATEST(next_due, pending_until) <= $1::timestamptz
        ORDER BY GREATEST(next_due, pending_until), key
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    ))
    RETURNING t.key, t.target, t.pending_due_at AS due_at
)
SELECT target, due_at FROM claimed ORDER BY due_at, key
"""

#: Record request $2 of consumer $1 as processed and, only if it was not already, note the last result of
#: target $3 and clear its pending request if that is the one of slot $6: one statement, one round trip.
_RECORD = """
WITH processed AS (
    INSERT INTO scanner.processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1
), noted AS (
    UPDATE scanner.targets
    SET last_observed_at = $4, last_error = $5,
        pending_due_at = CASE WHEN pending_due_at = $6 THEN NULL ELSE pending_due_at END,
        pending_until = CASE WHEN pending_due_at = $6 THEN NULL ELSE pending_until END
    WHERE key = $3 AND EXISTS (SELECT FROM processed)
)
SELECT EXISTS (SELECT FROM processed)
"""


#: Upsert a target ($1 key, $2 target) due at $3, enabled, with its jitter $5. A stored one takes the new settings
#: and, if its interval shrank, is due no later than $4 (one new interval on) and waits on a pending request no
#: later than $6 (the new lease's end).
_UPSERT = (
    "INSERT INTO scanner.targets AS t (key, target, next_due, jitter, enabled) VALUES ($1, $2, $3, $5, true) "
    "ON CONFLICT (key) DO UPDATE SET target = EXCLUDED.target, jitter = EXCLUDED.jitter, enabled = true, "
    "updated_at = now(), next_due = LEAST(t.next_due, $4), "
    "pending_until = CASE WHEN t.pending_until > $6 THEN $6 ELSE t.pending_until END"
)


def _rows(targets: list[Target], now: datetime) -> list[tuple[object, ...]]:
    """The parameters of `_UPSERT` for each of `targets` upserted at `now`."""
    return [
        (
            t.key,
            t.model_dump(mode="json"),
            now,
            next_due(t.key, t.interval_seconds, now),
            jitter(t.key, t.interval_seconds),
            now + request_lease(t.interval_seconds),
        )
        for t in targets
    ]


class TargetsRepository:
    """The `TargetStore` in schema `scanner`: targets, their schedule, processed events and the outbox."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def migrate(self) -> list[str]:
        """Apply the scanner's missing migrations; returns their names."""
        return await migrate(self._pool, SCHEMA, load_migrations("services.scanner.adapters.migrations"))

    async def sync(self, targets: list[Target], *, now: datetime) -> SyncSummary:
        """Upsert the configured targets (new ones due at `now`) and disable, never delete, the others.

        A target whose interval shrank is due no later than one new interval from `now`, and its pending request
        holds it no longer than the new lease. Targets a discovery sweep registered are not configured, so they
        are left alone rather than disabled.
        """
        rows = _rows(targets, now)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(_UPSERT, rows)
            disabled = await conn.fetch(
                "UPDATE scanner.targets SET enabled = false, updated_at = now() "
                "WHERE enabled AND key <> ALL($1::text[]) AND target->>'discovered_by' IS NULL RETURNING key",
                [t.key for t in targets],
            )
        return SyncSummary(configured=len(rows), disabled=len(disabled))

    async def register_discovered(self, targets: list[Target], *, now: datetime) -> None:
        """Upsert targets a discovery sweep found (new ones due at `now`), enabled; a configured target with
        the same key wins and is left as it is, unless the config dropped it (then discovery takes it over)."""
        await self._pool.executemany(
            _UPSERT + " WHERE t.target->>'discovered_by' IS NOT NULL OR NOT t.enabled",
            _rows(targets, now),
        )

    async def claim_due(self, now: datetime, limit: int) -> list[ScanRequested]:
        """Claim up to `limit` claimable targets at `now` (see `TargetStore.claim_due`) in two statements: the
        claim itself, then their scan requests into the outbox."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_CLAIM, now, limit, MIN_REQUEST_LEASE)
            claimed = [ScanRequested(target=Target.model_validate(r["target"]), due_at=r["due_at"]) for r in rows]
            await enqueue_many(conn, SCHEMA, [scan_request(c.target, c.due_at) for c in claimed])
        return claimed

    async def pending(self, now: datetime) -> int:
        """Requests claimed and not yet observed whose lease has not run out (on the partial index of pending
        requests, so as cheap as there are few)."""
        count = await self._pool.fetchval(
            "SELECT count(*) FROM scanner.targets WHERE pending_due_at IS NOT NULL AND pending_until > $1", now
        )
        return int(count)

    async def make_all_due(self, now: datetime) -> int:
        """Make every enabled target due at `now`, forgetting pending requests (see `TargetStore.make_all_due`)."""
        rows = await self._pool.fetch(
            "UPDATE scanner.targets SET next_due = $1, pending_due_at = NULL, pending_until = NULL "
            "WHERE enabled RETURNING key",
            now,
        )
        return len(rows)

    async def record_observation(
        self, consumer: str, event_id: str, observation: Observation, outgoing: CloudEvent, *, due_at: datetime
    ) -> bool:
        """In one transaction of three statements: mark `event_id` processed and note the target's last result
        (clearing its pending request of slot `due_at`), then enqueue `outgoing`.

        Returns False (and changes nothing) when the event was already processed.
        """
        error = observation.error
        async with self._pool.acquire() as conn, conn.transaction():
            first: bool = await conn.fetchval(
                _RECORD,
                consumer,
                event_id,
                observation.target.key,
                observation.observed_at,
                f"{error.kind}: {error.message}" if error else None,
                due_at,
            )
            if first:
                await enqueue_many(conn, SCHEMA, [outgoing])
        return first
