"""The five services in this process on the real RabbitMQ (an exchange and queues of the test's own, deleted
afterwards) and PostgreSQL, as `certmon run` wires them."""

import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Sequence

import aio_pika

from services.composition import build_services
from shared.broker.amqp import AmqpBus
from shared.config import CertmonConfig
from shared.db import create_pool
from shared.lifecycle import start_all, stop_all
from shared.service import Service
from shared.settings import Settings

ALL = ("scanner", "evaluator", "alarmer", "notifier", "reporter")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a server whose URL must be known in advance)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def running_services(
    settings: Settings, config: CertmonConfig, *, amqp_url: str, database_url: str, names: Sequence[str] = ALL
) -> AsyncIterator[list[Service]]:
    """Start the named services on a bus of their own; stop them and delete what they declared on exit."""
    prefix = f"e2e{uuid.uuid4().hex[:8]}"
    bus = AmqpBus(
        amqp_url,
        exchange=f"{prefix}.events",
        dead_letter_exchange=f"{prefix}.dlx",
        dead_letter_queue=f"{prefix}.dead",
        queue_prefix=f"{prefix}.",
    )
    await bus.start()
    pool = await create_pool(database_url)
    services = build_services(list(names), settings, config, bus=bus, pool=pool)
    try:
        await start_all(services)
        yield services
    finally:
        await stop_all(services)
        await bus.close()
        await pool.close()
        connection = await aio_pika.connect(amqp_url)
        channel = await connection.channel()
        for queue in [*bus.declared_queues, f"{prefix}.dead"]:
            await channel.queue_delete(queue)
        for exchange in (f"{prefix}.events", f"{prefix}.dlx"):
            await channel.exchange_delete(exchange)
        await connection.close()
