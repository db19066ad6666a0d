"""What the handler needs from the outside world: a sender per channel (and the one error type every sender
raises), and a delivery log.

The delivery log has two adapters that pass the same contract tests: PostgreSQL (`adapters.delivery_log`) and
the in-memory twin (`adapters.memory`) the unit tests use.

Errors: `DeliveryError(transient=True)` is worth retrying (a 4xx reply, a refused or dropped connection, a
timeout); `transient=False` is not (a 5xx reply, a refused STARTTLS, bad credentials, a missing secret).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from services.notifier.domain.deliveries import Delivery, Notice
from shared.events import CloudEvent

Status = Literal["sent", "failed"]


class DeliveryError(Exception):
    """A delivery did not happen; `transient` says whether trying again may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class Sender(Protocol):
    """Delivers an alarm event over one channel, rendering it the way the channel needs."""

    async def send(self, delivery: Delivery, notice: Notice) -> str | None:
        """Send or raise `DeliveryError`; returns a note when it was only partly delivered, else None."""
        ...


@dataclass(frozen=True)
class DeliveryRecord:
    """The outcome of one delivery: attempts made in this run and the last error (or partial-refusal note)."""

    delivery: Delivery
    alarm_id: str
    alarm_event_id: str
    status: Status
    attempts: int
    error: str | None
    at: datetime


class DeliveryLog(Protocol):
    """One entry per idempotency key with its outcome, the alarm events already handled, and the outbox of the
    `notification.*.v1` events the outcomes cause."""

    async def is_processed(self, event_id: str, consumer: str) -> bool:
        """Whether every delivery of this event was already recorded by `consumer`."""
        ...

    async def mark_processed(self, event_id: str, consumer: str) -> None:
        """Record that every delivery of this event is settled, so a redelivery of it does nothing."""
        ...

    async def sent_keys(self, keys: Sequence[str]) -> set[str]:
        """Which of these idempotency keys were already delivered."""
        ...

    async def record(self, record: DeliveryRecord, result: CloudEvent) -> None:
        """Atomically store the delivery's outcome and queue `result` for publishing (an id queued before is
        ignored). A retried delivery adds its attempts to the earlier ones; a `sent` entry never changes again."""
        ...
