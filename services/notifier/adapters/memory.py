"""The in-memory twin of the PostgreSQL delivery log: the same semantics (one entry per idempotency key whose
attempts add up until it is sent, processed alarm events, an outbox without duplicate ids), no database.

Each write happens without yielding to the event loop, so it is as atomic as the PostgreSQL transaction.
`deliveries` and `outbox` show what was recorded, for a test to read.
"""

from collections.abc import Sequence
from dataclasses import replace

from services.notifier.ports import DeliveryRecord
from shared.events import CloudEvent


class InMemoryDeliveryLog:
    """A delivery log in one process."""

    def __init__(self) -> None:
        self._deliveries: dict[str, DeliveryRecord] = {}
        self._processed: set[tuple[str, str]] = set()
        self._outbox: list[CloudEvent] = []

    @property
    def deliveries(self) -> list[DeliveryRecord]:
        """Each idempotency key's entry, in the order first recorded; `attempts` counts every run's."""
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

    async def sent_keys(self, keys: Sequence[str]) -> set[str]:
        """Which of these idempotency keys were already delivered."""
        return {key for key in keys if key in self._deliveries and self._deliveries[key].status == "sent"}

    async def record(self, record: DeliveryRecord, result: CloudEvent) -> None:
        """Store the outcome (adding to an unsent entry's attempts; a sent one stays as it is) and queue `result`."""
        key = record.delivery.idempotency_key
        earlier = self._deliveries.get(key)
        if earlier is None:
            self._deliveries[key] = record
        elif earlier.status != "sent":
            self._deliveries[key] = replace(
                earlier,
                status=record.status,
                attempts=earlier.attempts + record.attempts,
                error=record.error,
                at=record.at,
            )
        if all(queued.id != result.id for queued in self._outbox):
            self._outbox.append(result)
