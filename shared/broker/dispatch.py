"""How a consumed event reaches its handler, the same in both buses.

A handler that fails because a dependency is away (`shared.transient`: the database restarting, the broker not
confirming a publish) is called again in process, with backoff, while its message stays unacknowledged: a
database restart must not use up the message's delivery limit and send it to the dead letters. Any other
failure, or a dependency away for longer than `patience`, is one failed attempt that the bus rejects and the
delivery limit counts. Closing the bus ends the retries at once (the message goes back to the queue).
"""

import asyncio
import contextlib
import time

import structlog
from prometheus_client import Counter

from shared.broker.bus import Handler
from shared.events import CloudEvent
from shared.periodic import DEFAULT_BACKOFF, Backoff
from shared.transient import is_transient

log = structlog.get_logger(__name__)

HANDLER_RETRIES = Counter(
    "certmon_handler_retries", "Handler calls retried in process because a dependency was away.", ["queue", "error"]
)

#: How long a message is held and retried in process before its attempt counts as failed.
PATIENCE_SECONDS = 600.0


async def call_handler(
    handler: Handler,
    event: CloudEvent,
    *,
    queue: str,
    closing: asyncio.Event,
    backoff: Backoff = DEFAULT_BACKOFF,
    patience: float = PATIENCE_SECONDS,
) -> None:
    """Run `handler(event)`, retrying while it fails on a dependency that is away; re-raise any other failure."""
    failures = 0
    deadline = time.monotonic() + patience
    while True:
        try:
            await handler(event)
        except Exception as exc:
            if not is_transient(exc) or closing.is_set() or time.monotonic() >= deadline:
                raise
            failures += 1
            delay = backoff.delay(failures)
            HANDLER_RETRIES.labels(queue, type(exc).__name__).inc()
            log.warning(
                "event_retrying",
                queue=queue,
                event_id=event.id,
                routing_key=event.routing_key,
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
            log.info("event_handled_after_retries", queue=queue, event_id=event.id, failures=failures)
        return
