"""The bus port every service depends on.

Errors: `BusError` is the root; `PublishError` means the broker did not confirm a message (nacked,
returned as unroutable, or the connection failed) and the caller must treat it as not sent.
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

from shared.events import CloudEvent

P = TypeVar("P", bound=BaseModel)

EXCHANGE = "certmon.events"
DEAD_LETTER_EXCHANGE = "certmon.dlx"
DEFAULT_DELIVERY_LIMIT = 5


@dataclass(frozen=True)
class Message(Generic[P]):
    """What a handler receives: the envelope (its `id` is the idempotency key) and its payload, already validated
    by the bus into the model of the event's routing key."""

    event: CloudEvent
    payload: P


Handler = Callable[[Message[Any]], Awaitable[None]]
#: Handles several messages of one routing key at once, in their order, with the effect of its key's `Handler` on
#: each (one transaction for all: that is its point). It may raise after handling some of them: the bus then hands
#: each message to the `Handler` alone, which finds the handled ones done (handlers are idempotent).
BatchHandler = Callable[[Sequence[Message[Any]]], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    """A service's routing, spelled out: a queue, the handler of each routing key bound to it, and the service it
    belongs to (named in the log context of every line its handlers write)."""

    service: str
    queue: str
    handlers: Mapping[str, Handler]
    prefetch: int = 32
    #: Batch handlers, by the same keys as `handlers`: the messages of such a key that arrive together (up to
    #: `batch_size`) go to it in one call, one batch at a time per process; a batch that fails goes message by
    #: message to `handlers`, so a bad message fails only itself. Give such a subscription a prefetch of about twice
    #: `batch_size`, so the next batch arrives while one is handled.
    batch_handlers: Mapping[str, BatchHandler] = field(default_factory=dict)
    batch_size: int = 100

    @property
    def routing_keys(self) -> tuple[str, ...]:
        """The routing keys (or topic patterns) the queue is bound to."""
        return tuple(self.handlers)

    def handler_for(self, routing_key: str) -> Handler | None:
        """The handler of a routing key: the one bound to it exactly, else the first whose pattern matches it."""
        pattern = self.pattern_for(routing_key)
        return None if pattern is None else self.handlers[pattern]

    def pattern_for(self, routing_key: str) -> str | None:
        """The key of `handlers` that takes a routing key: itself if bound exactly, else the first matching pattern."""
        if routing_key in self.handlers:
            return routing_key
        return next((pattern for pattern in self.handlers if topic_matches(pattern, routing_key)), None)


class BusError(Exception):
    """A failure of the bus itself (not of a handler)."""


class PublishError(BusError):
    """The broker did not take responsibility for a message."""


class QueueFull(PublishError):
    """The broker refused a message because a queue it routes to is at its length limit (backpressure): the
    publisher keeps the message and tries again once the consumers have made room, however long that takes."""


class Bus(Protocol):
    """Publish events and consume them from durable, named queues.

    A handler that returns acks the message; one that raises rejects it, and after the queue's
    delivery limit the message is dead-lettered. Handlers must therefore be idempotent. A handler that fails
    because a dependency is away is retried in process first (`shared.broker.dispatch`).
    """

    async def start(self) -> None:
        """Connect and declare the exchange topology."""

    async def stop_consuming(self, within: float | None) -> None:
        """Take no more messages, wait up to `within` seconds (None: no limit) for the handlers in flight (their
        messages are acknowledged as usual), then stop those still running without acknowledging their messages,
        which go back to their queues. Publishing goes on working (a last outbox flush, when draining)."""

    async def close(self) -> None:
        """Stop consuming, let in-flight handlers finish, and disconnect."""

    async def ping(self) -> None:
        """Raise BusError unless the bus can publish and consume now (readiness; never blocks)."""

    async def publish(self, event: CloudEvent) -> None:
        """Publish with the event's routing key; returns once the broker confirmed it."""

    async def subscribe(self, subscription: Subscription) -> None:
        """Declare the subscription's queue bound to its routing keys on the events exchange and start consuming:
        each event's payload is validated (one that does not validate is dead-lettered at once) and handed to the
        handler with the log context bound (`shared.broker.dispatch`)."""


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
