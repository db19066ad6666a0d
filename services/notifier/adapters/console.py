"""The console channel: prints a notification as a readable block, what `certmon run` does when it has no
other way to reach an owner."""

import sys
from typing import TextIO

from services.notifier.domain.deliveries import Delivery, RenderedMessage
from services.notifier.ports import DeliveryError

_RULE = "=" * 72


class ConsoleSender:
    """Writes each notification to a stream (standard output, looked up at send time, by default)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send(self, delivery: Delivery, message: RenderedMessage) -> str | None:
        """Print the subject, who it is for, and the text body; never fails for want of a recipient."""
        stream = self._stream if self._stream is not None else sys.stdout
        block = (
            f"{_RULE}\n{message.subject}\nFor: {delivery.owner} (chosen by {delivery.rule})\n"
            f"{_RULE}\n{message.text.rstrip()}\n{_RULE}\n"
        )
        try:
            stream.write(block)
            stream.flush()
        except (OSError, ValueError) as exc:  # a closed or broken stream
            raise DeliveryError(f"cannot write to the console: {exc}", transient=False) from exc
        return None
