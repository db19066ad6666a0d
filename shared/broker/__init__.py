"""The event bus: one port, two adapters (RabbitMQ via aio-pika, and its in-memory twin)."""

from shared.broker.bus import (
    BatchHandler,
    Bus,
    BusError,
    Handler,
    Message,
    PublishError,
    QueueFull,
    Subscription,
    topic_matches,
)
from shared.broker.memory import InMemoryBus

__all__ = [
    "BatchHandler",
    "Bus",
    "BusError",
    "Handler",
    "InMemoryBus",
    "Message",
    "PublishError",
    "QueueFull",
    "Subscription",
    "topic_matches",
]
