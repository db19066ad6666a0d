"""One handler per consumed event: parse the payload, store it in history (idempotently on the event id)."""

from collections.abc import Awaitable, Callable

import structlog

from services.reporter.adapters.history import History
from shared.events import AlarmEvent, CloudEvent, Evaluation, NotificationResult

log = structlog.get_logger(__name__)

QUEUE = "certmon.reporter.events"
ROUTING_KEYS = ("certificate.evaluated.v1", "alarm.*.v1", "notification.*.v1")


class ReporterHandlers:
    """Routes each consumed event to its routing key's handler; a failing handler raises (the bus retries)."""

    def __init__(self, history: History) -> None:
        self._history = history
        self._routes: dict[str, Callable[[CloudEvent], Awaitable[bool]]] = {
            "certificate.evaluated.v1": self.on_evaluated,
            "alarm.raised.v1": self.on_alarm,
            "alarm.changed.v1": self.on_alarm,
            "alarm.resolved.v1": self.on_alarm,
            "notification.sent.v1": self.on_notification,
            "notification.failed.v1": self.on_notification,
        }

    async def handle(self, event: CloudEvent) -> None:
        """The bus handler: dispatch by routing key; an event type this version does not know is skipped."""
        log_ = log.bind(event_id=event.id, routing_key=event.routing_key, service="reporter")
        route = self._routes.get(event.routing_key)
        if route is None:
            log_.info("event_skipped", reason="routing key not handled by this version")
            return
        stored = await route(event)
        log_.debug("event_stored" if stored else "event_redelivered_ignored")

    async def on_evaluated(self, event: CloudEvent) -> bool:
        """`certificate.evaluated.v1`: keep the evaluation; it is its target's latest unless one is newer."""
        return await self._history.record_evaluation(event.id, Evaluation.model_validate(event.data))

    async def on_alarm(self, event: CloudEvent) -> bool:
        """`alarm.raised|changed|resolved.v1`: keep the transition in the alarm history."""
        return await self._history.record_alarm(event.id, AlarmEvent.model_validate(event.data))

    async def on_notification(self, event: CloudEvent) -> bool:
        """`notification.sent|failed.v1`: keep the delivery outcome."""
        result = NotificationResult.model_validate(event.data)
        ok = event.routing_key == "notification.sent.v1"
        return await self._history.record_notification(event.id, result, ok=ok)
