"""Backpressure on the real RabbitMQ: a full work queue refuses publishes (a nack), loses nothing, and the
publisher keeps what was refused (outbox rows, an unacknowledged message) until the queue has room again."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
import asyncpg
import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from shared.broker import Message, PublishError, QueueFull, Subscription
from shared.broker.amqp import AmqpBus
from shared.db import migrate
from shared.events import CloudEvent, Observation, ScanRequested, Target, make_event
from shared.outbox import IN_FLIGHT, OutboxRelay, enqueue_many
from tests.support.amqp_names import bus_names

LIMIT = 5


def scan_event(host: str = "a.example") -> CloudEvent:
    """A small valid event."""
    return make_event(
        "scan.requested.v1", ScanRequested(target=Target(host=host), due_at=datetime.now(UTC)), source="test"
    )


@dataclass
class Held:
    """A consumer that takes one message at a time (prefetch 1) and holds it until `release` is set."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    handled: list[str] = field(default_factory=list)

    async def __call__(self, message: Message[Any]) -> None:
        await self.release.wait()
        self.handled.append(message.event.id)

    def route(self, queue: str, key: str = "scan.requested.v1") -> Subscription:
        """Its subscription to `queue`."""
        return Subscription("test", queue, {key: self}, prefetch=1)


@dataclass
class Broker:
    """A bus with a small queue length limit on exchanges and queues of its own, and an admin channel."""

    bus: AmqpBus
    prefix: str
    channel: aio_pika.abc.AbstractChannel
    url: str

    def queue(self, purpose: str) -> str:
        """A queue name of this test (deleted afterwards)."""
        return f"{self.prefix}.{purpose}"

    async def ready(self, queue: str) -> int:
        """Ready messages in `queue`, as the broker counts them now."""
        declared = await self.channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[Broker]:
    """A started AmqpBus with a length limit of 5, polling queue depths every 0.1 s; its names are deleted after."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    names = bus_names(prefix)
    bus = AmqpBus(amqp_url, queue_max_length=LIMIT, queue_depth_interval=0.1, **names)
    await bus.start()
    admin = await aio_pika.connect(amqp_url)
    channel = await admin.channel()
    try:
        yield Broker(bus, prefix, channel, amqp_url)
    finally:
        await bus.close()
        channel = await admin.channel()
        for queue in (names["dead_letter_queue"], f"{prefix}.work", f"{prefix}.other", f"{prefix}.old"):
            await channel.queue_delete(queue)
        for exchange in (names["exchange"], names["dead_letter_exchange"]):
            await channel.exchange_delete(exchange)
        await admin.close()


async def fill(bus: AmqpBus, *, at_most: int = 50) -> tuple[list[str], PublishError]:
    """Publish until the broker refuses; the ids it confirmed, and the refusal."""
    confirmed = []
    for i in range(at_most):
        event = scan_event(f"h{i}.example")
        try:
            await bus.publish(event)
        except PublishError as exc:
            return confirmed, exc
        confirmed.append(event.id)
    raise AssertionError(f"{at_most} publishes confirmed: the queue has no length limit")


async def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll until `predicate` holds or fail."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_a_full_queue_nacks_the_publish_and_keeps_every_confirmed_message(broker: Broker) -> None:
    """Past its limit a queue refuses a publish with a nack (PublishError saying so); every confirmed message is
    delivered once the consumer catches up, and the queue takes publishes again."""
    held = Held()
    await broker.bus.subscribe(held.route(broker.queue("work")))
    confirmed, refusal = await fill(broker.bus)
    assert "full" in str(refusal)
    # One message is with the consumer (unacknowledged ones do not count); the quorum queue takes one past its limit.
    assert await broker.ready(broker.queue("work")) == len(confirmed) - 1 == LIMIT + 1
    held.release.set()
    await wait_for(lambda: len(held.handled) == len(confirmed))
    assert held.handled == confirmed
    await broker.bus.publish(scan_event("after.example"))
    await wait_for(lambda: len(held.handled) == len(confirmed) + 1)


async def _outbox_of(pool: asyncpg.Pool, count: int) -> list[CloudEvent]:
    """`count` scan requests committed to a fresh `svc` outbox, in order."""
    await migrate(pool, "svc", [])
    sent = [scan_event(f"h{i}.example") for i in range(count)]
    async with pool.acquire() as conn, conn.transaction():
        await enqueue_many(conn, "svc", sent)
    return sent


async def _unpublished(pool: asyncpg.Pool) -> set[str]:
    return {r["event_id"] for r in await pool.fetch("SELECT event_id FROM svc.outbox WHERE published_at IS NULL")}


async def test_the_outbox_keeps_refused_rows_until_the_queue_has_room(broker: Broker, pg_pool: asyncpg.Pool) -> None:
    """The relay marks exactly the rows the broker confirmed and keeps the refused ones unpublished in PostgreSQL
    (the backlog gauge says how many), raising QueueFull; once the consumer drains the queue they all go out,
    none twice. (With publishes in flight together, the queue takes up to a window of them past its limit before
    it refuses.)"""
    held = Held()
    await broker.bus.subscribe(held.route(broker.queue("work")))
    sent = await _outbox_of(pg_pool, 4 * IN_FLIGHT)
    relay = OutboxRelay(pg_pool, "svc", broker.bus)
    with pytest.raises(QueueFull, match="full"):
        await relay.flush()
    pending = await _unpublished(pg_pool)
    queued = await broker.ready(broker.queue("work")) + 1  # one is with the consumer
    assert LIMIT < queued == len(sent) - len(pending)
    assert REGISTRY.get_sample_value("certmon_outbox_backlog", {"schema": "svc"}) == len(pending)
    held.release.set()
    async with asyncio.timeout(20):
        while await _unpublished(pg_pool):
            try:
                await relay.flush()
            except PublishError:  # the queue takes publishes again once it drained below 80% of its limit
                await asyncio.sleep(0.1)
    await wait_for(lambda: len(held.handled) == len(sent))
    assert sorted(held.handled) == sorted(e.id for e in sent)


async def test_the_relay_backs_off_longer_and_longer_while_a_queue_is_full(
    broker: Broker, pg_pool: asyncpg.Pool
) -> None:
    """While the broker refuses its rows for a full queue, the relay waits longer after each refused flush, past
    its poll interval, instead of re-publishing (and duplicating into other queues) every interval."""
    held = Held()
    await broker.bus.subscribe(held.route(broker.queue("work")))
    await _outbox_of(pg_pool, 4 * IN_FLIGHT)
    relay = OutboxRelay(pg_pool, "svc", broker.bus, poll_seconds=0.05)
    with capture_logs() as logs:
        await relay.start()

        def refused() -> list[float]:
            return [
                e["retry_in_seconds"]
                for e in logs
                if e["event"] == "background_loop_failed"
                and e["loop"] == "outbox:svc"
                and e["error_type"] == "QueueFull"
            ]

        await wait_for(lambda: len(refused()) >= 4, timeout=8)
        await relay.stop()
    held.release.set()
    # Exponential with jitter from half a second: each wait is at least half its step, which doubles each time.
    delays = refused()[:4]
    assert [d >= floor for d, floor in zip(delays, (0.25, 0.5, 1.0, 2.0), strict=True)] == [True] * 4
    assert delays[3] > 4 * max(delays[0], 0.05)


async def test_a_handler_publishing_into_a_full_queue_waits_holding_its_message(broker: Broker) -> None:
    """A handler whose publish is refused is retried in process (the evaluator's path): its message stays
    unacknowledged, not redelivered nor dead-lettered, and is handled once the downstream queue has room."""
    downstream = Held()
    await broker.bus.subscribe(downstream.route(broker.queue("other"), "certificate.observed.v1"))
    for i in range(LIMIT + 2):  # one with the consumer, the queue one past its limit
        await broker.bus.publish(make_event("certificate.observed.v1", _observation(i), source="test"))
    forwarded: list[str] = []

    async def forward(message: Message[Any]) -> None:
        await broker.bus.publish(make_event("certificate.observed.v1", _observation(99), source="test"))
        forwarded.append(message.event.id)

    await broker.bus.subscribe(Subscription("test", broker.queue("work"), {"scan.requested.v1": forward}, prefetch=1))
    retries = {"queue": broker.queue("work"), "error": "QueueFull"}
    before = REGISTRY.get_sample_value("certmon_handler_retries_total", retries) or 0.0
    upstream = scan_event()
    await broker.bus.publish(upstream)
    await wait_for(lambda: (REGISTRY.get_sample_value("certmon_handler_retries_total", retries) or 0.0) > before)
    assert forwarded == [] and await broker.ready(broker.queue("work")) == 0  # held by its consumer
    downstream.release.set()
    await wait_for(lambda: forwarded == [upstream.id])
    assert await broker.ready(f"{broker.prefix}.dlq") == 0


def _observation(i: int) -> Observation:
    """A minimal observation payload (what the evaluator consumes)."""
    return Observation(target=Target(host=f"o{i}.example"), observed_at=datetime.now(UTC))


async def test_a_queue_declared_without_the_limit_is_consumed_with_a_warning(broker: Broker) -> None:
    """A queue an older version declared without a length limit cannot take the new arguments (RabbitMQ refuses
    with PRECONDITION_FAILED): the subscriber consumes it as it is and warns once, naming the policy that fixes it."""
    queue = broker.queue("old")
    old = {"x-queue-type": "quorum", "x-delivery-limit": 5, "x-dead-letter-exchange": f"{broker.prefix}.dlx"}
    await broker.channel.declare_queue(queue, durable=True, arguments=old)
    held = Held()
    held.release.set()
    with capture_logs() as logs:
        await broker.bus.subscribe(held.route(queue))
    (warning,) = [line for line in logs if line["event"] == "queue_arguments_differ"]
    assert warning["queue"] == queue and warning["log_level"] == "warning"
    assert '"max-length":5,"overflow":"reject-publish"' in warning["fix"]
    event = scan_event()
    await broker.bus.publish(event)
    await wait_for(lambda: held.handled == [event.id])


async def test_queue_depths_and_limits_are_exported(broker: Broker) -> None:
    """`certmon_queue_messages` follows the ready messages of each consumed queue and of the dead-letter queue;
    `certmon_queue_max_length` is the limit declared on each consumed queue."""
    held = Held()
    queue = broker.queue("work")
    await broker.bus.subscribe(held.route(queue))
    for i in range(4):
        await broker.bus.publish(scan_event(f"h{i}.example"))

    def depth(name: str) -> float | None:
        return REGISTRY.get_sample_value("certmon_queue_messages", {"queue": name})

    await wait_for(lambda: depth(queue) == 3)  # the fourth is with the consumer
    assert depth(f"{broker.prefix}.dlq") == 0
    assert REGISTRY.get_sample_value("certmon_queue_max_length", {"queue": queue}) == LIMIT
    held.release.set()
    await wait_for(lambda: depth(queue) == 0)
