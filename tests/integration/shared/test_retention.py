"""Retention of every service schema's processed event ids and published outbox rows, against PostgreSQL."""

from datetime import UTC, datetime, timedelta

import asyncpg

from shared.db import migrate
from shared.retention import dedup_retention, prune_dedup

NOW = datetime(2026, 11, 27, 6, 30, tzinfo=UTC)


async def seed(pool: asyncpg.Pool, *, processed_days_ago: list[int], published_days_ago: list[int | None]) -> None:
    """Processed ids and outbox rows (None: not published yet) of the given ages in schema `svc`."""
    await migrate(pool, "svc", [])
    for n, days in enumerate(processed_days_ago):
        await pool.execute(
            'INSERT INTO "svc".processed_events(consumer, event_id, processed_at) VALUES ($1, $2, $3)',
            "c",
            f"p{n}",
            NOW - timedelta(days=days),
        )
    for n, published in enumerate(published_days_ago):
        await pool.execute(
            'INSERT INTO "svc".outbox(event_id, event, published_at) VALUES ($1, $2, $3)',
            f"o{n}",
            {},
            None if published is None else NOW - timedelta(days=published),
        )


async def remaining(pool: asyncpg.Pool) -> tuple[list[str], list[str]]:
    """The event ids left in `processed_events` and `outbox`, sorted."""
    processed = [r["event_id"] for r in await pool.fetch('SELECT event_id FROM "svc".processed_events ORDER BY 1')]
    outbox = [r["event_id"] for r in await pool.fetch('SELECT event_id FROM "svc".outbox ORDER BY 1')]
    return processed, outbox


async def test_ids_and_published_rows_older_than_the_cutoff_go_in_batches(pg_pool: asyncpg.Pool) -> None:
    """Batches of two delete the five ids over a week old and every row published over a quarter of an hour
    ago; a recent id and unpublished rows stay."""
    await seed(pg_pool, processed_days_ago=[30, 20, 10, 9, 8, 1], published_days_ago=[30, 10, None, 1])
    assert await prune_dedup(pg_pool, "svc", NOW, batch=2) == 8
    assert await remaining(pg_pool) == (["p5"], ["o2"])


async def test_published_rows_stay_a_quarter_of_an_hour(pg_pool: asyncpg.Pool) -> None:
    """A row published 10 minutes ago stays; one published 20 minutes ago goes."""
    await migrate(pg_pool, "svc", [])
    for event_id, minutes in (("recent", 10), ("older", 20)):
        await pg_pool.execute(
            'INSERT INTO "svc".outbox(event_id, event, published_at) VALUES ($1, $2, $3)',
            event_id,
            {},
            NOW - timedelta(minutes=minutes),
        )
    assert await prune_dedup(pg_pool, "svc", NOW) == 1
    assert await remaining(pg_pool) == ([], ["recent"])


async def test_the_dedup_retention_loop_keeps_a_week_by_its_clock(pg_pool: asyncpg.Pool) -> None:
    """A service's retention deletes by the clock it is given: an id 6 days old stays, 8 days old goes."""
    await seed(pg_pool, processed_days_ago=[8, 6], published_days_ago=[8, 6])
    assert await dedup_retention(pg_pool, "svc", clock=lambda: NOW).run_once() == 3
    assert await remaining(pg_pool) == (["p1"], [])
