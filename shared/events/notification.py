"""`notification.sent.v1` / `notification.failed.v1`: the outcome of one delivery attempt."""

from datetime import datetime
from typing import Literal

from shared.events.base import Frozen


class NotificationResult(Frozen):
    """One delivery of one alarm event to one recipient over one channel.

    A `notification.failed.v1` with `next_attempt_at` set is not the end: the notifier tries again then, from its
    delivery log. Without it the delivery was given up (a permanent error, or retried for as long as
    `channels.retry.give_up_after` allows). `attempt` counts every attempt so far.
    """

    alarm_id: str
    alarm_event_id: str
    channel: Literal["email", "snmp", "webhook", "console"]
    recipient: str
    attempt: int
    error: str | None = None
    at: datetime
    transition: str | None = None
    next_attempt_at: datetime | None = None
