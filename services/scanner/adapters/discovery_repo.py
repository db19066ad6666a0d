"""The PostgreSQL `DiscoveryStore`: the configured sweeps with their schedule and claim, and the endpoints found.

`claim_due` is what keeps several scanner replicas from running a sweep twice: it locks a due, unclaimed row
with `FOR UPDATE SKIP LOCKED`, moves its `next_due` on and sets `running_until` (the sweep's worst-case
duration) in one transaction. Until the claimant calls `finish` or `release`, or the lease runs out, no other
replica can claim it; the sweeper cancels a sweep that outlives its lease, so two never overlap.
"""

from datetime import datetime, timedelta

import asyncpg

from services.scanner.domain.discovery import Endpoint, EndpointChange, KnownEndpoint
from services.scanner.domain.schedule import sweep_next_due
from services.scanner.ports import StoreUnavailable, SweepSchedule


class DiscoveryRepository:
    """The `DiscoveryStore` in schema `scanner` (its tables come with the scanner's migrations)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def sync_sweeps(self, sweeps: list[SweepSchedule], *, now: datetime) -> int:
        """Upsert the configured sweeps (new ones due at `now`) and disable the others; returns how many disabled.

        A sweep whose interval shrank is due no later than one new interval from `now`.
        """
        rows = [
            (
                s.name,
                s.interval_seconds,
                int(s.lease.total_seconds()),
                now,
                sweep_next_due(s.name, s.interval_seconds, now),
            )
            for s in sweeps
        ]
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO scanner.discovery_sweeps AS s (name, interval_seconds, lease_seconds, next_due) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET "
                "interval_seconds = EXCLUDED.interval_seconds, lease_seconds = EXCLUDED.lease_seconds, "
                "enabled = true, next_due = LEAST(s.next_due, $5)",
                rows,
            )
            disabled = await conn.fetch(
                "UPDATE scanner.discovery_sweeps SET enabled = false WHERE enabled AND name <> ALL($1::text[]) "
                "RETURNING name",
                [s.name for s in sweeps],
            )
        return len(disabled)

    async def claim_due(self, now: datetime) -> str | None:
        """Claim one enabled sweep due at `now` that no replica is running; returns its name, or None."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT name, interval_seconds, lease_seconds FROM scanner.discovery_sweeps "
                "WHERE enabled AND next_due <= $1 AND (running_until IS NULL OR running_until <= $1) "
                "ORDER BY next_due LIMIT 1 FOR UPDATE SKIP LOCKED",
                now,
            )
            if row is None:
                return None
            name: str = row["name"]
            await conn.execute(
                "UPDATE scanner.discovery_sweeps SET next_due = $2, running_until = $3, last_started_at = $4 "
                "WHERE name = $1",
                name,
                sweep_next_due(name, row["interval_seconds"], now),
                now + timedelta(seconds=row["lease_seconds"]),
                now,
            )
        return name

    async def known(self, sweep: str) -> list[KnownEndpoint]:
        """Every endpoint `sweep` has found before, with its recorded state."""
        rows = await self._pool.fetch(
            "SELECT address, port, state, missing_sweeps FROM scanner.discovered_endpoints WHERE sweep = $1", sweep
        )
        return [KnownEndpoint(Endpoint(r["address"], r["port"]), r["state"], r["missing_sweeps"]) for r in rows]

    async def finish(self, sweep: str, changes: list[tuple[EndpointChange, str]], *, now: datetime) -> None:
        """In one transaction: record each endpoint's change (with its target key) and release the sweep's claim."""
        rows = [
            (sweep, c.endpoint.address, c.endpoint.port, key, c.state, c.missing_sweeps, now, c.seen)
            for c, key in changes
        ]
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO scanner.discovered_endpoints AS e (sweep, address, port, target_key, state, "
                "missing_sweeps, first_seen, last_seen, state_since) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7) "
                "ON CONFLICT (sweep, address, port) DO UPDATE SET target_key = EXCLUDED.target_key, "
                "state = EXCLUDED.state, missing_sweeps = EXCLUDED.missing_sweeps, "
                "last_seen = CASE WHEN $8 THEN $7 ELSE e.last_seen END, "
                "state_since = CASE WHEN e.state <> EXCLUDED.state THEN $7 ELSE e.state_since END",
                rows,
            )
            await conn.execute(
                "UPDATE scanner.discovery_sweeps SET running_until = NULL, last_finished_at = $2 WHERE name = $1",
                sweep,
                now,
            )

    async def release(self, sweep: str) -> None:
        """Give up a claim without recording results (the sweep failed); it runs again when next due.

        Raises `StoreUnavailable` when PostgreSQL cannot be reached or fails the update.
        """
        try:
            await self._pool.execute("UPDATE scanner.discovery_sweeps SET running_until = NULL WHERE name = $1", sweep)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreUnavailable(f"cannot release sweep {sweep!r}: {type(exc).__name__}: {exc}") from exc
