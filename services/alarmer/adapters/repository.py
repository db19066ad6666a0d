"""Alarm state in PostgreSQL (schema `alarmer`): alarms, their history and each target's failure run.

Every function works inside the caller's transaction, so one evaluation's claim, transitions, history and
outbox rows commit together or not at all.
"""

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.alarmer.domain import OpenAlarm
from shared.db import load_migrations, migrate
from shared.events import AlarmEvent, AlarmKey

SCHEMA = "alarmer"


@dataclass(frozen=True)
class StoredAlarm:
    """An open alarm with the event of its latest transition (its certificate, owners, findings)."""

    alarm: OpenAlarm
    last_event: AlarmEvent


@dataclass(frozen=True)
class TargetHealth:
    """A target's run of failed observations and the newest observation applied to it."""

    consecutive_failures: int
    last_observed_at: datetime | None


@dataclass(frozen=True)
class HistoryEntry:
    """One kept transition of an alarm."""

    alarm_id: str
    at: datetime
    transition: str
    from_level: str | None
    to_level: str
    cause: str
    evaluation_id: str | None


async def migrate_schema(pool: asyncpg.Pool) -> list[str]:
    """Create or upgrade the `alarmer` schema; returns the migrations applied."""
    return await migrate(pool, SCHEMA, load_migrations("services.alarmer.adapters.migrations"))


async def lock_target_health(conn: asyncpg.Connection, target_key: str) -> TargetHealth:
    """The target's health row, locked until the transaction ends (serialises evaluations of one target)."""
    await conn.execute(
        f"INSERT INTO {SCHEMA}.target_health (target_key) VALUES ($1) ON CONFLICT DO NOTHING", target_key
    )
    row = await conn.fetchrow(
        f"SELECT consecutive_failures, last_observed_at FROM {SCHEMA}.target_health WHERE target_key = $1 FOR UPDATE",
        target_key,
    )
    assert row is not None  # inserted above if it was missing
    return TargetHealth(row["consecutive_failures"], row["last_observed_at"])


async def save_target_health(
    conn: asyncpg.Connection, target_key: str, *, failures: int, observed_at: datetime
) -> None:
    """Store the target's failure run and the observation time it reflects."""
    await conn.execute(
        f"UPDATE {SCHEMA}.target_health SET consecutive_failures = $2, last_observed_at = $3 WHERE target_key = $1",
        target_key,
        failures,
        observed_at,
    )


async def open_alarms(conn: asyncpg.Connection, target_key: str) -> list[StoredAlarm]:
    """The target's open alarms."""
    rows = await conn.fetch(
        f"SELECT id, fingerprint, trigger, level, last_event FROM {SCHEMA}.alarms "
        "WHERE target_key = $1 AND state = 'open' ORDER BY opened_at, id",
        target_key,
    )
    return [
        StoredAlarm(
            OpenAlarm(
                alarm_id=str(row["id"]),
                key=AlarmKey(target_key=target_key, fingerprint_sha256=row["fingerprint"], trigger=row["trigger"]),
                level=row["level"],
            ),
            AlarmEvent.model_validate(row["last_event"]),
        )
        for row in rows
    ]


async def record_transition(conn: asyncpg.Connection, event: AlarmEvent, *, at: datetime, cause: str) -> None:
    """Apply an alarm event to the alarm's row (opening it on a raise) and keep it in the history."""
    data = event.model_dump(mode="json")
    if event.transition == "raised":
        await conn.execute(
            f"INSERT INTO {SCHEMA}.alarms "
            "(id, target_key, fingerprint, trigger, level, state, opened_at, updated_at, last_event) "
            "VALUES ($1, $2, $3, $4, $5, 'open', $6, $6, $7)",
            event.alarm_id,
            event.key.target_key,
            event.key.fingerprint_sha256,
            event.key.trigger,
            event.level,
            at,
            data,
        )
    else:
        state = "resolved" if event.transition == "resolved" else "open"
        await conn.execute(
            f"UPDATE {SCHEMA}.alarms SET level = $2, state = $3, updated_at = $4, last_event = $5, "
            "resolved_at = CASE WHEN $3 = 'resolved' THEN $4 ELSE resolved_at END WHERE id = $1",
            event.alarm_id,
            event.level,
            state,
            at,
            data,
        )
    await conn.execute(
        f"INSERT INTO {SCHEMA}.alarm_history "
        "(alarm_id, at, transition, from_level, to_level, cause, evaluation_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        event.alarm_id,
        at,
        event.transition,
        event.previous_level,
        event.level,
        cause,
        event.evaluation_id,
    )


async def history(conn: asyncpg.Connection, alarm_id: str) -> list[HistoryEntry]:
    """An alarm's transitions, oldest first."""
    rows = await conn.fetch(
        f"SELECT alarm_id, at, transition, from_level, to_level, cause, evaluation_id "
        f"FROM {SCHEMA}.alarm_history WHERE alarm_id = $1 ORDER BY at, id",
        alarm_id,
    )
    return [
        HistoryEntry(
            str(row["alarm_id"]),
            row["at"],
            row["transition"],
            row["from_level"],
            row["to_level"],
            row["cause"],
            row["evaluation_id"],
        )
        for row in rows
    ]
