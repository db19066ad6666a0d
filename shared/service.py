"""What every service's bootstrap returns: something the composition root starts and stops."""

from typing import Protocol


class Service(Protocol):
    """A wired service: `start` subscribes and starts background work; `stop` undoes it, gracefully."""

    name: str

    async def start(self) -> None:
        """Migrate, subscribe, start background tasks."""

    async def stop(self) -> None:
        """Stop consuming and background tasks; release nothing it did not open."""
