"""One contract, two adapters: the in-memory twin and the RabbitMQ adapter must behave alike."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
import asyncpg
import pytest
import structlog
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from shared.broker import Bus, BusError, InMemoryBus, Message, PublishError, Subscription
from shared.broker.amqp import AmqpBus
from shared.events import CloudEvent, ReportPublished, ScanRequested, Target, make_event
from tests.support.amqp_names import bus_names


@dataclass
class BusUnderTest:
    """A started bus and a way to read what it dead-lettered."""

    bus: Bus
    dead_letter_ids: Callable[[], Awaitable[list[str]]]
    prefix: str


def scan_event(host: str = "a.example") -> CloudEvent:
    """A small valid event."""
    return make_event(
        "scan.requested.v1", ScanRequested(target=Target(host=host), due_at=datetime.now(UTC)), source="test"
    )


@pytest.fixture(params=["memory", "rabbitmq"])
async def under_test(request: pytest.FixtureRequest, amqp_url: str) -> AsyncIterator[BusUnderTest]:
    """Each contract test runs once per adapter; RabbitMQ names are unique per test and deleted after."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    if request.param == "memory":
        memory = InMemoryBus(delivery_limit=3)
        await memory.start()

        async def memory_dead() -> list[str]:
            return [e.id for _, e in memory.dead_letters]

        yield BusUnderTest(memory, memory_dead, prefix)
        await memory.close()
        return
    names = bus_names(prefix)
    amqp = AmqpBus(amqp_url, delivery_limit=3, **names)
    await amqp.start()
    admin = await aio_pika.connect(amqp_url)
    channel = await admin.channel()

    async def amqp_dead() -> list[str]:
        queue = await channel.get_queue(names["dead_letter_queue"])
        ids = []
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            ids.append(message.message_id or "")
        return ids

    try:
        yield BusUnderTest(amqp, amqp_dead, prefix)
    finally:
        await amqp.close()
        for queue in (names["dead_letter_queue"], f"{prefix}.work", f"{prefix}.other"):
            await channel.queue_delete(queue)
        for exchange in (names["exchange"], names["dead_letter_exchange"]):
            await channel.exchange_delete(exchange)
        await admin.close()


def route(
    queue: str, keys: list[str], handler: Callable[[CloudEvent], Awaitable[None]], *, prefetch: int = 32
) -> Subscription:
    """A subscription whose handler sees only the envelope (what most contract tests look at)."""

    async def on_message(message: Message[Any]) -> None:
        await handler(message.event)

    return Subscription("test", queue, dict.fromkeys(keys, on_message), prefetch=prefetch)


async def _never(event: CloudEvent) -> None:
    pytest.fail("the placeholder consumer got a message")


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll until `predicate` holds or fail."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


class TestBusContract:
    """The behaviour every Bus adapter promises."""

    async def test_published_event_reaches_subscriber_unchanged(self, under_test: BusUnderTest) -> None:
        """A subscriber receives the published envelope with the same id, type and data."""
        got: list[CloudEvent] = []

        async def handler(event: CloudEvent) -> None:
            got.append(event)

        await under_test.bus.subscribe(route(f"{under_test.prefix}.work", ["scan.requested.v1"], handler))
        sent = scan_event()
        await under_test.bus.publish(sent)
        await wait_for(lambda: len(got) == 1)
        assert got[0].id == sent.id
        assert got[0].type == "io.certmon.scan.requested.v1"
        assert got[0].payload() == sent.payload()

    async def test_topic_routing_delivers_only_matching_keys(self, under_test: BusUnderTest) -> None:
        """A queue bound to `alarm.*.v1` gets alarm events but not scan requests."""
        alarms: list[str] = []
        scans: list[str] = []

        async def on_alarm(event: CloudEvent) -> None:
            alarms.append(event.routing_key)

        async def on_scan(event: CloudEvent) -> None:
            scans.append(event.routing_key)

        await under_test.bus.subscribe(route(f"{under_test.prefix}.work", ["alarm.*.v1"], on_alarm))
        await under_test.bus.subscribe(route(f"{under_test.prefix}.other", ["scan.#"], on_scan))
        await under_test.bus.publish(scan_event())
        await wait_for(lambda: len(scans) == 1)
        await asyncio.sleep(0.2)
        assert alarms == []

    async def test_competing_consumers_get_each_event_once(self, under_test: BusUnderTest) -> None:
        """Two consumers on one queue share the work: every event is handled exactly once."""
        seen: list[str] = []

        async def handler(event: CloudEvent) -> None:
            seen.append(event.id)

        queue = f"{under_test.prefix}.work"
        await under_test.bus.subscribe(route(queue, ["scan.requested.v1"], handler, prefetch=2))
        await under_test.bus.subscribe(route(queue, ["scan.requested.v1"], handler, prefetch=2))
        sent = [scan_event(f"h{i}.example") for i in range(20)]
        for event in sent:
            await under_test.bus.publish(event)
        await wait_for(lambda: len(seen) == 20)
        await asyncio.sleep(0.2)
        assert sorted(seen) == sorted(e.id for e in sent)

    async def test_failing_handler_is_retried_then_dead_lettered(self, under_test: BusUnderTest) -> None:
        """A handler that always fails sees the event `delivery_limit` times, then it is dead-lettered."""
        attempts: list[str] = []

        async def failing(event: CloudEvent) -> None:
            attempts.append(event.id)
            raise RuntimeError("boom")

        await under_test.bus.subscribe(route(f"{under_test.prefix}.work", ["scan.requested.v1"], failing, prefetch=1))
        sent = scan_event()
        await under_test.bus.publish(sent)
        dead: list[str] = []

        async def collect() -> None:
            while sent.id not in dead:
                dead.extend(await under_test.dead_letter_ids())
                await asyncio.sleep(0.05)

        async with asyncio.timeout(15):
            await collect()
        assert len(attempts) in (3, 4)  # RabbitMQ counts the limit as "more than N redeliveries"
        assert set(attempts) == {sent.id}

    async def test_handler_that_recovers_gets_a_redelivery(self, under_test: BusUnderTest) -> None:
        """A transient failure is retried and then succeeds, with nothing dead-lettered."""
        attempts: list[str] = []
        done: list[str] = []

        async def flaky(event: CloudEvent) -> None:
            attempts.append(event.id)
            if len(attempts) == 1:
                raise RuntimeError("transient")
            done.append(event.id)

        await under_test.bus.subscribe(route(f"{under_test.prefix}.work", ["scan.requested.v1"], flaky, prefetch=1))
        await under_test.bus.publish(scan_event())
        await wait_for(lambda: len(done) == 1)
        assert len(attempts) == 2
        assert await under_test.dead_letter_ids() == []

    async def test_dependency_away_is_retried_in_process_without_using_up_deliveries(
        self, under_test: BusUnderTest
    ) -> None:
        """A handler failing because the database or the broker is away (more times than the delivery limit) is
        called again with the message held, so the message is handled, not dead-lettered."""
        attempts: list[str] = []
        done: list[str] = []

        async def database_restarting(event: CloudEvent) -> None:
            attempts.append(event.id)
            if len(attempts) <= 4:  # the limit is 3
                raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")
            done.append(event.id)

        await under_test.bus.subscribe(
            route(f"{under_test.prefix}.work", ["scan.requested.v1"], database_restarting, prefetch=1)
        )
        await under_test.bus.publish(scan_event())
        await wait_for(lambda: len(done) == 1, timeout=20)
        assert len(attempts) == 5
        assert await under_test.dead_letter_ids() == []

    async def test_ping_answers_while_started_and_raises_once_closed(self, under_test: BusUnderTest) -> None:
        """`ping()` is the readiness check: quiet while connected, BusError after close."""
        await under_test.bus.ping()
        await under_test.bus.close()
        with pytest.raises(BusError):
            await under_test.bus.ping()

    async def test_handler_gets_the_validated_payload_with_the_log_context_bound(
        self, under_test: BusUnderTest
    ) -> None:
        """The bus validates the payload into its routing key's model and binds event id, routing key, service
        and target once, for every line the handler logs."""
        got: list[Message[ScanRequested]] = []
        logged: list[dict[str, Any]] = []

        async def handler(message: Message[ScanRequested]) -> None:
            with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
                structlog.get_logger().info("handled")
            logged.extend(logs)
            got.append(message)

        subscription = Subscription("scanner", f"{under_test.prefix}.work", {"scan.requested.v1": handler})
        await under_test.bus.subscribe(subscription)
        sent = scan_event("typed.example")
        await under_test.bus.publish(sent)
        await wait_for(lambda: len(got) == 1)
        assert isinstance(got[0].payload, ScanRequested)
        assert got[0].payload.target.host == "typed.example"
        assert {k: logged[0][k] for k in ("event_id", "routing_key", "service", "target")} == {
            "event_id": sent.id,
            "routing_key": "scan.requested.v1",
            "service": "scanner",
            "target": "typed.example:443",
        }

    async def test_deliveries_are_counted_by_how_they_were_settled(self, under_test: BusUnderTest) -> None:
        """`certmon_messages_consumed_total` counts a handled event as acked, each failed attempt but the last as
        rejected and the last as dead-lettered, and the redeliveries in `certmon_messages_redelivered_total`."""
        queue = f"{under_test.prefix}.work"
        key = "scan.requested.v1"
        fail: set[str] = set()
        attempts: list[str] = []

        async def handler(event: CloudEvent) -> None:
            attempts.append(event.id)
            if event.id in fail:
                raise RuntimeError("boom")

        def count(outcome: str) -> float:
            labels = {"queue": queue, "event_type": key, "outcome": outcome}
            return REGISTRY.get_sample_value("certmon_messages_consumed_total", labels) or 0.0

        await under_test.bus.subscribe(route(queue, [key], handler, prefetch=1))
        assert count("acked") == 0  # the series exist from the subscription on
        await under_test.bus.publish(scan_event())
        await wait_for(lambda: count("acked") == 1)
        failing = scan_event("fails.example")
        fail.add(failing.id)
        await under_test.bus.publish(failing)
        dead: list[str] = []
        async with asyncio.timeout(15):
            while failing.id not in dead:
                dead.extend(await under_test.dead_letter_ids())
                await asyncio.sleep(0.05)
        failed = attempts.count(failing.id)
        assert (count("rejected"), count("dead_lettered")) == (failed - 1, 1)
        redelivered = {"queue": queue, "event_type": key}
        assert REGISTRY.get_sample_value("certmon_messages_redelivered_total", redelivered) == failed - 1

    async def test_a_payload_that_does_not_validate_is_dead_lettered_at_once(self, under_test: BusUnderTest) -> None:
        """An event whose data is not its routing key's model never reaches the handler and is not retried."""
        handled: list[str] = []

        async def handler(event: CloudEvent) -> None:
            handled.append(event.id)

        await under_test.bus.subscribe(route(f"{under_test.prefix}.work", ["scan.requested.v1"], handler))
        bad = CloudEvent(source="test", type="io.certmon.scan.requested.v1", data={"target": "not a target"})
        await under_test.bus.publish(bad)
        dead: list[str] = []
        async with asyncio.timeout(10):
            while not dead:
                dead.extend(await under_test.dead_letter_ids())
                await asyncio.sleep(0.05)
        assert dead == [bad.id]
        assert handled == []

    async def test_a_batch_subscription_gets_its_backlog_in_batches_and_a_bad_message_fails_alone(
        self, under_test: BusUnderTest
    ) -> None:
        """Messages waiting together reach the batch handler together; when a batch fails, its messages are handled
        one by one, so the others are acknowledged once and only the failing one is retried, then dead-lettered."""
        batches: list[list[str]] = []
        alone: list[str] = []
        events = [scan_event(f"h{i}.example") for i in range(40)]
        poison = events[17].id

        async def one(message: Message[Any]) -> None:
            if message.event.id == poison:
                raise RuntimeError("cannot handle this one")
            alone.append(message.event.id)

        async def batch(messages: Any) -> None:
            ids = [m.event.id for m in messages]
            if poison in ids:
                raise RuntimeError("a message of the batch failed")
            batches.append(ids)

        queue = f"{under_test.prefix}.work"
        if isinstance(under_test.bus, InMemoryBus):
            under_test.bus.declare(queue, ["scan.requested.v1"])
        else:  # declare the queue, then stop consuming, so the backlog builds up before the batch consumer starts
            await under_test.bus.subscribe(route(queue, ["scan.requested.v1"], _never, prefetch=1))
            await under_test.bus.close()
            await under_test.bus.start()
        for event in events:
            await under_test.bus.publish(event)
        keys = {"scan.requested.v1": one}
        await under_test.bus.subscribe(
            Subscription("test", queue, keys, batch_handlers={"scan.requested.v1": batch}, batch_size=10, prefetch=20)
        )
        dead: list[str] = []
        async with asyncio.timeout(20):
            while not dead:
                dead.extend(await under_test.dead_letter_ids())
                await asyncio.sleep(0.05)
        handled = [i for b in batches for i in b] + alone
        assert sorted(handled) == sorted(e.id for e in events if e.id != poison)
        assert len(handled) == len(set(handled))  # each once
        assert max(len(b) for b in batches) > 1
        assert dead == [poison]

    async def test_stop_consuming_lets_the_handler_in_flight_finish_and_takes_no_more(
        self, under_test: BusUnderTest
    ) -> None:
        """While draining: the message being handled is finished and acknowledged, a message published meanwhile
        (publishing still works) is left in its queue, and nothing is handled after the stop."""
        started, release = asyncio.Event(), asyncio.Event()
        handled: list[str] = []

        async def handler(event: CloudEvent) -> None:
            started.set()
            await release.wait()
            handled.append(event.id)

        bus = under_test.bus
        await bus.subscribe(route(f"{under_test.prefix}.work", ["scan.requested.v1"], handler, prefetch=1))
        first, second = scan_event("first.example"), scan_event("second.example")
        await bus.publish(first)
        await started.wait()
        stopping = asyncio.create_task(bus.stop_consuming(within=10))
        await asyncio.sleep(0.2)
        await bus.publish(second)
        release.set()
        await stopping
        await asyncio.sleep(0.3)
        assert handled == [first.id]

    async def test_a_handler_past_the_drain_is_stopped_and_its_message_comes_back(
        self, under_test: BusUnderTest
    ) -> None:
        """A handler still running when the drain's time is up is cancelled without acknowledging: the message is
        delivered again to the next consumer."""
        seen: list[str] = []
        hang = True

        async def handler(event: CloudEvent) -> None:
            seen.append(event.id)
            if hang:
                await asyncio.sleep(60)

        bus, queue = under_test.bus, f"{under_test.prefix}.work"
        await bus.subscribe(route(queue, ["scan.requested.v1"], handler, prefetch=1))
        sent = scan_event()
        await bus.publish(sent)
        await wait_for(lambda: len(seen) == 1)
        async with asyncio.timeout(10):
            await bus.stop_consuming(within=0.2)
        hang = False
        await bus.close()
        await bus.start()
        await bus.subscribe(route(queue, ["scan.requested.v1"], handler, prefetch=1))
        await wait_for(lambda: len(seen) == 2)
        assert seen == [sent.id, sent.id]

    async def test_unroutable_publish_raises(self, under_test: BusUnderTest) -> None:
        """Publishing a routing key no queue is bound to is an error, not a silent loss."""
        with pytest.raises(PublishError):
            await under_test.bus.publish(scan_event())

    async def test_broadcast_without_subscribers_is_not_an_error(self, under_test: BusUnderTest) -> None:
        """An announcement for 'anyone' (report.published.v1) may have no subscriber at all."""
        now = datetime.now(UTC)
        report = ReportPublished(kind="daily", period_start=now, period_end=now, keys=["k"], location="/tmp")
        await under_test.bus.publish(make_event("report.published.v1", report, source="test"))


async def test_malformed_message_goes_straight_to_dead_letters(amqp_url: str) -> None:
    """A body that is not a CloudEvent is rejected without requeue and never reaches the handler."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    names = bus_names(prefix)
    bus = AmqpBus(amqp_url, **names)
    await bus.start()
    handled: list[CloudEvent] = []

    async def handler(event: CloudEvent) -> None:
        handled.append(event)

    admin = await aio_pika.connect(amqp_url)
    try:
        await bus.subscribe(route(f"{prefix}.work", ["scan.requested.v1"], handler))
        channel = await admin.channel()
        exchange = await channel.get_exchange(names["exchange"])
        await exchange.publish(aio_pika.Message(b"{not json", message_id="junk"), "scan.requested.v1")
        dlq = await channel.get_queue(names["dead_letter_queue"])
        message = None
        async with asyncio.timeout(10):
            while message is None:
                message = await dlq.get(fail=False, no_ack=True)
                await asyncio.sleep(0.05)
        assert message.message_id == "junk"
        assert handled == []
    finally:
        await bus.close()
        channel = await admin.channel()
        for queue in (f"{prefix}.work", names["dead_letter_queue"]):
            await channel.queue_delete(queue)
        for exchange_name in (names["exchange"], names["dead_letter_exchange"]):
            await channel.exchange_delete(exchange_name)
        await admin.close()
