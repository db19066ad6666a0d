"""Making a delivery and recording how it ended, the same way for the alarm handler's first round and the retry
sweep's later ones.

A round ends in one record with its `notification.*.v1`: `sent`; `retrying` (a transient failure while
`channels.retry.give_up_after` has not run out: `notification.failed.v1` with `next_attempt_at`, and the
delivery log owns the delivery from then on); or `failed` for good (a permanent failure, or time ran out:
`notification.failed.v1` without `next_attempt_at`). Outcomes are counted in
`certmon_notifications_total{channel,outcome}` (`sent`, `retrying`, `failed`: a permanent failure, `gave_up`:
transient failures until the retry window ran out) and every failure is logged with its reason.

A delivery is sent before it is recorded (a receiver cannot take part in our transaction). When recording fails
(the database away), the dispatcher runs the handler again; a delivery sent but not yet recorded by this process is
then recorded, not sent again (`_sent`). Only a process that dies between a send and its record sends it twice,
with the same delivery id (`X-Certmon-Delivery`, the email's Message-ID), which receivers can drop.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta

import structlog
from prometheus_client import Counter

from services.notifier.domain.deliveries import ChannelKind, Delivery, Notice, RetryPolicy
from services.notifier.ports import DeliveryError, DeliveryLog, DeliveryRecord, PendingDelivery, Sender, Status
from shared.clock import Clock
from shared.events import NotificationResult, derived_id, make_event

log = structlog.get_logger(__name__)

SOURCE = "certmon/notifier"
NOTIFICATIONS = Counter(
    "certmon_notifications",
    "Delivery rounds recorded, by channel and outcome (sent, retrying, failed, gave_up).",
    ["channel", "outcome"],
)
OUTCOMES = ("sent", "retrying", "failed", "gave_up")


class Deliverer:
    """Sends deliveries through the sender of their channel and records each round's outcome."""

    def __init__(
        self,
        *,
        delivery_log: DeliveryLog,
        senders: Mapping[ChannelKind, Sender],
        retry: RetryPolicy,
        clock: Clock,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._log, self._senders, self._retry = delivery_log, senders, retry
        self._clock, self._sleep = clock, sleep
        #: Deliveries this process sent whose record has not committed yet: their note, attempts and first attempt
        #: time, by idempotency key (as many as deliveries in flight).
        self._sent: dict[str, tuple[str | None, int, datetime]] = {}
        for channel in senders:  # every series from zero, so rates exist before the first delivery
            for outcome in OUTCOMES:
                NOTIFICATIONS.labels(channel.value, outcome)

    @property
    def channels(self) -> list[ChannelKind]:
        """The channels there is a sender for."""
        return list(self._senders)

    async def first_round(self, delivery: Delivery, notice: Notice) -> None:
        """Try up to `retry.attempts` times with backoff (a permanent error ends it at once) and record it."""
        sent = self._sent.get(delivery.idempotency_key)
        if sent is not None:  # sent before its record failed: recording is what is left
            note, attempt, started = sent
            await self._record_sent(delivery, notice, note, attempts=attempt, total=attempt, first_attempt_at=started)
            return
        started = self._clock()
        sender = self._senders[delivery.channel]
        for attempt in range(1, self._retry.attempts + 1):
            try:
                note = await sender.send(delivery, notice)
            except DeliveryError as exc:
                if not exc.transient or attempt == self._retry.attempts:
                    await self._failed(delivery, notice, exc, attempts=attempt, total=attempt, first_attempt_at=started)
                    return
                delay = self._retry.delay_after(attempt)
                log.info(
                    "delivery_attempt_failed",
                    key=delivery.idempotency_key,
                    attempt=attempt,
                    delay=delay,
                    error=str(exc),
                )
                await self._sleep(delay)
            else:
                self._sent[delivery.idempotency_key] = (note, attempt, started)
                await self._record_sent(
                    delivery, notice, note, attempts=attempt, total=attempt, first_attempt_at=started
                )
                return

    async def retry_round(self, pending: PendingDelivery) -> None:
        """Try a delivery from the log once more and record the outcome."""
        delivery, notice, total = pending.delivery, pending.notice, pending.attempts + 1
        sent = self._sent.get(delivery.idempotency_key)
        if sent is not None:  # sent by an earlier round whose record failed
            await self._record_sent(delivery, notice, sent[0], attempts=1, total=total, first_attempt_at=sent[2])
            return
        sender = self._senders.get(delivery.channel)
        try:
            if sender is None:
                raise DeliveryError(f"channel {delivery.channel} is no longer configured", transient=False)
            note = await sender.send(delivery, notice)
        except DeliveryError as exc:
            await self._failed(
                delivery, notice, exc, attempts=1, total=total, first_attempt_at=pending.first_attempt_at
            )
        else:
            self._sent[delivery.idempotency_key] = (note, total, pending.first_attempt_at)
            await self._record_sent(
                delivery, notice, note, attempts=1, total=total, first_attempt_at=pending.first_attempt_at
            )

    async def _record_sent(
        self,
        delivery: Delivery,
        notice: Notice,
        note: str | None,
        *,
        attempts: int,
        total: int,
        first_attempt_at: datetime,
    ) -> None:
        """Record a sent delivery; once that committed, it is no longer kept as sent-but-unrecorded."""
        await self._record(
            delivery, notice, "sent", note, attempts=attempts, total=total, first_attempt_at=first_attempt_at
        )
        self._sent.pop(delivery.idempotency_key, None)

    async def _failed(
        self,
        delivery: Delivery,
        notice: Notice,
        error: DeliveryError,
        *,
        attempts: int,
        total: int,
        first_attempt_at: datetime,
    ) -> None:
        next_at = None
        if error.transient:
            next_at = self._retry.next_attempt_at(first_attempt_at=first_attempt_at, now=self._clock(), attempts=total)
        reason = "retrying" if next_at else "permanent" if not error.transient else "gave_up"
        log.warning(
            "delivery_failed",
            key=delivery.idempotency_key,
            channel=delivery.channel.value,
            attempts=total,
            reason=reason,
            error=str(error),
            next_attempt_at=next_at.isoformat() if next_at else None,
        )
        status: Status = "retrying" if next_at else "failed"
        await self._record(
            delivery,
            notice,
            status,
            str(error),
            attempts=attempts,
            total=total,
            first_attempt_at=first_attempt_at,
            next_attempt_at=next_at,
            outcome="gave_up" if reason == "gave_up" else status,
        )

    async def _record(
        self,
        delivery: Delivery,
        notice: Notice,
        status: Status,
        error: str | None,
        *,
        attempts: int,
        total: int,
        first_attempt_at: datetime,
        next_attempt_at: datetime | None = None,
        outcome: str | None = None,
    ) -> None:
        now, alarm = self._clock(), notice.alarm
        result = NotificationResult(
            alarm_id=alarm.alarm_id,
            alarm_event_id=notice.event_id,
            channel=delivery.channel.value,
            recipient=delivery.recipient,
            attempt=total,
            error=error,
            at=now,
            transition=alarm.transition,
            next_attempt_at=next_attempt_at,
        )
        event = make_event(
            "notification.sent.v1" if status == "sent" else "notification.failed.v1",
            result,
            source=SOURCE,
            subject=alarm.alarm_id,
            # One id per delivery, outcome and attempt count: a replayed round yields the same id, a later round
            # a new one.
            event_id=derived_id(notice.event_id, delivery.idempotency_key, status, str(total)),
        )
        record = DeliveryRecord(delivery, notice, status, attempts, error, now, first_attempt_at, next_attempt_at)
        await self._log.record(record, event)
        NOTIFICATIONS.labels(delivery.channel.value, outcome or status).inc()
        log.info("delivery_recorded", key=delivery.idempotency_key, status=status, attempts=total)


class RetrySweep:
    """One tick of the retry loop: claim a batch of the `retrying` deliveries that are due and try each
    once more. A claim pushes the entry's due time `lease` seconds on, so another replica's sweep leaves it alone
    while it is sent (and a sweep that dies mid-send gives it back when the lease runs out)."""

    def __init__(
        self,
        deliverer: Deliverer,
        delivery_log: DeliveryLog,
        *,
        clock: Clock,
        lease: float,
        batch: int = 64,
        parallel: int = 8,
    ) -> None:
        self._deliverer, self._log, self._clock = deliverer, delivery_log, clock
        self._lease, self._batch, self._parallel = timedelta(seconds=lease), batch, parallel

    async def __call__(self) -> int:
        """Try the due deliveries (one batch: the next tick takes the rest) once each; returns how many."""
        now = self._clock()
        due = await self._log.claim_due(now, lease_until=now + self._lease, limit=self._batch)
        limit = asyncio.Semaphore(self._parallel)

        async def retry(pending: PendingDelivery) -> None:
            async with limit:
                await self._deliverer.retry_round(pending)

        async with asyncio.TaskGroup() as group:
            for pending in due:
                group.create_task(retry(pending))
        return len(due)
