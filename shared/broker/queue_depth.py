"""How full certmon's queues are, as RabbitMQ reports them: `certmon_queue_messages{queue}` and
`certmon_queue_max_length{queue}`, so an alert fires before a queue reaches its length limit and refuses publishes.

The `AmqpBus` polls the queues it consumes, and the dead-letter queue, with a passive `queue.declare` on a channel
of its own. The broker answers with the queue's ready messages: exactly what the length limit counts (messages
delivered and not yet acknowledged do not count, and the consumers' prefetch bounds them). It needs nothing beyond
the AMQP connection (no management plugin, port or credentials) and costs one round trip per queue per poll.
Every replica of a consumer reports the same queue, so alerts aggregate with `max by (queue)`.
"""

import asyncio
import contextlib
from collections.abc import Callable, Iterable

import aiormq
import structlog
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from prometheus_client import Gauge

from shared.periodic import PeriodicTask

log = structlog.get_logger(__name__)

QUEUE_MESSAGES = Gauge(
    "certmon_queue_messages",
    "Ready messages in a queue (what its length limit counts), as the last poll saw them.",
    ["queue"],
)
QUEUE_MAX_LENGTH = Gauge(
    "certmon_queue_max_length",
    "The length limit certmon declares on a queue it consumes (CERTMON_QUEUE_MAX_LENGTH).",
    ["queue"],
)

#: Often enough for an alert that waits minutes, rarely enough to cost the broker nothing.
POLL_SECONDS = 15.0


class QueueDepthPoller:
    """Sets `certmon_queue_messages` for each queue `queues()` names, every `interval` seconds, in the background."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        queues: Callable[[], Iterable[str]],
        *,
        interval: float = POLL_SECONDS,
    ) -> None:
        self._connection, self._queues, self._interval = connection, queues, interval
        self._channel: AbstractRobustChannel | None = None
        self._loop = PeriodicTask("queue-depth", self.poll, interval=interval)

    async def start(self) -> None:
        """Start polling."""
        await self._loop.start()

    async def stop(self) -> None:
        """Stop polling and close the poller's channel."""
        await self._loop.stop()
        await self._drop_channel()

    async def poll(self) -> None:
        """Read each queue's ready messages once. A queue deleted behind certmon's back loses its series (a stale
        figure would hide that it is gone); any other failure ends the poll (the loop retries with backoff)."""
        async with asyncio.timeout(self._interval):  # a reconnecting connection must not stall the loop
            for name in dict.fromkeys(self._queues()):
                channel = await self._open_channel()
                try:
                    queue = await channel.declare_queue(name, passive=True, robust=False)
                except aiormq.exceptions.ChannelNotFoundEntity:
                    log.warning("queue_missing", queue=name)
                    with contextlib.suppress(KeyError):  # never polled before
                        QUEUE_MESSAGES.remove(name)
                    await self._drop_channel()  # the broker closed it with the 404
                    continue
                except Exception:
                    await self._drop_channel()
                    raise
                count = queue.declaration_result.message_count
                QUEUE_MESSAGES.labels(name).set(count if count is not None else 0)

    async def _open_channel(self) -> AbstractRobustChannel:
        if self._channel is None or self._channel.is_closed:
            self._channel = await self._connection.channel(publisher_confirms=False)
        return self._channel

    async def _drop_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            with contextlib.suppress(Exception):  # closed by the broker already, or the connection is gone
                await channel.close()
