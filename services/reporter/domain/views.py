"""Models of the HTTP API and how its read models are assembled from history (pure, no I/O)."""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events import (
    Acknowledgement,
    AlarmEvent,
    AlarmState,
    CertificateInfo,
    Evaluation,
    NotificationResult,
    OwnerRef,
    ReportPublished,
)


class View(BaseModel):
    """API views are immutable values."""

    model_config = ConfigDict(frozen=True)


class NotificationRecord(View):
    """One delivery attempt of an alarm event, as the notifier reported it."""

    alarm_id: str
    alarm_event_id: str
    channel: str
    recipient: str
    ok: bool
    attempt: int
    error: str | None = None
    at: datetime

    @classmethod
    def of(cls, result: NotificationResult, *, ok: bool) -> "NotificationRecord":
        """The record of a `notification.sent|failed.v1` payload; `ok` says which of the two it came as."""
        return cls(
            alarm_id=result.alarm_id,
            alarm_event_id=result.alarm_event_id,
            channel=result.channel,
            recipient=result.recipient,
            ok=ok,
            attempt=result.attempt,
            error=result.error,
            at=result.at,
        )


class AlarmTransitionView(View):
    """One step of an alarm's history, and who or what caused it."""

    event_id: str
    transition: str
    level: str
    previous_level: str | None = None
    state: AlarmState
    cause: str | None = None
    at: datetime
    #: Who acknowledged, when, how and why, on an `acknowledged` step: the interventions in the alarm's history.
    acknowledgement: Acknowledgement | None = None


class AlarmView(View):
    """An alarm as of its latest transition, with its history and the notifications it caused.

    `acknowledgement` is set while the alarm is acknowledged; `reminders_sent` and `next_reminder_at` are as the
    latest transition left them (None: no reminder is due).
    """

    alarm_id: str
    state: AlarmState
    level: str
    target_key: str
    fingerprint_sha256: str
    trigger: str
    certificate: CertificateInfo | None = None
    owners: list[OwnerRef] = Field(default_factory=list)
    acknowledgement: Acknowledgement | None = None
    reminders_sent: int = 0
    next_reminder_at: datetime | None = None
    raised_at: datetime
    updated_at: datetime
    history: list[AlarmTransitionView]
    notifications: list[NotificationRecord]


#: The limits `AcknowledgementRequested` puts on who acknowledges and on the comment.
MAX_ACK_BY = 320
MAX_ACK_COMMENT = 2000


class AckBody(View):
    """The body of `POST /api/v1/alarms/{alarm_id}/ack`: who acknowledges, and why (optional)."""

    by: str = Field(min_length=1, max_length=MAX_ACK_BY, examples=["jane@example.com"])
    comment: str | None = Field(default=None, max_length=MAX_ACK_COMMENT, examples=["renewal ordered"])


class AckAccepted(View):
    """An acknowledge request sent to the alarmer, not yet confirmed: the alarm's state will follow."""

    alarm_id: str
    status: Literal["accepted"] = "accepted"


class CertificatePage(View):
    """A page of latest evaluations; pass `next_cursor` back as `cursor` for the next page."""

    items: list[Evaluation]
    next_cursor: str | None = None


class CertificateDetail(View):
    """One certificate: where it is served now, its evaluations over time (newest first), its alarms."""

    fingerprint_sha256: str
    certificate: CertificateInfo | None
    served_at: list[str]
    evaluations: list[Evaluation]
    alarms: list[AlarmView]


class ReportList(View):
    """Published reports, newest period first."""

    items: list[ReportPublished]


def alarm_views(
    events: Sequence[tuple[str, AlarmEvent]], notifications: Sequence[NotificationRecord]
) -> list[AlarmView]:
    """Group `(event_id, alarm event)` pairs by alarm, newest activity first, each with its notifications."""
    by_alarm: dict[str, list[tuple[str, AlarmEvent]]] = defaultdict(list)
    for event_id, event in sorted(events, key=lambda pair: pair[1].occurred_at):
        by_alarm[event.alarm_id].append((event_id, event))
    sent: dict[str, list[NotificationRecord]] = defaultdict(list)
    for record in sorted(notifications, key=lambda n: n.at):
        sent[record.alarm_id].append(record)
    views = [_alarm_view(history, sent[alarm_id]) for alarm_id, history in by_alarm.items()]
    return sorted(views, key=lambda v: v.updated_at, reverse=True)


def _alarm_view(history: list[tuple[str, AlarmEvent]], notifications: list[NotificationRecord]) -> AlarmView:
    last = history[-1][1]
    # A resolve may carry no certificate (the endpoint went away); the alarm is still about the one seen before.
    certificate = next((e.certificate for _, e in reversed(history) if e.certificate is not None), None)
    return AlarmView(
        alarm_id=last.alarm_id,
        state=last.state,
        level=last.level,
        target_key=last.key.target_key,
        fingerprint_sha256=last.key.fingerprint_sha256,
        trigger=last.key.trigger,
        certificate=certificate,
        owners=last.owners,
        acknowledgement=last.acknowledgement,
        reminders_sent=last.reminders_sent,
        next_reminder_at=last.next_reminder_at,
        raised_at=history[0][1].occurred_at,
        updated_at=last.occurred_at,
        history=[
            AlarmTransitionView(
                event_id=event_id,
                transition=e.transition,
                level=e.level,
                previous_level=e.previous_level,
                state=e.state,
                cause=e.cause,
                at=e.occurred_at,
                acknowledgement=e.acknowledgement if e.transition == "acknowledged" else None,
            )
            for event_id, e in history
        ],
        notifications=notifications,
    )
