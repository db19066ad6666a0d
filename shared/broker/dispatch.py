"""How a consumed event reaches its handler, the same in both buses.

The payload is validated into the model of the event's routing key here, once: a payload that does not validate
(or a routing key this version does not know) is a `PoisonMessage`, dead-lettered at once because retrying cannot
fix it. The log context (`event_id`, `routing_key`, `service`, `target`) is bound here too, once, for every line
the handler writes.

A handler that fails because a dependency is away (`shared.transient`: the database restarting, the broker not
confirming a publish) is called again in process, with backoff, while its message stays unacknowledged: a
database restart must not use up the message's delivery limit and send it to the dead letters. Any other
failure, or a dependency away for longer than `patience`, is one failed attempt that the bus rejects and the
delivery limit counts. A publish refused because a downstream queue is full (`QueueFull`) is retried without
that limit: a slow consumer downstream is backpressure, and must not send the messages upstream of it to the dead
letters. Closing the bus ends the retries at once (the message goes back to the queue).
"""

import asyncio
import contextlib
import time

import structlog
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError

from shared.broker.bus import Handler, Message, QueueFull, Subscription
from shared.events import CloudEvent
from shared.events.envelope import UnknownEventType
from shared.periodic import DEFAULT_BACKOFF, Backoff
from shared.transient import is_transient

log = structlog.get_logger(__name__)

HANDLER_RETRIES = Counter(
    "certmon_handler_retries", "Handler calls retried in process because a dependency was away.", ["queue", "error"]
)

#: How long a message is held and retried in process before its attempt counts as failed.
PATIENCE_SECONDS = 600.0


class PoisonMessage(ValueError):
    """An event whose payload cannot be handled by any number of retries (it does not validate)."""


def _target_key(payload: BaseModel) -> str | None:
    """The target an event is about, for the log context; None for events about no single target."""
    key = getattr(payload, "target_key", None)
    return key if isinstance(key, str) else None


async def deliver(subscription: Subscription, event: CloudEvent, *, queue: str, closing: asyncio.Event) -> None:
    """Validate the payload, bind the log context, and call the handler of the event's routing key
    (`call_handler`). An event no handler takes (a queue still bound to a key this version dropped, or a newer
    producer's type) is acknowledged and logged, not dead-lettered."""
    handler = subscription.handler_for(event.routing_key)
    if handler is None:
        log.info("event_skipped", queue=queue, event_id=event.id, routing_key=event.routing_key)
        return
    try:
        payload = event.payload()
    except (ValidationError, UnknownEventType) as exc:
        raise PoisonMessage(f"{event.routing_key} {event.id}: {str(exc)[:300]}") from exc
    with structlog.contextvars.bound_contextvars(
        event_id=event.id, routing_key=event.routing_key, service=subscription.service, target=_target_key(payload)
    ):
        await call_handler(handler, Message(event, payload), queue=queue, closing=closing)


async def call_handler(
    handler: Handler,
    message: Message[BaseModel],
    *,
    queue: str,
    closing: asyncio.Event,
    backoff: Backoff = DEFAULT_BACKOFF,
    patience: float = PATIENCE_SECONDS,
) -> None:
    """Run `handler(message)`, retrying while it fails on a dependency that is away; re-raise any other failure."""
    failures = 0
    deadline = time.monotonic() + patience
    while True:
        try:
            await handler(message)
        except Exception as exc:
            waiting_for_room = isinstance(exc, QueueFull)
            if not is_transient(exc) or closing.is_set() or (time.monotonic() >= deadline and not waiting_for_room):
                raise
            failures += 1
            delay = backoff.delay(failures)
            HANDLER_RETRIES.labels(queue, type(exc).__name__).inc()
            log.warning(
                "event_retrying",
                queue=queue,
                error_type=type(exc).__name__,
                error=str(exc)[:500],
                failures=failures,
                retry_in_seconds=round(delay, 2),
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await closing.wait()
            if closing.is_set():
                raise
            continue
        if failures:
            log.info("event_handled_after_retries", queue=queue, failures=failures)
        return
