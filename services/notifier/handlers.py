"""The alarm-event handler: plan the deliveries, skip those already sent, send each with retries, record each
outcome with its `notification.sent.v1` / `notification.failed.v1`, and ack once all are settled.

One recipient's failure never blocks the others and never makes the event come back: a delivery that still
fails after its retries is recorded as failed. The handler raises only when it cannot record (database or
malformed event), and then the bus redelivers; deliveries already sent are skipped on the next try.
"""

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from services.notifier.adapters.rendering import Renderer, RenderError
from services.notifier.domain.deliveries import ChannelKind, Delivery, RenderedMessage, RetryPolicy, plan_deliveries
from services.notifier.ports import DeliveryError, DeliveryLog, DeliveryRecord, Sender, Status
from shared.broker import Message, Subscription
from shared.clock import Clock
from shared.events import AlarmEvent, NotificationResult, derived_id, make_event

log = structlog.get_logger(__name__)

QUEUE = "certmon.notifier.alarms"
ROUTING_KEYS = ("alarm.raised.v1", "alarm.changed.v1", "alarm.resolved.v1")
PREFETCH = 16
CONSUMER = "notifier.alarms"
SOURCE = "certmon/notifier"
#: Deliveries of one event in flight at once (an `individual` owner may list many addresses).
MAX_PARALLEL_DELIVERIES = 8


@dataclass(frozen=True)
class Outcome:
    """How a delivery ended after its attempts."""

    status: Status
    attempts: int
    error: str | None


async def send_with_retries(
    sender: Sender, delivery: Delivery, message: RenderedMessage, policy: RetryPolicy
) -> Outcome:
    """Try up to `policy.attempts` times with exponential backoff; a permanent error ends it at once."""
    for attempt in range(1, policy.attempts + 1):
        try:
            note = await sender.send(delivery, message)
        except DeliveryError as exc:
            if not exc.transient or attempt == policy.attempts:
                return Outcome("failed", attempt, str(exc))
            delay = policy.delay_after(attempt)
            log.info(
                "delivery_retrying",
                key=delivery.idempotency_key,
                attempt=attempt,
                delay=delay,
                error=str(exc),
            )
            await asyncio.sleep(delay)
        else:
            return Outcome("sent", attempt, note)
    raise AssertionError("unreachable: the last attempt returns")  # pragma: no cover


class AlarmHandler:
    """Handles `alarm.raised|changed|resolved.v1` from queue `certmon.notifier.alarms`."""

    def __init__(
        self,
        *,
        delivery_log: DeliveryLog,
        renderer: Renderer,
        senders: Mapping[ChannelKind, Sender],
        retry: RetryPolicy,
        clock: Clock,
    ) -> None:
        self._log = delivery_log
        self._renderer = renderer
        self._senders = senders
        self._retry = retry
        self._clock = clock

    async def __call__(self, message: Message[AlarmEvent]) -> None:
        """Deliver one alarm event to its owners, at most once per idempotency key."""
        event, alarm = message.event, message.payload
        if await self._log.is_processed(event.id, CONSUMER):
            log.info("alarm_event_already_processed", alarm_id=alarm.alarm_id)
            return
        plan = plan_deliveries(alarm, event.id, channels=self._senders.keys())
        already_sent = await self._log.sent_keys([d.idempotency_key for d in plan])
        limit = asyncio.Semaphore(MAX_PARALLEL_DELIVERIES)

        async def deliver(delivery: Delivery) -> None:
            async with limit:
                await self._deliver(alarm, event.id, delivery)

        async with asyncio.TaskGroup() as group:
            for delivery in plan:
                if delivery.idempotency_key in already_sent:
                    log.info("delivery_already_sent", key=delivery.idempotency_key)
                else:
                    group.create_task(deliver(delivery))
        await self._log.mark_processed(event.id, CONSUMER)

    async def _deliver(self, alarm: AlarmEvent, alarm_event_id: str, delivery: Delivery) -> None:
        try:
            message = self._renderer.render(alarm, delivery, alarm_event_id=alarm_event_id)
        except RenderError as exc:
            outcome = Outcome("failed", 0, str(exc))
        else:
            outcome = await send_with_retries(self._senders[delivery.channel], delivery, message, self._retry)
        now = self._clock()
        result = NotificationResult(
            alarm_id=alarm.alarm_id,
            alarm_event_id=alarm_event_id,
            channel=delivery.channel.value,
            recipient=delivery.recipient,
            attempt=outcome.attempts,
            error=outcome.error,
            at=now,
        )
        event = make_event(
            f"notification.{outcome.status}.v1",
            result,
            source=SOURCE,
            subject=alarm.alarm_id,
            event_id=derived_id(alarm_event_id, delivery.idempotency_key, outcome.status),
        )
        record = DeliveryRecord(
            delivery, alarm.alarm_id, alarm_event_id, outcome.status, outcome.attempts, outcome.error, now
        )
        await self._log.record(record, event)
        log.info(
            "delivery_recorded",
            key=delivery.idempotency_key,
            status=outcome.status,
            attempts=outcome.attempts,
        )


def subscriptions(handler: AlarmHandler) -> list[Subscription]:
    """The notifier's one queue: every alarm transition it tells owners about goes to the one handler."""
    return [Subscription("notifier", QUEUE, dict.fromkeys(ROUTING_KEYS, handler), prefetch=PREFETCH)]
