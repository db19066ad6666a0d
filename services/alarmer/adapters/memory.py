"""The in-memory twin of the PostgreSQL alarm store: the same semantics (claims, target health, open alarms,
history in order, reminder due times, an outbox without duplicate ids, all-or-nothing units of work), no
database.

Units of work run one at a time (a stricter lock than the per-target row lock PostgreSQL takes), each on a copy
of the state that replaces it on commit and is dropped on rollback. `outbox` holds the committed events, in
order, for a test to read.
"""

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Self

from services.alarmer.domain.alarms import OpenAlarm
from services.alarmer.ports import HistoryEntry, Reminder, StoredAlarm, TargetHealth
from shared.events import AlarmEvent, CloudEvent


@dataclass(frozen=True)
class _Alarm:
    event: AlarmEvent  # the latest transition's: its state and next reminder time are the alarm's
    opened_at: datetime


@dataclass
class _State:
    processed: set[tuple[str, str]] = field(default_factory=set)
    health: dict[str, TargetHealth] = field(default_factory=dict)
    alarms: dict[str, _Alarm] = field(default_factory=dict)
    history: list[HistoryEntry] = field(default_factory=list)
    outbox: list[CloudEvent] = field(default_factory=list)

    def copy(self) -> "_State":
        # The values are immutable, so copying the containers isolates a unit of work's writes.
        return _State(set(self.processed), dict(self.health), dict(self.alarms), list(self.history), list(self.outbox))


class InMemoryAlarmStore:
    """An alarm store in one process; `outbox` lists the events of committed units of work."""

    def __init__(self) -> None:
        self._state = _State()
        self._lock = asyncio.Lock()

    @property
    def outbox(self) -> list[CloudEvent]:
        """The events committed units of work queued, oldest first."""
        return list(self._state.outbox)

    def unit_of_work(self) -> "InMemoryUnitOfWork":
        """A new unit of work, begun by `async with`."""
        return InMemoryUnitOfWork(self)


class InMemoryUnitOfWork:
    """One all-or-nothing unit of work on an `InMemoryAlarmStore` (see `AlarmUnitOfWork`)."""

    def __init__(self, store: InMemoryAlarmStore) -> None:
        self._store = store
        self._working: _State | None = None

    async def __aenter__(self) -> Self:
        """Wait for the running unit of work to end, then work on a copy of the state."""
        await self._store._lock.acquire()
        self._working = self._store._state.copy()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Make the copy the state (commit), or drop it when the block raised (rollback)."""
        if exc_type is None and self._working is not None:
            self._store._state = self._working
        self._working = None
        self._store._lock.release()

    @property
    def _state(self) -> _State:
        if self._working is None:
            raise RuntimeError("the unit of work is used outside `async with`")
        return self._working

    async def claim(self, event_id: str, consumer: str) -> bool:
        """Record that `consumer` handled `event_id`; False when it already had."""
        if (consumer, event_id) in self._state.processed:
            return False
        self._state.processed.add((consumer, event_id))
        return True

    async def claim_all(self, event_ids: Sequence[str], consumer: str) -> list[bool]:
        """`claim` on each of `event_ids` in order."""
        return [await self.claim(event_id, consumer) for event_id in event_ids]

    async def lock_target_health(self, target_key: str) -> TargetHealth:
        """The target's health (new targets have none); the whole store is locked already."""
        return self._state.health.setdefault(target_key, TargetHealth(0, None))

    async def lock_target_healths(self, target_keys: Iterable[str]) -> dict[str, TargetHealth]:
        """The targets' health, by target key (the whole store is locked already: no order to keep)."""
        return {target_key: await self.lock_target_health(target_key) for target_key in target_keys}

    async def save_target_health(self, target_key: str, *, failures: int, observed_at: datetime) -> None:
        """Store the target's failure run and the observation time it reflects."""
        self._state.health[target_key] = TargetHealth(failures, observed_at)

    async def open_alarms(self, target_key: str) -> list[StoredAlarm]:
        """The target's alarms that are not resolved, oldest first."""
        found = [
            (alarm.opened_at, alarm_id, alarm.event)
            for alarm_id, alarm in self._state.alarms.items()
            if alarm.event.state != "resolved" and alarm.event.key.target_key == target_key
        ]
        return [
            StoredAlarm(OpenAlarm(alarm_id=alarm_id, key=event.key, level=event.level), event)
            for _, alarm_id, event in sorted(found, key=lambda item: item[:2])
        ]

    async def open_alarms_by_target(self, target_keys: Iterable[str]) -> dict[str, list[StoredAlarm]]:
        """Each target's alarms that are not resolved, oldest first, by target key."""
        return {target_key: await self.open_alarms(target_key) for target_key in target_keys}

    async def record_transition(self, event: AlarmEvent, *, at: datetime, cause: str) -> None:
        """Apply an alarm event to its alarm (opening it on a raise) and keep it in the history."""
        alarms = self._state.alarms
        if event.transition == "raised":
            alarms[event.alarm_id] = _Alarm(event, at)
        else:
            alarms[event.alarm_id] = replace(alarms[event.alarm_id], event=event)
        self._state.history.append(
            HistoryEntry(
                event.alarm_id, at, event.transition, event.previous_level, event.level, cause, event.evaluation_id
            )
        )

    async def lock_alarm(self, alarm_id: str) -> AlarmEvent | None:
        """The alarm's latest event (the whole store is locked already); None when there is none."""
        alarm = self._state.alarms.get(alarm_id)
        return None if alarm is None else alarm.event

    async def claim_due_reminders(self, now: datetime, limit: int) -> list[AlarmEvent]:
        """Up to `limit` open alarms due at `now`, earliest first (no other unit of work runs meanwhile)."""
        due = [
            alarm.event
            for alarm in self._state.alarms.values()
            if alarm.event.state == "open"
            and alarm.event.next_reminder_at is not None
            and alarm.event.next_reminder_at <= now
        ]
        return sorted(due, key=lambda event: event.next_reminder_at or now)[:limit]

    async def record_reminders(self, sent: Sequence[Reminder], *, stopped: Sequence[str], at: datetime) -> None:
        """Record each reminder's transition and queue its message, then clear the stopped alarms' next reminder."""
        for reminder in sent:
            await self.record_transition(reminder.event, at=at, cause=reminder.cause)
            await self.publish_later(reminder.message)
        for alarm_id in stopped:
            alarm = self._state.alarms[alarm_id]
            event = alarm.event.model_copy(update={"next_reminder_at": None})
            self._state.alarms[alarm_id] = replace(alarm, event=event)

    async def earliest_reminder(self) -> datetime | None:
        """The earliest due time of an open alarm's reminder."""
        return min(
            (
                alarm.event.next_reminder_at
                for alarm in self._state.alarms.values()
                if alarm.event.state == "open" and alarm.event.next_reminder_at is not None
            ),
            default=None,
        )

    async def history(self, alarm_id: str) -> list[HistoryEntry]:
        """An alarm's transitions, oldest first (in the order recorded when two share a time)."""
        return sorted((h for h in self._state.history if h.alarm_id == alarm_id), key=lambda h: h.at)

    async def publish_later(self, event: CloudEvent) -> None:
        """Queue `event` for the outbox, once per id."""
        if all(queued.id != event.id for queued in self._state.outbox):
            self._state.outbox.append(event)
