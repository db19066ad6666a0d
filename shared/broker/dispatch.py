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

A routing key with a batch handler (`Subscription.batch_handlers`) has its messages gathered: those that reach the
dispatcher together (up to `batch_size`, without waiting for more) go to the batch handler in one call, one batch
at a time, while the next gather (one that arrives alone goes to the key's handler); each message's delivery returns, or raises, when its batch is done. A batch that
fails (after the same in-process retries) is handed message by message to the key's handler, so a poison or
failing message fails only its own delivery and the others are acknowledged.
"""

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence

import structlog
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ValidationError

from shared.broker.bus import Message, QueueFull, Subscription
from shared.events import CloudEvent
from shared.events.envelope import UnknownEventType
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
            pattern: _Batcher(subscription, pattern, queue=queue, closing=closing, backoff=backoff)
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


class _Batcher:
    """Gathers the messages of one batch handler and settles each message's delivery with its batch's outcome."""

    def __init__(
        self, subscription: Subscription, pattern: str, *, queue: str, closing: asyncio.Event, backoff: Backoff
    ) -> None:
        self._batch_handler, self._handler = subscription.batch_handlers[pattern], subscription.handlers[pattern]
        self._service, self._size = subscription.service, max(1, subscription.batch_size)
        self._queue, self._closing, self._backoff = queue, closing, backoff
        self._waiting: list[tuple[Message[BaseModel], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._sizes = BATCH_SIZE.labels(queue)

    async def submit(self, message: Message[BaseModel]) -> None:
        """Return once the message is handled, alone or in a batch; raise its failure."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((message, done))
        if self._task is None:
            # A context of its own: the batch's lines must not carry the first message's event id.
            self._task = asyncio.create_task(self._run(), name=f"batch:{self._queue}", context=contextvars.Context())
        await done

    async def close(self) -> None:
        """Cancel the running batch; its messages' deliveries fail, so the bus returns them to the queue."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        try:
            while self._waiting:
                await self._gather()
                batch, self._waiting = self._waiting[: self._size], self._waiting[self._size :]
                try:
                    await self._handle(batch)
                except BaseException as exc:  # cancelled, or a bug: no delivery may wait forever
                    _settle(batch, exc if isinstance(exc, Exception) else RuntimeError("batch cancelled"))
                    raise
        finally:
            self._task = None
            if self._waiting:  # cancelled with messages still gathering
                _settle(self._waiting, RuntimeError("batch cancelled"))
                self._waiting = []

    async def _gather(self) -> None:
        """Yield to the loop while more messages keep arriving (the deliveries a read of the socket brought): a
        batch takes what is there, without waiting for what is not."""
        seen = -1
        while seen != len(self._waiting) and len(self._waiting) < self._size:
            seen = len(self._waiting)
            await asyncio.sleep(0)

    async def _handle(self, batch: list[tuple[Message[BaseModel], "asyncio.Future[None]"]]) -> None:
        self._sizes.observe(len(batch))
        if len(batch) > 1:
            messages = [message for message, _ in batch]
            try:
                with structlog.contextvars.bound_contextvars(service=self._service, batch_size=len(batch)):
                    await call_handler(
                        lambda: self._batch_handler(messages),
                        queue=self._queue,
                        closing=self._closing,
                        backoff=self._backoff,
                    )
            except Exception as exc:
                if self._closing.is_set():
                    _settle(batch, exc)
                    return
                BATCH_FALLBACKS.labels(self._queue).inc()
                log.warning(
                    "batch_failed_handling_alone",
                    queue=self._queue,
                    batch_size=len(batch),
                    error_type=type(exc).__name__,
                    error=str(exc)[:500],
                )
            else:
                _settle(batch, None)
                return
        for message, done in batch:
            try:
                await self._handle_alone(message)
            except Exception as exc:  # this message's own failure, for its delivery to reject
                _settle([(message, done)], exc)
            else:
                _settle([(message, done)], None)

    async def _handle_alone(self, message: Message[BaseModel]) -> None:
        with _log_context(self._service, message):
            await call_handler(
                lambda: self._handler(message), queue=self._queue, closing=self._closing, backoff=self._backoff
            )


def _settle(batch: Sequence[tuple[Message[BaseModel], "asyncio.Future[None]"]], failure: Exception | None) -> None:
    """Resolve each delivery still waiting (one whose consumer was cancelled is done already)."""
    for _, done in batch:
        if not done.done():
            if failure is None:
                done.set_result(None)
            else:
                done.set_exception(failure)


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
