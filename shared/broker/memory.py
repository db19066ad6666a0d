"""The in-memory twin of the RabbitMQ adapter: same semantics (topic routing, competing consumers on a
named queue, reject → redelivery up to the delivery limit → dead letters, each with its reason), no broker."""

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from shared.broker.bus import DEFAULT_DELIVERY_LIMIT, BusError, PublishError, Subscription, topic_matches
from shared.broker.dead_letters import failure_reason
from shared.broker.dispatch import Dispatcher, PoisonMessage
from shared.broker.metrics import consumed, subscribed
from shared.events import BROADCAST_KEYS, CloudEvent

log = structlog.get_logger(__name__)


@dataclass
class _Queue:
    name: str
    patterns: list[str]
    items: "asyncio.Queue[tuple[CloudEvent, int]]" = field(default_factory=asyncio.Queue)
    consumers: list["asyncio.Task[None]"] = field(default_factory=list)
    in_flight: int = 0


class InMemoryBus:
    """A bus in one process. `dead_letters` holds what exceeded the delivery limit or could not validate, as
    (queue, event); `dead_letter_reasons` says why, by (queue, event id), as the broker's `x-certmon-reason`."""

    def __init__(self, *, delivery_limit: int = DEFAULT_DELIVERY_LIMIT) -> None:
        self.delivery_limit = delivery_limit
        self.dead_letters: list[tuple[str, CloudEvent]] = []
        self.dead_letter_reasons: dict[tuple[str, str], str] = {}
        self.published: list[CloudEvent] = []
        self._queues: dict[str, _Queue] = {}
        self._dispatchers: list[Dispatcher] = []
        self._closed = False
        self._stopping = False  # stop_consuming: consumers take nothing more
        self._busy = 0  # handlers running, across queues
        self._idle = asyncio.Event()  # set while none is
        self._idle.set()
        self._closing = asyncio.Event()

    async def start(self) -> None:
        """Nothing to connect."""
        self._closed = self._stopping = False
        self._closing.clear()

    async def ping(self) -> None:
        """Raise BusError once the bus is closed."""
        if self._closed:
            raise BusError("bus is closed")

    async def stop_consuming(self, within: float | None) -> None:
        """Take no more events, wait up to `within` seconds for the handlers running, then cancel the consumers; an
        event whose handler was cancelled goes back to its queue."""
        self._closing.set()
        self._stopping = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._idle.wait()
        for queue in self._queues.values():
            for task in queue.consumers:
                task.cancel()
            for task in queue.consumers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            queue.consumers.clear()
        for dispatcher in self._dispatchers:
            await dispatcher.close()
        self._dispatchers.clear()

    async def close(self) -> None:
        """Cancel the consumers (at once) and refuse publishes."""
        await self.stop_consuming(within=0)
        self._closed = True

    async def publish(self, event: CloudEvent) -> None:
        """Route to every bound queue; an event no queue takes is returned, as `mandatory` would (except broadcasts)."""
        if self._closed:
            raise PublishError("bus is closed")
        targets = [q for q in self._queues.values() if any(topic_matches(p, event.routing_key) for p in q.patterns)]
        if not targets and event.routing_key not in BROADCAST_KEYS:
            raise PublishError(f"unroutable: no queue is bound to {event.routing_key}")
        self.published.append(event)
        for queue in targets:
            queue.items.put_nowait((event, 0))

    async def subscribe(self, subscription: Subscription) -> None:
        """Declare (or join) a queue and start `min(prefetch, 8)` competing consumer tasks."""
        name, keys = subscription.queue, subscription.routing_keys
        q = self._queues.get(name)
        if q is None:
            q = self._queues[name] = _Queue(name, list(keys))
        else:
            q.patterns.extend(k for k in keys if k not in q.patterns)
        subscribed(name, keys)
        dispatcher = Dispatcher(subscription, queue=name, closing=self._closing)
        self._dispatchers.append(dispatcher)
        for _ in range(max(1, min(subscription.prefetch, 8))):
            q.consumers.append(asyncio.create_task(self._consume(q, subscription, dispatcher), name=f"consume:{name}"))

    def declare(self, queue: str, routing_keys: Sequence[str]) -> None:
        """Declare a bound queue without a consumer (so publishes to it are routable and kept)."""
        self._queues.setdefault(queue, _Queue(queue, list(routing_keys)))

    def pending(self, queue: str) -> list[CloudEvent]:
        """Events waiting in a queue, for tests of queues without consumers."""
        q = self._queues[queue]
        return [event for event, _ in list(q.items._queue)]  # type: ignore[attr-defined]

    async def drain(self, within: float = 30.0) -> None:
        """Wait until every queue is empty and no handler is running (settles a whole pipeline)."""
        async with asyncio.timeout(within):
            idle_rounds = 0
            while idle_rounds < 3:
                busy = any(q.consumers and (q.items.qsize() or q.in_flight) for q in self._queues.values())
                idle_rounds = 0 if busy else idle_rounds + 1
                await asyncio.sleep(0.01)

    async def _consume(self, q: _Queue, subscription: Subscription, dispatcher: Dispatcher) -> None:
        while True:
            event, attempts = await q.items.get()
            if self._stopping:  # draining: leave it for the next consumer
                q.items.put_nowait((event, attempts))
                return
            q.in_flight += 1
            self._busy += 1
            self._idle.clear()
            try:
                await dispatcher.deliver(event)
            except asyncio.CancelledError:  # stopped unfinished: back to its queue, as the broker would redeliver it
                q.items.put_nowait((event, attempts))
                raise
            except PoisonMessage as exc:  # as the real adapter: dead-lettered at once
                log.error("event_malformed", queue=q.name, event_id=event.id, error=str(exc)[:500])
                self._dead_letter(q.name, event, exc)
                consumed(q.name, event, "dead_lettered", redelivered=attempts > 0)
            except Exception as exc:  # a failed attempt: reject, as the real adapter does
                redelivered = attempts > 0
                attempts += 1
                last = attempts >= self.delivery_limit
                consumed(q.name, event, "dead_lettered" if last else "rejected", redelivered=redelivered)
                if last:
                    log.error("event_dead_lettered", queue=q.name, event_id=event.id, error=repr(exc))
                    self._dead_letter(q.name, event, exc)
                else:
                    log.warning("event_rejected", queue=q.name, event_id=event.id, attempt=attempts, error=repr(exc))
                    q.items.put_nowait((event, attempts))
            else:
                skipped = subscription.handler_for(event.routing_key) is None
                consumed(q.name, event, "skipped" if skipped else "acked", redelivered=attempts > 0)
            finally:
                q.in_flight -= 1
                self._busy -= 1
                if not self._busy:
                    self._idle.set()

    def _dead_letter(self, queue: str, event: CloudEvent, error: Exception) -> None:
        self.dead_letters.append((queue, event))
        self.dead_letter_reasons[(queue, event.id)] = failure_reason(error)
