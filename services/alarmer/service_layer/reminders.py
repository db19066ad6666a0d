"""The reminder sweep: re-notifies open, unacknowledged alarms at their level's cadence.

Due times live in PostgreSQL (`next_reminder_at`), so reminders survive restarts and any replica may send them.
Each batch is one unit of work: it claims due alarms (locked, skipped by other replicas), records each
`reminded` transition, queues `alarm.reminded.v1` with an id derived from the alarm and the reminder's number,
and moves the due time on, all or nothing; the store gets the batch's writes in one call, to make them in a few
statements. The loop ticks often but reads the database only when the earliest due time it last saw has come (at
least every `max_delay` seconds, since another replica may have scheduled an earlier one), or when `expect` says
a reminder is due sooner.
"""

from datetime import datetime, timedelta

import structlog

from services.alarmer.domain.alarm_events import envelope
from services.alarmer.domain.lifecycle import reminded, reminder_cause, reminder_number
from services.alarmer.domain.ownership import Ownership
from services.alarmer.ports import AlarmStore, AlarmUnitOfWork, Reminder
from services.alarmer.service_layer.metrics import committed
from shared.clock import Clock
from shared.config import CertmonConfig
from shared.events import AlarmEvent
from shared.periodic import PeriodicTask

log = structlog.get_logger(__name__)

LOOP_NAME = "reminders:alarmer"


class ReminderSweep:
    """Sends every due reminder in batches of `batch_size`; as a loop, checks again between `min_delay` and
    `max_delay` seconds after a sweep, as soon as the earliest due reminder allows."""

    def __init__(
        self,
        store: AlarmStore,
        config: CertmonConfig,
        clock: Clock,
        *,
        batch_size: int = 500,
        min_delay: float = 0.5,
        max_delay: float = 30.0,
        ownership: Ownership | None = None,
    ) -> None:
        """`ownership` is `config`'s index (bootstrap shares one with the evaluation handler); None indexes
        `config` here."""
        self._store, self._clock = store, clock
        self._ownership = Ownership.of(config, ownership)
        self._batch_size, self._min_delay, self._max_delay = batch_size, min_delay, max_delay
        self._next_check: datetime | None = None  # None: check at the next tick
        self._loop = PeriodicTask(LOOP_NAME, self.tick, interval=min_delay)

    async def start(self) -> None:
        """Start the sweep loop (its first tick sweeps at once)."""
        self._next_check = None
        await self._loop.start()

    async def stop(self) -> None:
        """Stop the loop; a batch in progress rolls back and is sent by the next sweep."""
        await self._loop.stop()

    def expect(self, due: datetime) -> None:
        """Note that a reminder is due at `due` (scheduled by this process), so the loop checks by then rather
        than at the time it planned from the due times it last read."""
        if self._next_check is not None and due < self._next_check:
            self._next_check = due

    async def tick(self) -> int:
        """Sweep if the next check is due, then plan the next one; returns the reminders sent."""
        now = self._clock()
        if self._next_check is not None and now < self._next_check:
            return 0
        sent = await self.sweep()
        async with self._store.unit_of_work() as uow:
            earliest = await uow.earliest_reminder()
        now = self._clock()
        wait = self._max_delay if earliest is None else (earliest - now).total_seconds()
        self._next_check = now + timedelta(seconds=min(self._max_delay, max(self._min_delay, wait)))
        return sent

    async def sweep(self) -> int:
        """Send every reminder due now, batch by batch; returns how many were sent."""
        sent = 0
        while True:
            async with self._store.unit_of_work() as uow:
                now = self._clock()
                due = await uow.claim_due_reminders(now, self._batch_size)
                reminders = await self._remind(uow, due, now)
            committed(reminder.event for reminder in reminders)
            sent += len(reminders)
            if len(due) < self._batch_size:
                return sent

    async def _remind(self, uow: AlarmUnitOfWork, due: list[AlarmEvent], now: datetime) -> list[Reminder]:
        reminders: list[Reminder] = []
        stopped: list[AlarmEvent] = []
        for alarm in due:
            # The cadence is resolved now, not when scheduled: the config may have changed since.
            target = self._ownership.target_for(alarm.key.target_key, alarm.target)
            cadence = self._ownership.reminder_seconds(target, alarm.certificate, alarm.level)
            if cadence is None:
                stopped.append(alarm)
                continue
            payload = reminded(alarm, now=now, cadence=cadence)
            reminders.append(Reminder(payload, reminder_cause(cadence), envelope(payload, reminder_number(payload))))
        await uow.record_reminders(reminders, stopped=[alarm.alarm_id for alarm in stopped], at=now)
        for alarm in stopped:
            log.info("alarm_reminders_off", alarm_id=alarm.alarm_id, level=alarm.level)
        for reminder in reminders:
            payload = reminder.event
            log.info(
                "alarm_reminded",
                alarm_id=payload.alarm_id,
                level=payload.level,
                reminders_sent=payload.reminders_sent,
                next_reminder_at=payload.next_reminder_at.isoformat() if payload.next_reminder_at else None,
            )
        return reminders
