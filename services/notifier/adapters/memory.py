"""The in-memory twin of the PostgreSQL delivery log: the same semantics (one entry per idempotency key whose
attempts add up while it is retrying, final `sent` and `failed` entries, due entries claimed with a lease,
processed alarm events, an outbox without duplicate ids), no database.

Each write happens without yielding to the event loop, so it is as atomic as the PostgreSQL transaction.
`deliveries` and `outbox` show what was recorded, for a test to read.
"""

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from services.notifier.ports import DeliveryRecord, PendingDelivery
from shared.events import CloudEvent


class InMemoryDeliveryLog:
    """A delivery log in one process."""

    def __init__(self) -> None:
        self._deliveries: dict[str, DeliveryRecord] = {}
        self._processed: set[tuple[str, str]] = set()
        self._outbox: list[CloudEvent] = []

    @property
    def deliveries(self) -> list[DeliveryRecord]:
        """Each idempotency key's entry, in the order first recorded; `attempts` counts every round's."""
        return list(self._deliveries.values())

    @property
    def outbox(self) -> list[CloudEvent]:
        """The result events recorded, oldest first."""
        return list(self._outbox)

    async def is_processed(self, event_id: str, consumer: str) -> bool:
        """Whether every delivery of this event was already recorded by `consumer`."""
        return (consumer, event_id) in self._processed

    async def mark_processed(self, event_id: str, consumer: str) -> None:
        """Record that every delivery of this event is settled."""
        self._processed.add((consumer, event_id))

    async def recorded_keys(self, keys: Sequence[str]) -> set[str]:
        """Which of these idempotency keys have an entry, whatever its status."""
        return {key for key in keys if key in self._deliveries}

    async def record(self, record: DeliveryRecord, result: CloudEvent) -> None:
        """Store the outcome (adding to a retrying entry's attempts; a final one stays as it is and nothing is
        queued) and queue `result`."""
        key = record.delivery.idempotency_key
        earlier = self._deliveries.get(key)
        if earlier is None:
            self._deliveries[key] = record
        elif earlier.status == "retrying":
            self._deliveries[key] = replace(
                record, attempts=earlier.attempts + record.attempts, first_attempt_at=earlier.first_attempt_at
            )
        else:
            return
        if all(queued.id != result.id for queued in self._outbox):
            self._outbox.append(result)

    async def claim_due(self, now: datetime, *, lease_until: datetime, limit: int) -> list[PendingDelivery]:
        """Up to `limit` due retrying entries, oldest due first, each moved to `lease_until`."""
        due = sorted(
            (r for r in self._deliveries.values() if r.status == "retrying" and r.next_attempt_at is not None),
            key=lambda r: r.next_attempt_at or now,
        )
        claimed = [r for r in due if r.next_attempt_at is not None and r.next_attempt_at <= now][:limit]
        for entry in claimed:
            self._deliveries[entry.delivery.idempotency_key] = replace(entry, next_attempt_at=lease_until)
        return [PendingDelivery(r.delivery, r.notice, r.attempts, r.first_attempt_at) for r in claimed]
