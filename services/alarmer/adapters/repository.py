"""The PostgreSQL `AlarmStore` (schema `alarmer`): alarms, their history and reminder due times, each target's
failure run, and the outbox of the alarm events they cause.

A unit of work is one transaction on one pooled connection, so one evaluation's claim, transitions, history and
outbox rows commit together or not at all; after a commit that queued events, the outbox relay is woken.
Reminder sweeps claim due alarms with `FOR UPDATE SKIP LOCKED`, so replicas sweeping at once share the work
and never claim one alarm twice, and write a claimed batch set-based (`unnest`), one statement per table. A batch
of evaluations locks the health rows of all its targets up front, in target key order, so that replicas handling
batches over the same targets wait for each other but never deadlock.
"""

import uuid
from collections.abc import Iterable, Sequence
from contextlib import AsyncExitStack
from datetime import datetime
from types import TracebackType
from typing import Self

import asyncpg

from services.alarmer.domain.alarms import OpenAlarm
from services.alarmer.ports import HistoryEntry, Reminder, StoredAlarm, TargetHealth
from shared.db import claim_event, claim_events, load_migrations, migrate
from shared.events import AlarmEvent, AlarmKey, CloudEvent
from shared.outbox import OutboxRelay, enqueue, enqueue_many

SCHEMA = "alarmer"

# An alarm's transition in one statement: its row (opened by a raise, else updated) and its history entry. The
# history's reference to the alarm is checked as the statement ends, after a raise's insert.
_RAISE = (
    f"WITH alarm AS (INSERT INTO {SCHEMA}.alarms (id, target_key, fingerprint, trigger, level, state, opened_at, "
    "updated_at, last_event, next_reminder_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)) "
    f"INSERT INTO {SCHEMA}.alarm_history (alarm_id, at, transition, from_level, to_level, cause, evaluation_id) "
    "VALUES ($1, $7, $10, $11, $5, $12, $13)"
)
_TRANSITION = (
    f"WITH alarm AS (UPDATE {SCHEMA}.alarms SET level = $2, state = $3, updated_at = $4, last_event = $5, "
    "next_reminder_at = $6, resolved_at = CASE WHEN $3 = 'resolved' THEN $4 ELSE resolved_at END WHERE id = $1) "
    f"INSERT INTO {SCHEMA}.alarm_history (alarm_id, at, transition, from_level, to_level, cause, evaluation_id) "
    "VALUES ($1, $4, $7, $8, $2, $9, $10)"
)


# Locks the health rows of several targets in target key order, inserting the missing ones: a conflict's update
# is never made (`WHERE false`) but still locks the row, so a known target's row gets no new version.
_LOCK_TARGETS = (
    f"INSERT INTO {SCHEMA}.target_health AS h (target_key) "
    "SELECT k FROM unnest($1::text[]) AS k ORDER BY k "
    "ON CONFLICT (target_key) DO UPDATE SET consecutive_failures = h.consecutive_failures WHERE false"
)


class PostgresAlarmStore:
    """Alarm state in schema `alarmer`; `relay` publishes the outbox this store writes."""

    def __init__(self, pool: asyncpg.Pool, relay: OutboxRelay) -> None:
        self._pool, self._relay = pool, relay

    async def migrate(self) -> list[str]:
        """Create or upgrade the `alarmer` schema; returns the migrations applied."""
        return await migrate(self._pool, SCHEMA, load_migrations("services.alarmer.adapters.migrations"))

    def unit_of_work(self) -> "PostgresUnitOfWork":
        """A new unit of work on a connection of the pool, begun by `async with`."""
        return PostgresUnitOfWork(self._pool, self._relay)


class PostgresUnitOfWork:
    """One transaction on one pooled connection (see `AlarmUnitOfWork`)."""

    def __init__(self, pool: asyncpg.Pool, relay: OutboxRelay) -> None:
        self._pool, self._relay = pool, relay
        self._stack = AsyncExitStack()
        self._conn: asyncpg.Connection | None = None
        self._queued = 0

    async def __aenter__(self) -> Self:
        """Take a connection and begin the transaction."""
        async with AsyncExitStack() as stack:
            conn = await stack.enter_async_context(self._pool.acquire())
            await stack.enter_async_context(conn.transaction())
            self._stack = stack.pop_all()
        self._conn = conn
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Commit (or roll back on an exception), give the connection back, then wake the relay if it has
        events to publish."""
        self._conn = None
        await self._stack.__aexit__(exc_type, exc, tb)
        if exc_type is None and self._queued:
            self._relay.kick()

    @property
    def _connection(self) -> asyncpg.Connection:
        if self._conn is None:
            raise RuntimeError("the unit of work is used outside `async with`")
        return self._conn

    async def claim(self, event_id: str, consumer: str) -> bool:
        """Record that `consumer` handled `event_id`; False when it already had."""
        return await claim_event(self._connection, SCHEMA, event_id, consumer)

    async def claim_all(self, event_ids: Sequence[str], consumer: str) -> list[bool]:
        """`claim` on each of `event_ids` in order, in one statement (in id order: replicas claiming the same
        redelivered ids wait for each other in no cycle)."""
        return await claim_events(self._connection, SCHEMA, event_ids, consumer)

    async def publish_later(self, event: CloudEvent) -> None:
        """Add `event` to the outbox in this transaction; the relay publishes it after the commit."""
        await enqueue(self._connection, SCHEMA, event)
        self._queued += 1

    async def lock_target_health(self, target_key: str) -> TargetHealth:
        """The target's health row, locked until the transaction ends (serialises evaluations of one target).

        A known target costs one statement; a new one a second, whose no-op update on conflict locks the row that
        another evaluation of it inserted meanwhile and returns that row as committed.
        """
        row = await self._connection.fetchrow(
            f"SELECT consecutive_failures, last_observed_at FROM {SCHEMA}.target_health "
            "WHERE target_key = $1 FOR UPDATE",
            target_key,
        )
        if row is None:
            row = await self._connection.fetchrow(
                f"INSERT INTO {SCHEMA}.target_health AS h (target_key) VALUES ($1) ON CONFLICT (target_key) "
                "DO UPDATE SET consecutive_failures = h.consecutive_failures "
                "RETURNING h.consecutive_failures, h.last_observed_at",
                target_key,
            )
        assert row is not None  # an insert, or the update of the row it conflicted with, returns it
        return TargetHealth(row["consecutive_failures"], row["last_observed_at"])

    async def lock_target_healths(self, target_keys: Iterable[str]) -> dict[str, TargetHealth]:
        """The targets' health rows, locked in target key order (inserted if new) until the transaction ends, then
        read: two statements, whatever the number of targets. One target has no order to keep, so it takes
        `lock_target_health`'s single statement (when known)."""
        keys = list(set(target_keys))
        if len(keys) <= 1:
            return {key: await self.lock_target_health(key) for key in keys}
        await self._connection.execute(_LOCK_TARGETS, keys)
        rows = await self._connection.fetch(
            f"SELECT target_key, consecutive_failures, last_observed_at FROM {SCHEMA}.target_health "
            "WHERE target_key = ANY($1::text[])",
            keys,
        )
        return {row["target_key"]: TargetHealth(row["consecutive_failures"], row["last_observed_at"]) for row in rows}

    async def save_target_health(self, target_key: str, *, failures: int, observed_at: datetime) -> None:
        """Store the target's failure run and the observation time it reflects."""
        await self._connection.execute(
            f"UPDATE {SCHEMA}.target_health SET consecutive_failures = $2, last_observed_at = $3 WHERE target_key = $1",
            target_key,
            failures,
            observed_at,
        )

    async def open_alarms(self, target_key: str) -> list[StoredAlarm]:
        """The target's alarms that are not resolved, oldest first."""
        return (await self.open_alarms_by_target([target_key]))[target_key]

    async def open_alarms_by_target(self, target_keys: Iterable[str]) -> dict[str, list[StoredAlarm]]:
        """Each target's alarms that are not resolved, oldest first, by target key, in one statement."""
        found: dict[str, list[StoredAlarm]] = {target_key: [] for target_key in target_keys}
        rows = await self._connection.fetch(
            f"SELECT id, target_key, fingerprint, trigger, level, last_event FROM {SCHEMA}.alarms "
            "WHERE target_key = ANY($1::text[]) AND state <> 'resolved' ORDER BY opened_at, id",
            list(found),
        )
        for row in rows:
            key = AlarmKey(target_key=row["target_key"], fingerprint_sha256=row["fingerprint"], trigger=row["trigger"])
            found[key.target_key].append(
                StoredAlarm(
                    OpenAlarm(alarm_id=str(row["id"]), key=key, level=row["level"]),
                    AlarmEvent.model_validate(row["last_event"]),
                )
            )
        return found

    async def record_transition(self, event: AlarmEvent, *, at: datetime, cause: str) -> None:
        """Apply an alarm event to the alarm's row (opening it on a raise; its state and next reminder time become
        the event's) and keep it in the history, in one statement."""
        data = event.model_dump(mode="json")
        history = (event.transition, event.previous_level, cause, event.evaluation_id)
        if event.transition == "raised":
            key = event.key
            await self._connection.execute(
                _RAISE,
                *(event.alarm_id, key.target_key, key.fingerprint_sha256, key.trigger, event.level, event.state),
                *(at, data, event.next_reminder_at, *history),
            )
        else:
            await self._connection.execute(
                _TRANSITION,
                *(event.alarm_id, event.level, event.state, at, data, event.next_reminder_at, *history),
            )

    async def history(self, alarm_id: str) -> list[HistoryEntry]:
        """An alarm's transitions, oldest first."""
        rows = await self._connection.fetch(
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

    async def lock_alarm(self, alarm_id: str) -> AlarmEvent | None:
        """The alarm's latest event, its row locked until the transaction ends; None when there is none."""
        try:
            uuid.UUID(alarm_id)
        except ValueError:
            return None  # alarm ids are UUIDs; anything else names no alarm
        data = await self._connection.fetchval(
            f"SELECT last_event FROM {SCHEMA}.alarms WHERE id = $1 FOR UPDATE", alarm_id
        )
        return None if data is None else AlarmEvent.model_validate(data)

    async def claim_due_reminders(self, now: datetime, limit: int) -> list[AlarmEvent]:
        """Lock up to `limit` open alarms due at `now`, earliest first, skipping those another sweep holds."""
        rows = await self._connection.fetch(
            f"SELECT last_event FROM {SCHEMA}.alarms WHERE state = 'open' AND next_reminder_at <= $1 "
            "ORDER BY next_reminder_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            limit,
        )
        return [AlarmEvent.model_validate(row["last_event"]) for row in rows]

    async def record_reminders(self, sent: Sequence[Reminder], *, stopped: Sequence[str], at: datetime) -> None:
        """Apply a batch's reminders with one statement per table (alarms, history, outbox), then clear the next
        reminder of the `stopped` alarms, in their row and in their latest event alike."""
        if sent:
            events = [reminder.event for reminder in sent]
            await self._connection.execute(
                f"UPDATE {SCHEMA}.alarms AS a SET level = r.level, state = r.state, updated_at = $1, "
                "last_event = r.event, next_reminder_at = r.next_reminder_at "
                "FROM unnest($2::uuid[], $3::text[], $4::text[], $5::jsonb[], $6::timestamptz[]) "
                "AS r(id, level, state, event, next_reminder_at) WHERE a.id = r.id",
                at,
                [event.alarm_id for event in events],
                [event.level for event in events],
                [event.state for event in events],
                [event.model_dump(mode="json") for event in events],
                [event.next_reminder_at for event in events],
            )
            await self._connection.execute(
                f"INSERT INTO {SCHEMA}.alarm_history "
                "(alarm_id, at, transition, from_level, to_level, cause, evaluation_id) "
                "SELECT alarm_id, $1, transition, from_level, to_level, cause, evaluation_id "
                "FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) "
                "AS h(alarm_id, transition, from_level, to_level, cause, evaluation_id)",
                at,
                [event.alarm_id for event in events],
                [event.transition for event in events],
                [event.previous_level for event in events],
                [event.level for event in events],
                [reminder.cause for reminder in sent],
                [event.evaluation_id for event in events],
            )
            await enqueue_many(self._connection, SCHEMA, [reminder.message for reminder in sent])
            self._queued += len(sent)
        if stopped:
            await self._connection.execute(
                f"UPDATE {SCHEMA}.alarms SET next_reminder_at = NULL, "
                "last_event = jsonb_set(last_event, '{next_reminder_at}', 'null') WHERE id = ANY($1::uuid[])",
                list(stopped),
            )

    async def earliest_reminder(self) -> datetime | None:
        """The earliest due time of an open alarm's reminder (one step down the due index)."""
        due: datetime | None = await self._connection.fetchval(
            f"SELECT min(next_reminder_at) FROM {SCHEMA}.alarms WHERE state = 'open' AND next_reminder_at IS NOT NULL"
        )
        return due
