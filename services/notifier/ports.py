"""What the handler and the retry sweep need from the outside world: a sender per channel (and the one error
type every sender raises), and a delivery log.

The delivery log has two adapters that pass the same contract tests: PostgreSQL (`adapters.delivery_log`) and
the in-memory twin (`adapters.memory`) the unit tests use.

Errors: `DeliveryError(transient=True)` is worth retrying (an SMTP 4xx reply, an HTTP 5xx, 408 or 429 reply, a
refused or dropped connection, a timeout); `transient=False` is not (an SMTP 5xx reply, another HTTP 4xx, a
refused STARTTLS, bad credentials, a missing secret, a template that does not render, a denied address).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from services.notifier.domain.deliveries import Delivery, Notice
from shared.events import CloudEvent

#: `retrying`: the delivery log owns the delivery and tries it again at `next_attempt_at`; the others are final.
Status = Literal["sent", "retrying", "failed"]


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
    """The outcome of one round of attempts at a delivery: how many were made in this round, the last error
    (or partial-refusal note), when the first attempt of all was made, and, while `retrying`, when to try again."""

    delivery: Delivery
    notice: Notice
    status: Status
    attempts: int
    error: str | None
    at: datetime
    first_attempt_at: datetime
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class PendingDelivery:
    """A `retrying` delivery claimed from the log: what to send, the attempts made so far, since when."""

    delivery: Delivery
    notice: Notice
    attempts: int
    first_attempt_at: datetime


class DeliveryLog(Protocol):
    """One entry per idempotency key with its outcome, the alarm events already handled, and the outbox of the
    `notification.*.v1` events the outcomes cause."""

    async def is_processed(self, event_id: str, consumer: str) -> bool:
        """Whether every delivery of this event was already recorded by `consumer`."""
        ...

    async def mark_processed(self, event_id: str, consumer: str) -> None:
        """Record that every delivery of this event is settled, so a redelivery of it does nothing."""
        ...

    async def recorded_keys(self, keys: Sequence[str]) -> set[str]:
        """Which of these idempotency keys have an entry (sent, failed, or retrying from the log already)."""
        ...

    async def record(self, record: DeliveryRecord, result: CloudEvent) -> None:
        """Atomically store the delivery's outcome and queue `result` for publishing (an id queued before is
        ignored). A retried delivery adds its attempts to the earlier ones and keeps its first attempt's time;
        a `sent` or `failed` entry is final and never changes again."""
        ...

    async def claim_due(self, now: datetime, *, lease_until: datetime, limit: int) -> list[PendingDelivery]:
        """Up to `limit` `retrying` entries due by `now`, oldest first, each moved to `lease_until` in the same
        transaction so that no other replica claims it while it is being sent."""
        ...
