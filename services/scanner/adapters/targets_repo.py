"""The PostgreSQL `TargetStore`: configured targets with their schedule, processed events, and the outbox.

`claim_due` is what keeps several scheduler replicas from scheduling a target twice: one statement locks a
batch of claimable rows with `FOR UPDATE SKIP LOCKED`, moves their `next_due` on and marks their request
pending, and one more enqueues their `scan.requested.v1` events, in one transaction, so a row is either claimed
by exactly one replica or by none.
"""

import asyncio
from collections.abc import Iterable
from datetime import datetime
from itertools import islice

import asyncpg

from services.scanner.domain.schedule import MIN_REQUEST_LEASE, jitter, next_due, request_lease
from services.scanner.ports import ScanRecord, SyncSummary, scan_request
from shared.db import load_migrations, migrate
from shared.events import CloudEvent, Observation, ScanRequested, Target
from shared.outbox import enqueue_many

SCHEMA = "scanner"

#: How many targets a sync reads and upserts at a time: what it holds of an estate besides the keys.
SYNC_CHUNK = 2000

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

#: Record scan requests of consumer $1, as arrays in their order ($2 request ids, $3 target keys, $4 observed at,
#: $5 errors, $6 slots), in one statement: mark each id processed, and for the records whose ids were not processed
#: before (an id repeated among them: its first record), note their results and return their ordinals. A target takes
#: the last of its results and, if one of them is of its pending request's slot, clears it, as recording them one by
#: one would (a cleared slot matches no later one). Ids are inserted in sorted order and target rows locked in key
#: order before the update touches one (the array is computed first), so recorders on other replicas holding some of
#: the same rows wait on each other instead of deadlocking.
_RECORD = """
WITH item AS (
    SELECT * FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::timestamptz[])
        WITH ORDINALITY AS i(event_id, key, observed_at, error, due_at, n)
), processed AS (
    INSERT INTO scanner.processed_events (consumer, event_id)
    SELECT $1, event_id FROM (SELECT DISTINCT event_id FROM item) AS ids ORDER BY event_id
    ON CONFLICT DO NOTHING RETURNING event_id
), first AS (
    SELECT DISTINCT ON (event_id) item.* FROM item JOIN processed USING (event_id) ORDER BY event_id, n
), noted AS (
    UPDATE scanner.targets AS t
    SET last_observed_at = r.observed_at, last_error = r.error,
        pending_due_at = CASE WHEN t.pending_due_at = ANY(r.slots) THEN NULL ELSE t.pending_due_at END,
        pending_until = CASE WHEN t.pending_due_at = ANY(r.slots) THEN NULL ELSE t.pending_until END
    FROM (
        SELECT key, (array_agg(observed_at ORDER BY n DESC))[1] AS observed_at,
               (array_agg(error ORDER BY n DESC))[1] AS error, array_agg(due_at) AS slots
        FROM first GROUP BY key
    ) AS r
    WHERE t.key = r.key
      AND t.key = ANY(ARRAY(SELECT key FROM scanner.targets WHERE key = ANY($3::text[]) ORDER BY key FOR UPDATE))
)
SELECT n FROM first
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

    async def sync(self, targets: Iterable[Target], *, now: datetime) -> SyncSummary:
        """Upsert the configured targets (new ones due at `now`) and disable, never delete, the others.

        A target whose interval shrank is due no later than one new interval from `now`, and its pending request
        holds it no longer than the new lease. Targets a discovery sweep registered are not configured, so they
        are left alone rather than disabled.

        In one transaction: `SYNC_CHUNK` targets at a time are read from `targets` in a worker thread (building
        them may list directories) and upserted; then one statement disables the others, by the keys kept.
        """
        remaining = iter(targets)
        keys: list[str] = []
        async with self._pool.acquire() as conn, conn.transaction():
            while chunk := await asyncio.to_thread(list, islice(remaining, SYNC_CHUNK)):
                keys.extend(t.key for t in chunk)
                await conn.executemany(_UPSERT, _rows(chunk, now))
            disabled = await conn.fetch(
                "UPDATE scanner.targets SET enabled = false, updated_at = now() "
                "WHERE enabled AND key <> ALL($1::text[]) AND target->>'discovered_by' IS NULL RETURNING key",
                keys,
            )
        return SyncSummary(configured=len(keys), disabled=len(disabled))

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
        """Mark `event_id` processed, note the target's last result (clearing its pending request of slot `due_at`)
        and enqueue `outgoing` (see `record_observations`).

        Returns False (and changes nothing) when the event was already processed.
        """
        (first,) = await self.record_observations(consumer, [ScanRecord(event_id, due_at, observation, outgoing)])
        return first

    async def record_observations(self, consumer: str, records: list[ScanRecord]) -> list[bool]:
        """In one transaction of two statements, however many the records: mark their request ids processed and
        note their targets' last results (clearing pending requests of their slots), then enqueue their events,
        each only for the records whose ids were not processed before; returns which those were."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                _RECORD,
                consumer,
                [r.event_id for r in records],
                [r.observation.target.key for r in records],
                [r.observation.observed_at for r in records],
                [_noted_error(r.observation) for r in records],
                [r.due_at for r in records],
            )
            recorded = {row["n"] for row in rows}
            firsts = [n in recorded for n in range(1, len(records) + 1)]
            await enqueue_many(conn, SCHEMA, [r.outgoing for r, first in zip(records, firsts, strict=True) if first])
        return firsts


def _noted_error(observation: Observation) -> str | None:
    """A scan's error as its target notes it: `kind: message`, or None for a scan that succeeded."""
    error = observation.error
    return f"{error.kind}: {error.message}" if error else None
