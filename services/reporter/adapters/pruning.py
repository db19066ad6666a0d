"""The reporter's retention in PostgreSQL: history older than `history.retention` and event ids older than the
dedup window go, in batches (`shared.retention`), so every replica may prune at the same time.

What goes: targets not evaluated since the cutoff (their `latest` row: they leave the dashboard), runs of
evaluations last seen before it (never a target's latest), and alarms resolved before it with their transitions
and deliveries. Published reports stay: one row per report.
"""

from datetime import datetime

import asyncpg

from shared.retention import delete_in_batches, prune_dedup

_S = '"reporter"'
_RESOLVED_BEFORE = f"alarm_id IN (SELECT alarm_id FROM {_S}.alarms WHERE state = 'resolved' AND updated_at < $1)"


async def prune(pool: asyncpg.Pool, *, history_before: datetime, now: datetime) -> int:
    """Delete the history older than `history_before`, and the processed ids and published outbox rows the dedup
    windows no longer keep as of `now`; returns how many rows went."""
    deleted = await delete_in_batches(pool, f"{_S}.latest", "evaluated_at < $1", history_before)
    deleted += await delete_in_batches(
        pool,
        f"{_S}.evaluations",
        f"coalesce(last_seen_at, evaluated_at) < $1 AND NOT EXISTS "
        f"(SELECT 1 FROM {_S}.latest l WHERE l.event_id = evaluations.event_id)",
        history_before,
    )
    # An alarm's transitions and deliveries first, then the alarm: a prune cut short leaves nothing unreachable.
    deleted += await delete_in_batches(pool, f"{_S}.notifications", _RESOLVED_BEFORE, history_before)
    deleted += await delete_in_batches(pool, f"{_S}.alarm_events", _RESOLVED_BEFORE, history_before)
    deleted += await delete_in_batches(pool, f"{_S}.alarms", "state = 'resolved' AND updated_at < $1", history_before)
    return deleted + await prune_dedup(pool, "reporter", now)
