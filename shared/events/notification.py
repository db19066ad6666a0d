"""`notification.sent.v1` / `notification.failed.v1`: the outcome of one delivery attempt."""

from datetime import datetime
from typing import Literal

from shared.events.base import Frozen


class NotificationResult(Frozen):
    """One delivery of one alarm event to one recipient over one channel."""

    alarm_id: str
    alarm_event_id: str
    channel: Literal["email", "snmp", "webhook", "console"]
    recipient: str
    attempt: int
    error: str | None = None
    at: datetime
