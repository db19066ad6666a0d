"""What every service's bootstrap returns: something the composition root starts and stops."""

from typing import Protocol


class Service(Protocol):
    """A wired service: `start` subscribes and starts background work; `stop` undoes it, gracefully."""

    name: str

    async def start(self) -> None:
        """Migrate, subscribe, start background tasks."""

    async def stop(self) -> None:
        """Stop background tasks, then publish what the outbox holds once more; release nothing it did not open.
        The bus stops the consumers afterwards. A stop that outlasts its share of the drain is cancelled
        (`shared.lifecycle.Drain`): leave nothing that a cancellation makes unsafe (a transaction rolls back)."""
