"""The console channel: prints a notification as a readable block, what `certmon run` does when it has no
other way to reach an owner."""

import sys
from typing import TextIO

from services.notifier.adapters.rendering import Renderer, RenderError
from services.notifier.domain.deliveries import Delivery, Notice
from services.notifier.ports import DeliveryError

_RULE = "=" * 72


class ConsoleSender:
    """Writes each notification, rendered by the email templates without an acknowledge link, to a stream
    (standard output, looked up at send time, by default)."""

    def __init__(self, renderer: Renderer, stream: TextIO | None = None) -> None:
        self._renderer = renderer
        self._stream = stream

    async def send(self, delivery: Delivery, notice: Notice) -> str | None:
        """Print the subject, who it is for, and the text body; never fails for want of a recipient."""
        try:
            message = self._renderer.render(notice, delivery)
        except RenderError as exc:
            raise DeliveryError(str(exc), transient=False) from exc
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
