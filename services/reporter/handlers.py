"""One handler per consumed event (and one per batch of evaluations): store it in history, idempotently on the
event id."""

from collections.abc import Sequence

import structlog

from services.reporter.ports import HistoryStore
from shared.broker import Message, Subscription
from shared.events import AlarmEvent, Evaluation, NotificationResult

log = structlog.get_logger(__name__)

QUEUE = "certmon.reporter.events"


class ReporterHandlers:
    """Stores each consumed event in the history; a failing store raises (the bus retries)."""

    def __init__(self, history: HistoryStore) -> None:
        self._history = history

    async def on_evaluated(self, message: Message[Evaluation]) -> None:
        """`certificate.evaluated.v1`: keep the evaluation; it is its target's latest unless one is newer."""
        _stored(await self._history.record_evaluation(message.event.id, message.payload))

    async def on_evaluated_batch(self, messages: Sequence[Message[Evaluation]]) -> None:
        """`certificate.evaluated.v1` arriving together: `on_evaluated` on each, in one transaction."""
        stored = await self._history.record_evaluations([(m.event.id, m.payload) for m in messages])
        log.debug("events_stored", stored=sum(stored), redelivered_ignored=len(stored) - sum(stored))

    async def on_alarm(self, message: Message[AlarmEvent]) -> None:
        """`alarm.raised|changed|reminded|acknowledged|resolved.v1`: keep the transition in the alarm history."""
        _stored(await self._history.record_alarm(message.event.id, message.payload))

    async def on_notification(self, message: Message[NotificationResult]) -> None:
        """`notification.sent|failed.v1`: keep the delivery outcome."""
        ok = message.event.routing_key == "notification.sent.v1"
        _stored(await self._history.record_notification(message.event.id, message.payload, ok=ok))


def _stored(stored: bool) -> None:
    log.debug("event_stored" if stored else "event_redelivered_ignored")


def subscriptions(handlers: ReporterHandlers) -> list[Subscription]:
    """The reporter's one queue and the handler of each routing key bound to it."""
    return [
        Subscription(
            "reporter",
            QUEUE,
            {
                "certificate.evaluated.v1": handlers.on_evaluated,
                "alarm.raised.v1": handlers.on_alarm,
                "alarm.changed.v1": handlers.on_alarm,
                "alarm.reminded.v1": handlers.on_alarm,
                "alarm.acknowledged.v1": handlers.on_alarm,
                "alarm.resolved.v1": handlers.on_alarm,
                "notification.sent.v1": handlers.on_notification,
                "notification.failed.v1": handlers.on_notification,
            },
            # Evaluations are most of the traffic (issue 17): a batch is one transaction, not one per message.
            prefetch=200,
            batch_handlers={"certificate.evaluated.v1": handlers.on_evaluated_batch},
            batch_size=100,
        )
    ]
