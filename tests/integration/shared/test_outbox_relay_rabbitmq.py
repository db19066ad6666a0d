"""The outbox relay on the real RabbitMQ and PostgreSQL: a batch whose publishes are in flight together still
lands in the queue in commit order."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import aio_pika
import asyncpg
import pytest
from prometheus_client import REGISTRY

from shared.broker.amqp import AmqpBus
from shared.db import migrate
from shared.events import CloudEvent, ScanRequested, Target, make_event
from shared.outbox import BATCH, OutboxRelay, enqueue_many
from tests.support.amqp_names import bus_names


@dataclass
class Wire:
    """A started bus on exchanges of its own, and a queue bound to scan requests that nobody consumes."""

    bus: AmqpBus
    queue: aio_pika.abc.AbstractQueue

    async def drain(self) -> list[str]:
        """The ids of the messages in the queue, in the queue's order (it is emptied)."""
        ids = []
        while (message := await self.queue.get(fail=False, no_ack=True)) is not None:
            ids.append(message.message_id or "")
        return ids


@pytest.fixture
async def wire(amqp_url: str) -> AsyncIterator[Wire]:
    """A bus and a bound queue with names unique to the test, deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    names = bus_names(prefix)
    bus = AmqpBus(amqp_url, **names)
    await bus.start()
    admin = await aio_pika.connect(amqp_url)
    channel = await admin.channel()
    queue = await channel.declare_queue(f"{prefix}.work", durable=True)
    await queue.bind(names["exchange"], "scan.requested.v1")
    try:
        yield Wire(bus, queue)
    finally:
        await bus.close()
        for name in (f"{prefix}.work", names["dead_letter_queue"]):
            await channel.queue_delete(name)
        for exchange in (names["exchange"], names["dead_letter_exchange"]):
            await channel.exchange_delete(exchange)
        await admin.close()


def scan_event(host: str) -> CloudEvent:
    """A small valid event."""
    return make_event(
        "scan.requested.v1", ScanRequested(target=Target(host=host), due_at=datetime.now(UTC)), source="test"
    )


async def test_batches_published_concurrently_land_in_commit_order(wire: Wire, pg_pool: asyncpg.Pool) -> None:
    """Rows committed in several transactions, more than two batches of them, reach the queue in commit order,
    each once, and the backlog gauge ends at zero."""
    await migrate(pg_pool, "svc", [])
    sent = [scan_event(f"h{i}.example") for i in range(2 * BATCH + 37)]
    async with pg_pool.acquire() as conn:
        for start in range(0, len(sent), 100):  # a transaction per hundred events, as handlers commit them
            async with conn.transaction():
                await enqueue_many(conn, "svc", sent[start : start + 100])
    assert await OutboxRelay(pg_pool, "svc", wire.bus).flush() == len(sent)
    assert await wire.drain() == [e.id for e in sent]
    assert await pg_pool.fetchval("SELECT count(*) FROM svc.outbox WHERE published_at IS NULL") == 0
    assert REGISTRY.get_sample_value("certmon_outbox_backlog", {"schema": "svc"}) == 0
