"""What the handlers and the reminder sweep need from storage: an alarm store that opens units of work.

A unit of work is one transaction: `async with store.unit_of_work() as uow:` claims the consumed event, reads
and writes alarm state and queues the alarm events it causes; it commits when the block ends normally and rolls
back, leaving nothing behind, when it raises. Two adapters pass the same contract tests: PostgreSQL
(`adapters.repository`) and the in-memory twin (`adapters.memory`) the unit tests use.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from services.alarmer.domain.alarms import OpenAlarm
from shared.events import AlarmEvent, CloudEvent


@dataclass(frozen=True)
class StoredAlarm:
    """An open (or acknowledged) alarm with the event of its latest transition (its certificate, owners,
    findings, state and schedule)."""

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
    evaluation_id: str | None  # the evaluation the alarm's level and findings came from


@dataclass(frozen=True)
class Reminder:
    """A reminder the sweep sends: the alarm's `reminded` transition, its cause for the history, and the
    CloudEvent announcing it."""

    event: AlarmEvent
    cause: str
    message: CloudEvent


class AlarmUnitOfWork(Protocol):
    """One transaction over alarm state; everything done inside it commits together or not at all."""

    async def __aenter__(self) -> Self:
        """Begin the transaction."""
        ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Commit when the block ended normally, else roll back; queued events are published after a commit."""
        ...

    async def claim(self, event_id: str, consumer: str) -> bool:
        """Record that `consumer` handled `event_id`; False when it already had (a redelivery to ignore)."""
        ...

    async def claim_all(self, event_ids: Sequence[str], consumer: str) -> list[bool]:
        """`claim` on each of `event_ids` in order, at once: True where the id is claimed now (an id listed twice:
        at its first place only), False where it had been handled already."""
        ...

    async def lock_target_health(self, target_key: str) -> TargetHealth:
        """The target's health (no failures, nothing observed, if new), locked until the unit of work ends so
        that evaluations of one target apply one at a time."""
        ...

    async def lock_target_healths(self, target_keys: Iterable[str]) -> dict[str, TargetHealth]:
        """`lock_target_health` for several targets at once, by target key. The locks are taken in target key
        order, whatever the order given, so units of work locking overlapping targets never wait on each other in
        a cycle (a deadlock): lock every target a unit of work needs here, before it locks any other."""
        ...

    async def save_target_health(self, target_key: str, *, failures: int, observed_at: datetime) -> None:
        """Store the target's failure run and the observation time it reflects (its health is locked first)."""
        ...

    async def open_alarms(self, target_key: str) -> list[StoredAlarm]:
        """The target's alarms that are not resolved (open or acknowledged: still the one alarm of their key),
        oldest first."""
        ...

    async def open_alarms_by_target(self, target_keys: Iterable[str]) -> dict[str, list[StoredAlarm]]:
        """`open_alarms` of several targets at once, by target key (an empty list for a target without any)."""
        ...

    async def record_transition(self, event: AlarmEvent, *, at: datetime, cause: str) -> None:
        """Apply an alarm event to its alarm (opening it on a raise, closing it on a resolve; its state and next
        reminder time become the event's) and keep it in the alarm's history."""
        ...

    async def lock_alarm(self, alarm_id: str) -> AlarmEvent | None:
        """The latest event of the alarm `alarm_id`, whatever its state, locked until the unit of work ends;
        None when there is no such alarm (including an id that is not an alarm id at all)."""
        ...

    async def claim_due_reminders(self, now: datetime, limit: int) -> list[AlarmEvent]:
        """Up to `limit` open alarms whose next reminder is due at `now`, earliest due first, as their latest
        events; each is locked until the unit of work ends and skipped by other units of work meanwhile, so
        concurrent sweeps never claim one alarm twice."""
        ...

    async def record_reminders(self, sent: Sequence[Reminder], *, stopped: Sequence[str], at: datetime) -> None:
        """Record a batch of claimed alarms at once: each reminder of `sent` applied to its alarm and kept in its
        history as `record_transition` would, its message queued as `publish_later` would; each alarm of
        `stopped` (its cadence is off now) left without a next reminder and without a transition. One call per
        batch lets a store write it in a few statements rather than three per reminder."""
        ...

    async def earliest_reminder(self) -> datetime | None:
        """When the first reminder of any open alarm is due; None when none is scheduled."""
        ...

    async def history(self, alarm_id: str) -> list[HistoryEntry]:
        """An alarm's transitions, oldest first."""
        ...

    async def publish_later(self, event: CloudEvent) -> None:
        """Queue `event` to be published once this unit of work commits (an id queued before is ignored)."""
        ...


class AlarmStore(Protocol):
    """Where alarms, their history, each target's health and the alarmer's outbox are kept."""

    def unit_of_work(self) -> AlarmUnitOfWork:
        """A new unit of work, begun by `async with`."""
        ...
