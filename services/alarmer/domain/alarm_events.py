"""From a decision to the `alarm.*.v1` event that announces it (pure)."""

from datetime import datetime

from services.alarmer.domain.alarms import Decision
from services.alarmer.domain.lifecycle import after_evaluation
from services.alarmer.domain.ownership import Ownership
from shared.events import AlarmEvent, CloudEvent, Evaluation, Target, derived_id, make_event

SOURCE = "certmon/alarmer"


def new_alarm_id(evaluation_event_id: str, decision: Decision) -> str:
    """The id of the alarm a raise opens, derived so that a retried evaluation opens the same alarm."""
    key = decision.key
    return derived_id(evaluation_event_id, key.target_key, key.fingerprint_sha256, key.trigger)


def alarm_event(
    decision: Decision,
    *,
    alarm_id: str,
    evaluation: Evaluation,
    evaluation_event_id: str,
    previous: AlarmEvent | None,
    ownership: Ownership,
    target: Target,
    now: datetime,
) -> AlarmEvent:
    """The payload announcing `decision`; `previous` is the alarm's last event (None for a raise).

    Certificate facts come from the evaluation when the alarm is about the certificate now served, and
    from the alarm's last event when it is about one that was replaced. The next reminder follows the cadence
    the alarm's owner, server and certificate rules give its new level (resolved by `ownership`).
    """
    served = evaluation.certificate
    is_current = served is not None and decision.key.fingerprint_sha256 == served.fingerprint_sha256
    if is_current:
        certificate = served
    elif previous is not None and decision.key.fingerprint_sha256:
        certificate = previous.certificate
    else:
        certificate = None
    cadence = ownership.reminder_seconds(target, certificate, decision.level)
    lifecycle = after_evaluation(decision.transition, decision.level, previous, now=now, cadence=cadence)
    return AlarmEvent(
        alarm_id=alarm_id,
        key=decision.key,
        transition=decision.transition,
        level=decision.level,
        previous_level=decision.previous_level,
        triggers=[decision.key.trigger],
        findings=list(decision.findings),
        owners=ownership.owners_for(target, certificate),
        target=evaluation.target,
        certificate=certificate,
        days_remaining=evaluation.expiry.days_remaining if is_current and evaluation.expiry else None,
        grade=evaluation.security.grade if is_current and evaluation.security else None,
        occurred_at=now,
        evaluation_id=evaluation_event_id,
        state=lifecycle.state,
        acknowledgement=lifecycle.acknowledgement,
        cause=f"evaluation {evaluation_event_id}",
        reminders_sent=lifecycle.reminders_sent,
        next_reminder_at=lifecycle.next_reminder_at,
    )


def envelope(payload: AlarmEvent, origin: str) -> CloudEvent:
    """The CloudEvent for an alarm event, its id derived from what caused it (the evaluation or acknowledgement
    request event id, or the reminder's `lifecycle.reminder_number`), so a retry publishes the same id."""
    return make_event(
        f"alarm.{payload.transition}.v1",
        payload,
        source=SOURCE,
        subject=payload.alarm_id,
        event_id=derived_id(origin, payload.alarm_id, payload.transition),
    )
