"""A dead letter says why: the consumer publishes it to the dead-letter exchange itself, with the error, the queue,
the time and the attempts in its headers, and the queue it failed on keeps flowing."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from prometheus_client import REGISTRY

from shared.broker import Bus, InMemoryBus, Message, Subscription
from shared.broker.amqp import AmqpBus
from shared.broker.dead_letters import ATTEMPTS, FAILED_AT, QUEUE, REASON
from shared.events import CloudEvent, ScanRequested, Target, make_event
from tests.support.amqp_names import bus_names

LIMIT = 2
KEY = "scan.requested.v1"


@dataclass
class Letter:
    """A dead letter as both adapters can show it: the event, the queue it failed on and why."""

    event_id: str
    queue: str
    reason: str


@dataclass
class BusUnderTest:
    """A started bus, its queue name prefix, and a way to take what it dead-lettered."""

    bus: Bus
    prefix: str
    take_dead_letters: Callable[[], Awaitable[list[Letter]]]


def scan_event(host: str) -> CloudEvent:
    """A small valid event."""
    return make_event(KEY, ScanRequested(target=Target(host=host), due_at=datetime.now(UTC)), source="test")


@pytest.fixture(params=["memory", "rabbitmq"])
async def under_test(request: pytest.FixtureRequest, amqp_url: str) -> AsyncIterator[BusUnderTest]:
    """Each test runs on both adapters; RabbitMQ names are unique per test and deleted after."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    if request.param == "memory":
        memory = InMemoryBus(delivery_limit=LIMIT)
        await memory.start()
        taken = 0

        async def memory_dead() -> list[Letter]:
            nonlocal taken
            new = memory.dead_letters[taken:]
            taken = len(memory.dead_letters)
            return [Letter(e.id, q, memory.dead_letter_reasons[(q, e.id)]) for q, e in new]

        yield BusUnderTest(memory, prefix, memory_dead)
        await memory.close()
        return
    names = bus_names(prefix)
    amqp = AmqpBus(amqp_url, delivery_limit=LIMIT, **names)
    await amqp.start()
    admin = await aio_pika.connect(amqp_url)
    channel = await admin.channel()

    async def amqp_dead() -> list[Letter]:
        return [
            Letter(m.message_id or "", str(m.headers[QUEUE]), str(m.headers[REASON]))
            for m in await take(channel, names["dead_letter_queue"])
        ]

    try:
        yield BusUnderTest(amqp, prefix, amqp_dead)
    finally:
        await amqp.close()
        for queue in (names["dead_letter_queue"], f"{prefix}.work"):
            await channel.queue_delete(queue)
        for exchange in (names["exchange"], names["dead_letter_exchange"]):
            await channel.exchange_delete(exchange)
        await admin.close()


async def take(channel: aio_pika.abc.AbstractChannel, queue_name: str) -> list[AbstractIncomingMessage]:
    """Every message in a queue, taken off it."""
    queue = await channel.get_queue(queue_name)
    taken = []
    while (message := await queue.get(fail=False, no_ack=True)) is not None:
        taken.append(message)
    return taken


async def dead_letters(under_test: BusUnderTest, count: int) -> list[Letter]:
    """Wait for `count` dead letters and return them (and no more arrive meanwhile)."""
    letters: list[Letter] = []
    async with asyncio.timeout(15):
        while len(letters) < count:
            letters.extend(await under_test.take_dead_letters())
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    letters.extend(await under_test.take_dead_letters())
    return letters


def subscription(queue: str, handler: Callable[[CloudEvent], Awaitable[None]]) -> Subscription:
    """One handler for scan requests, one message at a time (so a stuck message would block the next)."""

    async def on_message(message: Message[Any]) -> None:
        await handler(message.event)

    return Subscription("test", queue, {KEY: on_message}, prefetch=1)


async def test_a_handler_that_keeps_failing_is_dead_lettered_with_its_error_and_queue(
    under_test: BusUnderTest,
) -> None:
    """After the delivery limit the event is dead-lettered once, its reason naming the error (URL password
    redacted) and the queue it failed on; the event published after it is handled."""
    queue = f"{under_test.prefix}.work"
    handled: list[str] = []
    attempts: list[str] = []
    poison = scan_event("poison.example")

    async def handler(event: CloudEvent) -> None:
        if event.id == poison.id:
            attempts.append(event.id)
            raise RuntimeError("cannot reach amqp://certmon:hunter2@db.internal/")
        handled.append(event.id)

    await under_test.bus.subscribe(subscription(queue, handler))
    good = scan_event("good.example")
    await under_test.bus.publish(poison)
    await under_test.bus.publish(good)
    letters = await dead_letters(under_test, 1)
    assert [(letter.event_id, letter.queue) for letter in letters] == [(poison.id, queue)]
    assert letters[0].reason.startswith("RuntimeError: cannot reach amqp://certmon:")
    assert "hunter2" not in letters[0].reason
    assert handled == [good.id]
    assert len(attempts) in (LIMIT, LIMIT + 1)  # RabbitMQ allows `limit` redeliveries after the first


async def test_a_payload_that_does_not_validate_is_dead_lettered_at_once_with_the_reason(
    under_test: BusUnderTest,
) -> None:
    """A payload that is not its routing key's model is dead-lettered on its first delivery, as a PoisonMessage
    naming the field, and the queue goes on to the next event."""
    queue = f"{under_test.prefix}.work"
    handled: list[str] = []

    async def handler(event: CloudEvent) -> None:
        handled.append(event.id)

    await under_test.bus.subscribe(subscription(queue, handler))
    bad = CloudEvent(source="test", type="io.certmon.scan.requested.v1", data={"target": "not a target"})
    good = scan_event("good.example")
    await under_test.bus.publish(bad)
    await under_test.bus.publish(good)
    letters = await dead_letters(under_test, 1)
    assert [(letter.event_id, letter.queue) for letter in letters] == [(bad.id, queue)]
    assert letters[0].reason.startswith("PoisonMessage:")
    assert "target" in letters[0].reason
    async with asyncio.timeout(10):
        while handled != [good.id]:
            await asyncio.sleep(0.02)


@pytest.fixture
async def amqp_bus(amqp_url: str) -> AsyncIterator[tuple[AmqpBus, dict[str, str], aio_pika.abc.AbstractChannel]]:
    """A started RabbitMQ bus with names unique to the test, an admin channel, and everything deleted after."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    names = {**bus_names(prefix), "work": f"{prefix}.work"}
    bus = AmqpBus(amqp_url, delivery_limit=LIMIT, **bus_names(prefix))
    await bus.start()
    admin = await aio_pika.connect(amqp_url)
    channel = await admin.channel()
    try:
        yield bus, names, channel
    finally:
        await bus.close()
        for queue in (names["work"], names["dead_letter_queue"]):
            await channel.queue_delete(queue)
        for exchange in (names["exchange"], names["dead_letter_exchange"]):
            await channel.exchange_delete(exchange)
        await admin.close()


async def test_on_rabbitmq_the_dead_letter_keeps_body_properties_and_routing_key_and_says_when_and_how_often(
    amqp_bus: tuple[AmqpBus, dict[str, str], aio_pika.abc.AbstractChannel],
) -> None:
    """The dead letter is the published message (same body, id, type, routing key) with `x-certmon-failed-at` (ISO,
    now) and `x-certmon-attempts` (every delivery it had), one copy only (the broker did not dead-letter it too),
    counted once as `dead_lettered`."""
    bus, names, channel = amqp_bus
    attempts: list[str] = []

    async def failing(event: CloudEvent) -> None:
        attempts.append(event.id)
        raise RuntimeError("boom")

    def dead_lettered() -> float:
        labels = {"queue": names["work"], "event_type": KEY, "outcome": "dead_lettered"}
        return REGISTRY.get_sample_value("certmon_messages_consumed_total", labels) or 0.0

    await bus.subscribe(subscription(names["work"], failing))
    sent = scan_event("fails.example")
    await bus.publish(sent)
    letters: list[AbstractIncomingMessage] = []
    async with asyncio.timeout(15):
        while not letters:
            letters = await take(channel, names["dead_letter_queue"])
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    letters += await take(channel, names["dead_letter_queue"])
    assert len(letters) == 1
    letter = letters[0]
    assert CloudEvent.model_validate_json(letter.body) == sent
    assert (letter.message_id, letter.type, letter.routing_key) == (sent.id, sent.type, KEY)
    assert letter.headers[REASON] == "RuntimeError: boom"
    assert letter.headers[QUEUE] == names["work"]
    assert letter.headers[ATTEMPTS] == len(attempts)
    failed_at = datetime.fromisoformat(str(letter.headers[FAILED_AT]))
    assert abs(datetime.now(UTC) - failed_at) < timedelta(seconds=30)
    assert "x-death" not in letter.headers
    assert dead_lettered() == 1


async def test_on_rabbitmq_a_body_that_is_no_cloudevent_is_dead_lettered_at_once_with_the_reason(
    amqp_bus: tuple[AmqpBus, dict[str, str], aio_pika.abc.AbstractChannel],
) -> None:
    """A body that is not a CloudEvent is dead-lettered on its first delivery with the validation error, its bytes
    and id unchanged, and the event after it is handled."""
    bus, names, channel = amqp_bus
    handled: list[str] = []

    async def handler(event: CloudEvent) -> None:
        handled.append(event.id)

    await bus.subscribe(subscription(names["work"], handler))
    exchange = await channel.get_exchange(names["exchange"])
    await exchange.publish(aio_pika.Message(b"{not json", message_id="junk"), KEY)
    good = scan_event("good.example")
    await bus.publish(good)
    letters: list[AbstractIncomingMessage] = []
    async with asyncio.timeout(10):
        while not letters:
            letters = await take(channel, names["dead_letter_queue"])
            await asyncio.sleep(0.05)
    assert [(m.message_id, m.body) for m in letters] == [("junk", b"{not json")]
    assert str(letters[0].headers[REASON]).startswith("ValidationError:")
    assert (letters[0].headers[QUEUE], letters[0].headers[ATTEMPTS]) == (names["work"], 1)
    async with asyncio.timeout(10):
        while handled != [good.id]:
            await asyncio.sleep(0.02)
