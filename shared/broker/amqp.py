"""The RabbitMQ adapter on aio-pika.

Reliability as the design asks: a robust (self-reconnecting) connection; a publisher channel with confirms
and `mandatory` publishes whose returns raise; durable quorum queues with a delivery limit and the dead-letter
exchange; manual acks after the handler returned; a failed attempt is rejected with requeue so the quorum
queue's delivery count advances.

Dead letters say why (`shared.broker.dead_letters`): at the last attempt the delivery limit allows, and at once for
a message that is not a valid CloudEvent or whose payload does not validate (retrying cannot fix it), the consumer
publishes the message to the dead-letter exchange itself, with the reason, the queue, the time and the attempts in
its headers, waits for the confirm and only then acks it. If that publish fails, the message is rejected as it
would be without it (requeued at the last attempt, so the broker dead-letters it past the limit; not requeued when
malformed) and dead-lettered by the broker with its `x-death` headers only: it is never lost.

Backpressure: each work queue holds at most `queue_max_length` ready messages and then refuses publishes
(`x-overflow: reject-publish`): the publisher gets a nack, raised as PublishError, and keeps the event (an outbox
row, an unacknowledged message) until the queue has room, so a slow consumer costs queue space, never a lost
event or an upstream process's memory. RabbitMQ's quorum queues refuse once over the limit until the queue has
drained below 80% of it; publishes already in flight when it fills (an outbox relay keeps up to 100) may still
land, so a queue can overshoot its limit by about that many. The dead-letter queue has no limit: a dead letter
refused there would be lost.
"""

import asyncio
import contextlib
from collections.abc import Awaitable
from datetime import UTC, datetime

import aio_pika
import aiormq
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from pydantic import ValidationError

from shared.broker.bus import (
    DEAD_LETTER_EXCHANGE,
    DEFAULT_DELIVERY_LIMIT,
    EXCHANGE,
    BusError,
    PublishError,
    QueueFull,
    Subscription,
)
from shared.broker.dead_letters import DEAD_LETTER_QUEUE as DEAD_LETTER_QUEUE  # its name here before it moved
from shared.broker.dead_letters import DEAD_LETTER_QUEUE_ARGUMENTS, dead_letter_message
from shared.broker.dispatch import Dispatcher, PoisonMessage
from shared.broker.metrics import consumed, subscribed
from shared.broker.queue_depth import POLL_SECONDS, QUEUE_MAX_LENGTH, QueueDepthPoller
from shared.events import BROADCAST_KEYS, CloudEvent
from shared.logging import redact_text

log = structlog.get_logger(__name__)

CONTENT_TYPE = "application/cloudevents+json"
#: Ten rounds of a 100,000-target estate (the scan requests of one round and their observations wait in a queue).
DEFAULT_QUEUE_MAX_LENGTH = 1_000_000
#: What to run for a queue that existed before it had a length limit (RabbitMQ keeps a queue's arguments for life).
LIMIT_POLICY = (
    "rabbitmqctl set_policy --apply-to queues certmon-queue-limits '^certmon\\.[a-z]+\\.' "
    """'{"max-length":%d,"overflow":"reject-publish"}'"""
)


class AmqpBus:
    """A `Bus` on RabbitMQ. Exchange names and a queue-name prefix can be set to share one broker (tests)."""

    def __init__(
        self,
        url: str,
        *,
        exchange: str = EXCHANGE,
        dead_letter_exchange: str = DEAD_LETTER_EXCHANGE,
        dead_letter_queue: str = DEAD_LETTER_QUEUE,
        delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
        publish_timeout: float = 30.0,
        queue_prefix: str = "",
        queue_max_length: int = DEFAULT_QUEUE_MAX_LENGTH,
        queue_depth_interval: float = POLL_SECONDS,
    ) -> None:
        self._url = url
        self._exchange_name = exchange
        self._dlx_name = dead_letter_exchange
        self._dlq_name = dead_letter_queue
        self.delivery_limit = delivery_limit
        self._publish_timeout = publish_timeout
        self._queue_prefix = queue_prefix
        self.queue_max_length = queue_max_length
        self._queue_depth_interval = queue_depth_interval
        self._depth: QueueDepthPoller | None = None
        self.declared_queues: list[str] = []
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._dlx: AbstractExchange | None = None
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()

    async def start(self) -> None:
        """Connect and declare the events exchange, the dead-letter exchange and its queue.

        Raises BusError (and leaves nothing open) when the broker cannot be reached; once started, the connection
        reconnects by itself and restores the channels and consumers after a broker restart.
        """
        self._closing.clear()
        try:
            self._connection = await aio_pika.connect_robust(self._url, reconnect_interval=2)
            self._publisher = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
            self._exchange = await self._publisher.declare_exchange(
                self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
            self._dlx = await self._publisher.declare_exchange(
                self._dlx_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
            dlq = await self._publisher.declare_queue(
                self._dlq_name, durable=True, arguments=DEAD_LETTER_QUEUE_ARGUMENTS
            )
            await dlq.bind(self._dlx, "#")
            self._depth = QueueDepthPoller(
                self._connection,
                lambda: [*self.declared_queues, self._dlq_name],
                interval=self._queue_depth_interval,
            )
            await self._depth.start()
        except (OSError, TimeoutError, RuntimeError, aiormq.exceptions.AMQPError) as exc:
            await self.close()
            raise BusError(f"cannot connect to RabbitMQ at {redact_text(self._url)}: {exc!r}") from exc

    async def ping(self) -> None:
        """Raise BusError unless the connection to the broker is up now (a readiness check; never blocks)."""
        if self._connection is None or self._connection.is_closed or not self._connection.connected.is_set():
            raise BusError("not connected to RabbitMQ")

    async def stop_consuming(self, within: float | None) -> None:
        """Cancel the consumers, wait up to `within` seconds for the handlers in flight (so their acks go out), then
        cancel the rest: their messages are never acknowledged, and the broker redelivers them. In-process retries
        end at once from here on (the message goes back instead). The publisher channel stays open."""
        self._closing.set()
        for queue, tag in self._consumers:
            with contextlib.suppress(Exception):  # the channel may already be gone; stopping anyway
                await queue.cancel(tag)
        self._consumers.clear()
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=within)
        late = set(self._in_flight)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=5)
            log.warning("handlers_stopped_unfinished", count=len(late))

    async def close(self) -> None:
        """Stop consuming (handlers in flight get up to 30 s), then disconnect."""
        await self.stop_consuming(within=30)
        if self._depth is not None:
            await self._depth.stop()
            self._depth = None
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def publish(self, event: CloudEvent) -> None:
        """Publish persistently and wait for the broker's confirm; unroutable or nacked raises PublishError.

        Broadcast events (`BROADCAST_KEYS`) are published without `mandatory`: no subscriber is not an error.
        """
        if self._exchange is None:
            raise PublishError("bus not started")
        message = aio_pika.Message(
            body=event.model_dump_json().encode(),
            content_type=CONTENT_TYPE,
            message_id=event.id,
            type=event.type,
            timestamp=event.time,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            confirmation = await self._exchange.publish(
                message,
                event.routing_key,
                mandatory=event.routing_key not in BROADCAST_KEYS,
                timeout=self._publish_timeout,
            )
        except aio_pika.exceptions.DeliveryError as exc:
            if isinstance(exc.frame, aiormq.spec.Basic.Nack):  # on_return_raises raises nacks too
                raise QueueFull(
                    f"{event.routing_key} {event.id} refused by the broker (nack): a queue it routes to is full"
                ) from exc
            raise PublishError(f"{event.routing_key} {event.id} returned by the broker: unroutable") from exc
        except Exception as exc:  # whatever the client raises (a channel closed while reconnecting is a RuntimeError)
            raise PublishError(f"{event.routing_key} {event.id} not confirmed: {exc!r}") from exc
        if not isinstance(confirmation, aiormq.spec.Basic.Ack):
            raise PublishError(f"{event.routing_key} {event.id} not confirmed: {confirmation!r}")

    async def subscribe(self, subscription: Subscription) -> None:
        """Declare a quorum queue with the delivery limit and dead-lettering, bind it, and consume."""
        connection = self._connection
        if connection is None or self._exchange is None:
            raise BusError("bus not started")
        queue = self._queue_prefix + subscription.queue
        dispatcher = Dispatcher(subscription, queue=queue, closing=self._closing)

        async def on_message(message: AbstractIncomingMessage) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._in_flight.add(task)
            try:
                await self._deliver(queue, message, subscription, dispatcher)
            finally:
                if task is not None:
                    self._in_flight.discard(task)

        try:
            declared = await self._declare(connection, queue, subscription.prefetch)
            for key in subscription.routing_keys:
                await declared.bind(self._exchange_name, key)
            tag = await declared.consume(on_message, no_ack=False)
        except Exception as exc:  # the broker went away since start(): the caller's start fails and is retried
            raise BusError(f"cannot subscribe {queue}: {exc!r}") from exc
        self.declared_queues.append(queue)
        self._consumers.append((declared, tag))
        QUEUE_MAX_LENGTH.labels(queue).set(self.queue_max_length)
        subscribed(queue, subscription.routing_keys)

    async def _declare(self, connection: AbstractRobustConnection, queue: str, prefetch: int) -> AbstractQueue:
        """Declare a work queue, on a channel of its own, with the delivery limit, dead-lettering and length limit.

        RabbitMQ refuses to change the arguments of a queue that exists (PRECONDITION_FAILED): one declared by a
        version without the length limit, or with another limit, is consumed as it is, with a warning saying how
        to give it the limit by a policy, rather than failing to start.
        """
        channel = await connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=prefetch)
        arguments = {
            "x-queue-type": "quorum",
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": self._dlx_name,
            "x-max-length": self.queue_max_length,
            # A full queue nacks the publish, so the publisher keeps the event; drop-head would discard the oldest.
            "x-overflow": "reject-publish",
        }
        try:
            return await channel.declare_queue(queue, durable=True, arguments=arguments)
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            log.warning(
                "queue_arguments_differ",
                queue=queue,
                error=str(exc)[:300],
                max_length=self.queue_max_length,
                fix=LIMIT_POLICY % self.queue_max_length,
            )
        with contextlib.suppress(Exception):  # the broker closed it with the 406; keep it from reopening
            await channel.close()
        channel = await connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=prefetch)
        return await channel.declare_queue(queue, passive=True)

    async def _deliver(
        self, queue: str, message: AbstractIncomingMessage, subscription: Subscription, dispatcher: Dispatcher
    ) -> None:
        redelivered = bool(message.redelivered)
        try:
            event = CloudEvent.model_validate_json(message.body)
        except ValidationError as exc:
            log.error("event_malformed", queue=queue, message_id=message.message_id, error=str(exc)[:500])
            await self._dead_letter(queue, message, None, exc, last_attempt=False)
            return
        try:
            await dispatcher.deliver(event)
        except PoisonMessage as exc:  # retrying cannot fix it: dead-lettered at once
            log.error("event_malformed", queue=queue, event_id=event.id, error=str(exc)[:500])
            await self._dead_letter(queue, message, event, exc, last_attempt=False)
            return
        except Exception as exc:  # any other handler failure is one failed attempt; the delivery limit bounds it
            failed_before = _delivery_count(message)
            last = failed_before >= self.delivery_limit  # the broker would dead-letter it once this one fails
            (log.error if last else log.warning)(
                "event_dead_lettered" if last else "event_rejected",
                queue=queue,
                event_id=event.id,
                routing_key=event.routing_key,
                attempt=failed_before,
                error_type=type(exc).__name__,
                error=repr(exc)[:500],
            )
            if last:
                await self._dead_letter(queue, message, event, exc, last_attempt=True)
            else:
                await _settle(message.reject(requeue=True), queue, event)
                consumed(queue, event, "rejected", redelivered=redelivered)
            return
        await _settle(message.ack(), queue, event)
        skipped = subscription.handler_for(event.routing_key) is None
        consumed(queue, event, "skipped" if skipped else "acked", redelivered=redelivered)

    async def _dead_letter(
        self,
        queue: str,
        message: AbstractIncomingMessage,
        event: CloudEvent | None,
        error: Exception,
        *,
        last_attempt: bool,
    ) -> None:
        """Publish the message to the dead-letter exchange with why, and ack it once the broker confirmed; if the
        publish fails, reject it as before (requeued at the last attempt: the broker dead-letters it then)."""
        letter = dead_letter_message(
            message, queue=queue, error=error, attempts=_delivery_count(message) + 1, now=datetime.now(UTC)
        )
        try:
            if self._dlx is None:
                raise BusError("bus not started")
            # The publisher channel has confirms and on_return_raises: a nack or an unroutable return raises.
            await self._dlx.publish(letter, message.routing_key or "", timeout=self._publish_timeout)
        except Exception as exc:  # whatever the client raises: the broker's own dead-lettering takes over
            log.warning(
                "dead_letter_publish_failed",
                queue=queue,
                event_id=event and event.id,
                error_type=type(exc).__name__,
                error=str(exc)[:300],
            )
            await _settle(message.reject(requeue=last_attempt), queue, event)
        else:
            await _settle(message.ack(), queue, event)
        consumed(queue, event, "dead_lettered", redelivered=bool(message.redelivered))


def _delivery_count(message: AbstractIncomingMessage) -> int:
    """How many deliveries of this message failed before this one (the quorum queue's `x-delivery-count`)."""
    count = (message.headers or {}).get("x-delivery-count", 0)
    return count if isinstance(count, int) else 0


async def _settle(outcome: Awaitable[None], queue: str, event: CloudEvent | None) -> None:
    """Send an ack or reject; if the channel went away meanwhile, the broker redelivers the message (handlers are
    idempotent), so this is logged and not raised into aio-pika's consumer callback."""
    try:
        await outcome
    except Exception as exc:  # the connection dropped between the handler's commit and the ack
        log.warning(
            "event_settle_failed",
            queue=queue,
            event_id=event and event.id,
            error_type=type(exc).__name__,
            error=str(exc)[:300],
        )
