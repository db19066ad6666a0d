"""The dead letters: what a consumer could not handle, and the operator's tools to read, replay and purge them.

A dead letter is the message as it was published (body, properties, routing key) with headers saying why:
`x-certmon-reason` (the error's type and message, truncated, URL passwords redacted), `x-certmon-queue` (the
queue it failed on), `x-certmon-failed-at` (ISO 8601, UTC) and `x-certmon-attempts` (deliveries it had). The
consumer publishes it to the dead-letter exchange itself, on a malformed or poison message at once and on a failing
one at the last attempt its queue's delivery limit allows; should that publish fail, it rejects the message and the
broker dead-letters it, with RabbitMQ's `x-death` headers only (read here too: the queue, "dead-lettered by the
broker: delivery_limit", the time).

Reading the dead-letter queue takes each message with `basic.get` and leaves it unacknowledged; those not replayed
or purged go back when the channel closes, in their order. AMQP has no peek: each read counts as a delivery in
the queue's `x-delivery-count` (RabbitMQ 3.x; the dead-letter queue has no delivery limit, so nothing is lost by
reading it). A replay publishes the letter to its queue through the default exchange, so only the consumer that
failed gets it again (not every queue bound to its routing key), waits for the broker's confirm, and only then
acknowledges it in the dead-letter queue: a connection lost in between leaves it in both (consumers are idempotent).

aio-pika is only a type here: the in-memory bus, which `certmon check` loads, shares the header contract.
"""

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from shared.logging import redact_text

if TYPE_CHECKING:
    from aio_pika import Message
    from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

DEAD_LETTER_QUEUE = "certmon.dead-letters"
#: The dead-letter queue's arguments: a quorum queue with no length limit (a dead letter refused would be lost).
DEAD_LETTER_QUEUE_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum"}

REASON, QUEUE, FAILED_AT, ATTEMPTS = "x-certmon-reason", "x-certmon-queue", "x-certmon-failed-at", "x-certmon-attempts"
#: Headers the broker or the dead-lettering added; a replayed message starts without them, as a new delivery.
_DEAD_LETTER_HEADERS = (REASON, QUEUE, FAILED_AT, ATTEMPTS, "x-delivery-count", "x-death")
_DEAD_LETTER_PREFIXES = ("x-first-death-", "x-last-death-")
REASON_MAX_CHARS = 500
#: How long to wait for released dead letters to be back in their queue.
RETURN_WAIT_SECONDS = 5.0


def failure_reason(error: BaseException) -> str:
    """Why a message was dead-lettered, as `x-certmon-reason` says it: type and message, truncated, redacted."""
    return redact_text(f"{type(error).__name__}: {error}")[:REASON_MAX_CHARS]


def dead_letter_message(
    message: "AbstractIncomingMessage", *, queue: str, error: BaseException, attempts: int, now: datetime
) -> "Message":
    """The message to publish to the dead-letter exchange: the original with the headers saying why."""
    letter = _as_published(message)
    letter.headers.update({REASON: failure_reason(error), QUEUE: queue, FAILED_AT: now.isoformat(), ATTEMPTS: attempts})
    return letter


@dataclass(frozen=True)
class DeadLetter:
    """One message in the dead-letter queue, as an operator sees it."""

    event_id: str | None
    routing_key: str
    #: The queue it failed on (where a replay sends it); None if no header names it.
    queue: str | None
    reason: str
    attempts: int | None
    failed_at: datetime | None

    def age(self, now: datetime) -> timedelta | None:
        """How long it has been dead."""
        return None if self.failed_at is None else now - self.failed_at

    def as_json(self, now: datetime) -> dict[str, Any]:
        """The fields, in JSON types (times ISO 8601, the age in seconds)."""
        age = self.age(now)
        return {
            "event_id": self.event_id,
            "routing_key": self.routing_key,
            "queue": self.queue,
            "reason": self.reason,
            "attempts": self.attempts,
            "failed_at": None if self.failed_at is None else self.failed_at.isoformat(),
            "age_seconds": None if age is None else round(age.total_seconds()),
        }


@dataclass
class Replay:
    """What a replay did: the letters sent back to their queues, and those kept, with why."""

    replayed: list[DeadLetter] = field(default_factory=list)
    kept: list[tuple[DeadLetter, str]] = field(default_factory=list)


Select = Callable[[DeadLetter], bool]


async def list_dead_letters(
    connection: "AbstractConnection", *, queue: str = DEAD_LETTER_QUEUE, limit: int | None = None
) -> list[DeadLetter]:
    """The dead letters in queue order (the first `limit` of them), all left in the queue."""
    async with _held(connection, queue, limit) as (_, held):
        return [letter for letter, _ in held]


async def replay_dead_letters(
    connection: "AbstractConnection", select: Select, *, queue: str = DEAD_LETTER_QUEUE, publish_timeout: float = 30.0
) -> Replay:
    """Send each selected dead letter back to the queue it failed on; each is removed from the dead-letter queue
    once the broker confirmed it. One whose queue is unknown, gone or full stays, with the reason in `kept`."""
    replay = Replay()
    async with _held(connection, queue) as (channel, held):
        for letter, message in held:
            if not select(letter):
                continue
            if letter.queue is None:
                replay.kept.append((letter, "the queue it failed on is unknown"))
                continue
            try:  # with confirms and on_return_raises, a nack or a return raises
                await channel.default_exchange.publish(_as_published(message), letter.queue, timeout=publish_timeout)
            except Exception as exc:  # whatever the client raises (unroutable, nacked, timed out): it stays
                replay.kept.append((letter, f"not confirmed by the broker: {redact_text(repr(exc))[:300]}"))
                continue
            await message.ack()
            replay.replayed.append(letter)
    return replay


async def purge_dead_letters(
    connection: "AbstractConnection",
    select: Select,
    *,
    queue: str = DEAD_LETTER_QUEUE,
    confirm: Callable[[Sequence[DeadLetter]], Awaitable[bool]] | None = None,
) -> list[DeadLetter]:
    """Remove the selected dead letters and return them; with `confirm`, only if it agrees, given them all (the
    letters stay held meanwhile, so what it saw is what goes)."""
    async with _held(connection, queue) as (_, held):
        chosen = [(letter, message) for letter, message in held if select(letter)]
        if not chosen or (confirm is not None and not await confirm([letter for letter, _ in chosen])):
            return []
        for _, message in chosen:
            await message.ack()
        return [letter for letter, _ in chosen]


@contextlib.asynccontextmanager
async def _held(
    connection: "AbstractConnection", queue: str, limit: int | None = None
) -> AsyncIterator[tuple["AbstractChannel", list[tuple[DeadLetter, "AbstractIncomingMessage"]]]]:
    """Take the queue's messages (up to `limit`) without acknowledging them; those still unsettled go back to the
    queue, in order, when the channel closes, and are back by the time this returns (so a command run next sees
    them). The queue is declared as the bus declares it, so one no service has created yet reads as empty."""
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    held: list[tuple[DeadLetter, AbstractIncomingMessage]] = []
    try:
        dead = await channel.declare_queue(queue, durable=True, arguments=DEAD_LETTER_QUEUE_ARGUMENTS)
        while limit is None or len(held) < limit:
            message = await dead.get(no_ack=False, fail=False)
            if message is None:
                break
            held.append((_read(message), message))
        yield channel, held
    finally:
        await channel.close()
    await _until_back(connection, queue, sum(not message.processed for _, message in held))


async def _until_back(connection: "AbstractConnection", queue: str, released: int) -> None:
    """Wait (a few seconds at most) until the queue holds at least the `released` messages again: the quorum queue
    takes them back shortly after the channel closed, not before its close returns."""
    if not released:
        return
    channel = await connection.channel()
    try:
        async with asyncio.timeout(RETURN_WAIT_SECONDS):
            while True:  # AMQP says nothing when a message comes back: its count is asked for
                declared = await channel.declare_queue(queue, passive=True)
                if (declared.declaration_result.message_count or 0) >= released:
                    return
                await asyncio.sleep(0.01)
    except TimeoutError:  # another reader holds some of them; they come back when its channel closes
        pass
    finally:
        await channel.close()


def _read(message: "AbstractIncomingMessage") -> DeadLetter:
    """A dead letter's fields, from certmon's headers or else the broker's `x-death`."""
    headers = message.headers or {}
    death = _first(headers.get("x-death"))
    queue = headers.get(QUEUE, death.get("queue"))
    reason = headers.get(REASON)
    if reason is None:
        reason = f"dead-lettered by the broker: {death.get('reason', 'unknown')}"
    attempts = headers.get(ATTEMPTS)
    return DeadLetter(
        event_id=message.message_id,
        routing_key=message.routing_key or "",
        queue=queue if isinstance(queue, str) else None,
        reason=str(reason),
        attempts=attempts if isinstance(attempts, int) else None,
        failed_at=_time(headers.get(FAILED_AT, death.get("time"))),
    )


def _first(deaths: object) -> Mapping[str, Any]:
    """The latest `x-death` entry (RabbitMQ puts it first), or nothing."""
    if isinstance(deaths, list | tuple) and deaths and isinstance(deaths[0], Mapping):
        return deaths[0]
    return {}


def _time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value)
    return None


def _as_published(message: "AbstractIncomingMessage") -> "Message":
    """The message as it was published: a new one with the body and properties of `message` (aio-pika copies an
    incoming message as an outgoing one), without the headers a delivery or a dead-lettering added."""
    outgoing = cast("Message", copy.copy(message))  # Message.__copy__ makes a Message, not an IncomingMessage
    outgoing.headers = {
        key: value
        for key, value in (message.headers or {}).items()
        if key not in _DEAD_LETTER_HEADERS and not key.startswith(_DEAD_LETTER_PREFIXES)
    }
    return outgoing
