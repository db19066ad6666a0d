"""The bus port every service depends on.

Errors: `BusError` is the root; `PublishError` means the broker did not confirm a message (nacked,
returned as unroutable, or the connection failed) and the caller must treat it as not sent.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.events import CloudEvent

Handler = Callable[[CloudEvent], Awaitable[None]]

EXCHANGE = "certmon.events"
DEAD_LETTER_EXCHANGE = "certmon.dlx"
DEFAULT_DELIVERY_LIMIT = 5


@dataclass(frozen=True)
class Subscription:
    """A queue, the routing keys bound to it and the handler consuming it: a service's routing, spelled out."""

    queue: str
    routing_keys: tuple[str, ...]
    handler: Handler


class BusError(Exception):
    """A failure of the bus itself (not of a handler)."""


class PublishError(BusError):
    """The broker did not take responsibility for a message."""


class Bus(Protocol):
    """Publish events and consume them from durable, named queues.

    A handler that returns acks the message; one that raises rejects it, and after the queue's
    delivery limit the message is dead-lettered. Handlers must therefore be idempotent. A handler that fails
    because a dependency is away is retried in process first (`shared.broker.dispatch`).
    """

    async def start(self) -> None:
        """Connect and declare the exchange topology."""

    async def close(self) -> None:
        """Stop consuming, let in-flight handlers finish, and disconnect."""

    async def ping(self) -> None:
        """Raise BusError unless the bus can publish and consume now (readiness; never blocks)."""

    async def publish(self, event: CloudEvent) -> None:
        """Publish with the event's routing key; returns once the broker confirmed it."""

    async def subscribe(self, queue: str, routing_keys: Sequence[str], handler: Handler, *, prefetch: int = 32) -> None:
        """Declare `queue` bound to `routing_keys` on the events exchange and start consuming."""


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: `*` is one word, `#` zero or more."""
    pat, key = pattern.split("."), routing_key.split(".")

    def match(i: int, j: int) -> bool:
        if i == len(pat):
            return j == len(key)
        if pat[i] == "#":
            return any(match(i + 1, k) for k in range(j, len(key) + 1))
        if j == len(key):
            return False
        return (pat[i] == "*" or pat[i] == key[j]) and match(i + 1, j + 1)

    return match(0, 0)
