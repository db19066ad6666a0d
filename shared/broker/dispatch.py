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

A routing key with a batch handler (`Subscription.batch_handlers`) has its messages gathered (`shared.gather`):
those that reach the dispatcher together (up to `batch_size`, without waiting for more) go to the batch handler in
one call, one batch at a time, while the next gather (one that arrives alone goes to the key's handler); each
message's delivery returns, or raises, when its batch is done. A batch that fails (after the same in-process
retries) is handed message by message to the key's handler, so a poison or failing message fails only its own
delivery and the others are acknowledged.
"""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence

import structlog
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ValidationError

from shared.broker.bus import Message, QueueFull, Subscription
from shared.events import CloudEvent
from shared.events.envelope import UnknownEventType
from shared.gather import Gatherer
from shared.periodic import DEFAULT_BACKOFF, Backoff
from shared.transient import is_transient

log = structlog.get_logger(__name__)

HANDLER_RETRIES = Counter(
    "certmon_handler_retries", "Handler calls retried in process because a dependency was away.", ["queue", "error"]
)

BATCH_SIZE = Histogram(
    "certmon_consumer_batch_size",
    "Messages handed to a batch handler in one call, by queue.",
    ["queue"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
BATCH_FALLBACKS = Counter(
    "certmon_consumer_batch_fallbacks",
    "Batches that failed and were handled message by message instead, by queue.",
    ["queue"],
)

#: How long a message is held and retried in process before its attempt counts as failed.
PATIENCE_SECONDS = 600.0


class PoisonMessage(ValueError):
    """An event whose payload cannot be handled by any number of retries (it does not validate)."""


def _target_key(payload: BaseModel) -> str | None:
    """The target an event is about, for the log context; None for events about no single target."""
    key = getattr(payload, "target_key", None)
    return key if isinstance(key, str) else None


@contextlib.contextmanager
def _log_context(service: str, message: Message[BaseModel]) -> Iterator[None]:
    """Bind the context every line about one message carries."""
    event = message.event
    with structlog.contextvars.bound_contextvars(
        event_id=event.id, routing_key=event.routing_key, service=service, target=_target_key(message.payload)
    ):
        yield


class Dispatcher:
    """Hands one subscription's consumed events to its handlers; each bus keeps one per subscription."""

    def __init__(
        self, subscription: Subscription, *, queue: str, closing: asyncio.Event, backoff: Backoff = DEFAULT_BACKOFF
    ) -> None:
        self._subscription, self._queue, self._closing, self._backoff = subscription, queue, closing, backoff
        self._batchers = {
            pattern: _gatherer(subscription, pattern, queue=queue, closing=closing, backoff=backoff)
            for pattern in subscription.batch_handlers
        }

    async def deliver(self, event: CloudEvent) -> None:
        """Validate the payload, bind the log context, and call the handler of the event's routing key
        (`call_handler`), or its batch handler with the messages that came with it. An event no handler takes (a
        queue still bound to a key this version dropped, or a newer producer's type) is acknowledged and logged,
        not dead-lettered."""
        pattern = self._subscription.pattern_for(event.routing_key)
        if pattern is None:
            log.info("event_skipped", queue=self._queue, event_id=event.id, routing_key=event.routing_key)
            return
        try:
            message = Message(event, event.payload())
        except (ValidationError, UnknownEventType) as exc:
            raise PoisonMessage(f"{event.routing_key} {event.id}: {str(exc)[:300]}") from exc
        batcher = self._batchers.get(pattern)
        if batcher is not None:
            await batcher.submit(message)
            return
        handler = self._subscription.handlers[pattern]
        with _log_context(self._subscription.service, message):
            await call_handler(
                lambda: handler(message), queue=self._queue, closing=self._closing, backoff=self._backoff
            )

    async def close(self) -> None:
        """Stop the batch being handled, if any (its messages go back to the queue)."""
        for batcher in self._batchers.values():
            await batcher.close()


def _gatherer(
    subscription: Subscription, pattern: str, *, queue: str, closing: asyncio.Event, backoff: Backoff
) -> Gatherer[Message[BaseModel], None]:
    """The messages of `pattern`'s batch handler gathered, each batch called with the in-process retries, and, if
    it still fails, its messages handed one by one to the key's handler (unless the bus is closing)."""
    batch_handler, handler, service = (
        subscription.batch_handlers[pattern],
        subscription.handlers[pattern],
        subscription.service,
    )

    async def handle_batch(messages: Sequence[Message[BaseModel]]) -> list[None]:
        with structlog.contextvars.bound_contextvars(service=service, batch_size=len(messages)):
            await call_handler(lambda: batch_handler(messages), queue=queue, closing=closing, backoff=backoff)
        return [None] * len(messages)

    async def handle_alone(message: Message[BaseModel]) -> None:
        with _log_context(service, message):
            await call_handler(lambda: handler(message), queue=queue, closing=closing, backoff=backoff)

    def fall_back(size: int, exc: Exception) -> bool:
        if closing.is_set():  # the messages go back to the queue instead
            return False
        BATCH_FALLBACKS.labels(queue).inc()
        log.warning(
            "batch_failed_handling_alone",
            queue=queue,
            batch_size=size,
            error_type=type(exc).__name__,
            error=str(exc)[:500],
        )
        return True

    return Gatherer(
        f"batch:{queue}",
        handle_batch,
        handle_alone,
        max_size=subscription.batch_size,
        fall_back=fall_back,
        gathered=BATCH_SIZE.labels(queue).observe,
    )


async def call_handler(
    attempt: Callable[[], Awaitable[None]],
    *,
    queue: str,
    closing: asyncio.Event,
    backoff: Backoff = DEFAULT_BACKOFF,
    patience: float = PATIENCE_SECONDS,
) -> None:
    """Run `attempt()` (a handler's call), retrying while it fails on a dependency that is away; re-raise any
    other failure."""
    failures = 0
    deadline = time.monotonic() + patience
    while True:
        try:
            await attempt()
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
