"""What the handler needs from a channel: a sender, and the one error type every sender raises.

Errors: `DeliveryError(transient=True)` is worth retrying (a 4xx reply, a refused or dropped connection, a
timeout); `transient=False` is not (a 5xx reply, a refused STARTTLS, bad credentials, a missing secret).
"""

from typing import Protocol

from services.notifier.domain import Delivery
from services.notifier.rendering import RenderedMessage


class DeliveryError(Exception):
    """A delivery did not happen; `transient` says whether trying again may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class Sender(Protocol):
    """Delivers a rendered message over one channel."""

    async def send(self, delivery: Delivery, message: RenderedMessage) -> str | None:
        """Send or raise `DeliveryError`; returns a note when it was only partly delivered, else None."""
        ...
