"""The alarm-event handler: plan the deliveries, skip those the delivery log has already, make each (first
round of attempts), record each outcome with its `notification.sent.v1` / `notification.failed.v1`, and ack
once all are recorded.

One channel's or recipient's failure never blocks the others and never makes the event come back: a delivery
still failing transiently after its in-process attempts is recorded `retrying`, and the retry sweep
(`service_layer.delivering.RetrySweep`) takes it from there. The handler raises only when it cannot record
(database or malformed event), and then the bus redelivers; deliveries already recorded are skipped next time.
"""

import asyncio

import structlog

from services.notifier.domain.deliveries import Delivery, Notice, plan_deliveries
from services.notifier.ports import DeliveryLog
from services.notifier.service_layer.delivering import Deliverer
from shared.broker import Message, Subscription
from shared.events import AlarmEvent

log = structlog.get_logger(__name__)

QUEUE = "certmon.notifier.alarms"
ROUTING_KEYS = (
    "alarm.raised.v1",
    "alarm.changed.v1",
    "alarm.reminded.v1",
    "alarm.acknowledged.v1",
    "alarm.resolved.v1",
)
PREFETCH = 16
CONSUMER = "notifier.alarms"
#: Deliveries of one event in flight at once (an `individual` owner may list many addresses).
MAX_PARALLEL_DELIVERIES = 8


class AlarmHandler:
    """Handles `alarm.raised|changed|reminded|acknowledged|resolved.v1` from queue `certmon.notifier.alarms`."""

    def __init__(self, *, delivery_log: DeliveryLog, deliverer: Deliverer) -> None:
        self._log = delivery_log
        self._deliverer = deliverer

    async def __call__(self, message: Message[AlarmEvent]) -> None:
        """Deliver one alarm event to its owners, at most once per idempotency key."""
        notice = Notice(message.event, message.payload)
        if await self._log.is_processed(notice.event_id, CONSUMER):
            log.info("alarm_event_already_processed", alarm_id=notice.alarm.alarm_id)
            return
        plan = plan_deliveries(notice.alarm, notice.event_id, channels=self._deliverer.channels)
        # Sent and failed entries are final, and a retrying one belongs to the retry sweep.
        recorded = await self._log.recorded_keys([d.idempotency_key for d in plan])
        limit = asyncio.Semaphore(MAX_PARALLEL_DELIVERIES)

        async def deliver(delivery: Delivery) -> None:
            async with limit:
                await self._deliverer.first_round(delivery, notice)

        async with asyncio.TaskGroup() as group:
            for delivery in plan:
                if delivery.idempotency_key in recorded:
                    log.info("delivery_already_recorded", key=delivery.idempotency_key)
                else:
                    group.create_task(deliver(delivery))
        await self._log.mark_processed(notice.event_id, CONSUMER)


def subscriptions(handler: AlarmHandler) -> list[Subscription]:
    """The notifier's one queue: every alarm transition it tells owners about goes to the one handler."""
    return [Subscription("notifier", QUEUE, dict.fromkeys(ROUTING_KEYS, handler), prefetch=PREFETCH)]
