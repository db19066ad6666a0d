"""Acknowledging an alarm, for the API and the signed action links alike.

The reporter does not own alarms: it sends the alarmer an `acknowledgement.requested.v1` command through its
transactional outbox and then watches its own history, for a bounded time, for the `alarm.acknowledged.v1` that
the alarmer publishes in answer. The outcome says which of these happened, so each caller can word it its way.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import structlog

from services.reporter.domain.views import AlarmView
from services.reporter.ports import HistoryStore
from services.reporter.service_layer.publishing import SOURCE
from services.reporter.service_layer.queries import load_alarm
from shared.clock import Clock, utc_now
from shared.events import AcknowledgementRequested, AckVia, derived_id, make_event

log = structlog.get_logger(__name__)

ROUTING_KEY = "acknowledgement.requested.v1"

#: unknown: no such alarm; resolved: nothing to acknowledge; already: acknowledged before this request (nothing
#: sent); acknowledged: the alarmer confirmed within the wait; accepted: sent, not confirmed yet.
AckStatus = Literal["unknown", "resolved", "already", "acknowledged", "accepted"]


@dataclass(frozen=True)
class AckOutcome:
    """What became of an acknowledge request, and the alarm as the history shows it afterwards (None: unknown)."""

    status: AckStatus
    alarm: AlarmView | None


def standing(alarm: AlarmView | None) -> AckStatus | None:
    """Why `alarm` cannot be acknowledged ("unknown", "resolved", "already"), or None while it is open."""
    if alarm is None:
        return "unknown"
    if alarm.state == "resolved":
        return "resolved"
    if alarm.state == "acknowledged":
        return "already"
    return None


def _level_since(alarm: AlarmView) -> str:
    """The event id of the transition that set the alarm's current level (its raise or latest level change)."""
    return next(
        (step.event_id for step in reversed(alarm.history) if step.transition in ("raised", "changed")),
        alarm.history[0].event_id,
    )


class Acknowledger:
    """Sends acknowledge requests and waits, up to `wait_seconds`, polling every `poll_seconds`, for the answer.

    `requested` is called after a new request is enqueued (the outbox relay's `kick`), so it leaves at once.
    """

    def __init__(
        self,
        history: HistoryStore,
        *,
        clock: Clock = utc_now,
        requested: Callable[[], None] = lambda: None,
        wait_seconds: float = 3.0,
        poll_seconds: float = 0.1,
    ) -> None:
        self._history, self._clock, self._requested = history, clock, requested
        self._wait_seconds, self._poll_seconds = wait_seconds, poll_seconds

    async def acknowledge(self, alarm_id: str, *, by: str, comment: str | None, via: AckVia) -> AckOutcome:
        """Ask the alarmer to acknowledge an open alarm as `by`; alarms unknown, resolved or already acknowledged
        are left as they are and nothing is sent."""
        alarm = await load_alarm(self._history, alarm_id)
        if alarm is None:
            return AckOutcome("unknown", None)
        refused = standing(alarm)
        if refused is not None:
            return AckOutcome(refused, alarm)
        request = AcknowledgementRequested(
            alarm_id=alarm_id, by=by, comment=comment, via=via, requested_at=self._clock()
        )
        command = make_event(
            ROUTING_KEY,
            request,
            source=SOURCE,
            subject=alarm_id,
            # The same person saying the same thing twice about the same level (a double click, a resubmitted
            # form) is one request; once a worse level re-opens the alarm, acknowledging it again is a new one.
            event_id=derived_id(ROUTING_KEY, alarm_id, _level_since(alarm), by, comment or ""),
        )
        if await self._history.request_acknowledgement(command):
            log.info("acknowledgement_requested", alarm_id=alarm_id, via=via, event_id=command.id)
            self._requested()
        return await self._answer(alarm_id)

    async def _answer(self, alarm_id: str) -> AckOutcome:
        """Poll the history until the alarm leaves `open` or the wait is over."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_seconds
        while True:
            alarm = await load_alarm(self._history, alarm_id)
            if alarm is not None and alarm.state == "acknowledged":
                return AckOutcome("acknowledged", alarm)
            if alarm is not None and alarm.state == "resolved":
                # Resolved before the alarmer got to the request: it will ignore it.
                return AckOutcome("resolved", alarm)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return AckOutcome("accepted", alarm)
            await asyncio.sleep(min(self._poll_seconds, remaining))
