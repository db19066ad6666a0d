"""PostgreSQL plumbing: one asyncpg pool per process and per-service schema migrations.

Each service owns a schema named after it and ships numbered SQL files (`NNN_name.sql`) in its
`adapters/migrations/` folder; `migrate` applies the missing ones under an advisory lock, so several
replicas starting at once apply each file exactly once.
"""

import hashlib
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

import asyncpg

from shared.outbox_sql import OUTBOX_RETENTION_SQL, OUTBOX_SQL


class DatabaseError(Exception):
    """The database could not be reached or a migration failed."""


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a connection returning to the pool needs beyond asyncpg's own rollback of an open transaction:
    nothing. certmon keeps no state in a session (its settings are `SET LOCAL`, its advisory locks
    transaction-scoped, its cursors inside transactions, and it never listens), so asyncpg's default reset query
    (unlock all, close all, unlisten, reset all) would be a round trip per use, on every message, for nothing."""


#: Seconds a statement may wait for its answer (`CERTMON_DATABASE_COMMAND_TIMEOUT`); migrations get `MIGRATION_TIMEOUT`.
COMMAND_TIMEOUT = 60.0
MIGRATION_TIMEOUT = 3600.0


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, command_timeout: float | None = COMMAND_TIMEOUT
) -> asyncpg.Pool:
    """A pool whose connections encode and decode json/jsonb as Python objects and are not reset on release
    (`_keep_session`): code using it must not leave session state behind. A statement that has no answer after
    `command_timeout` seconds raises TimeoutError (transient: its handler is retried), so a connection that went
    silent cannot hold a handler forever."""
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            init=_init_connection,
            reset=_keep_session,
            command_timeout=command_timeout,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL: {type(exc).__name__}: {exc}") from exc
    assert pool is not None
    return pool


def load_migrations(package: str) -> list[tuple[str, str]]:
    """The `(name, sql)` pairs of a migrations package, in file-name order."""
    files = [f for f in resources.files(package).iterdir() if f.name.endswith(".sql")]
    return [(f.name, f.read_text(encoding="utf-8")) for f in sorted(files, key=lambda f: f.name)]


async def migrate(pool: asyncpg.Pool, schema: str, migrations: list[tuple[str, str]]) -> list[str]:
    """Create `schema` with the tables every service has (`processed_events`, `outbox`), then apply the
    service's migrations it has not seen; returns the names applied."""
    lock_id = int.from_bytes(hashlib.sha256(f"certmon:{schema}".encode()).digest()[:8], "big", signed=True)
    applied: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_id)
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations '
            "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch(f'SELECT name FROM "{schema}".schema_migrations')}
        for name, sql in [*COMMON_MIGRATIONS, *migrations]:
            if name in done:
                continue
            await conn.execute(f'SET LOCAL search_path TO "{schema}", public')
            await conn.execute(sql, timeout=MIGRATION_TIMEOUT)  # an index over a large table takes its time
            await conn.execute(f'INSERT INTO "{schema}".schema_migrations(name) VALUES ($1)', name)
            applied.append(name)
    return applied


async def claim_event(conn: asyncpg.Connection, schema: str, event_id: str, consumer: str) -> bool:
    """Record that `consumer` handled `event_id`, inside the caller's transaction.

    Returns False when it was already recorded: the event is a redelivery and must have no effect.
    Needs the table `processed_events(consumer, event_id)` in the service's schema (see
    `PROCESSED_EVENTS_SQL`).
    """
    row: Any = await conn.fetchval(
        f'INSERT INTO "{schema}".processed_events(consumer, event_id) VALUES ($1, $2) '
        "ON CONFLICT DO NOTHING RETURNING 1",
        consumer,
        event_id,
    )
    return row is not None


async def claim_events(conn: asyncpg.Connection, schema: str, event_ids: Sequence[str], consumer: str) -> list[bool]:
    """`claim_event` on each of `event_ids` in order, in one statement: True where the id is recorded now (an id
    repeated in `event_ids`: at its first occurrence only), False where it is a redelivery."""
    # Inserted in sorted order, so two transactions claiming some of the same ids wait on each other, not in a cycle.
    rows = await conn.fetch(
        f'INSERT INTO "{schema}".processed_events(consumer, event_id) SELECT $1, unnest($2::text[]) '
        "ON CONFLICT DO NOTHING RETURNING event_id",
        consumer,
        sorted(set(event_ids)),
    )
    claimed_now = {r["event_id"] for r in rows}
    answers = []
    for event_id in event_ids:
        answers.append(event_id in claimed_now)
        claimed_now.discard(event_id)  # a repeat of it later in the list is a redelivery
    return answers


PROCESSED_EVENTS_SQL = """
CREATE TABLE IF NOT EXISTS processed_events (
    consumer text NOT NULL,
    event_id text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
"""

#: `shared.retention` deletes processed event ids by age: without this index, a scan of the table per batch.
PROCESSED_EVENTS_RETENTION_SQL = """
CREATE INDEX IF NOT EXISTS processed_events_at ON processed_events (processed_at);
"""

#: Applied first in every service schema, in order: the idempotency record of `claim_event` and the
#: transactional outbox, then the indexes their retention reads.
COMMON_MIGRATIONS = (
    ("000_common.sql", PROCESSED_EVENTS_SQL + OUTBOX_SQL),
    ("000_retention.sql", PROCESSED_EVENTS_RETENTION_SQL + OUTBOX_RETENTION_SQL),
)
