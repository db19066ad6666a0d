"""`alarm.raised|changed|reminded|acknowledged|resolved.v1`, and `acknowledgement.requested.v1`, the command
the reporter's API and action links send the alarmer."""

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from shared.events.base import Frozen
from shared.events.evaluation import CertificateInfo, Finding, Level, Trigger
from shared.events.target import TargetRef

AlarmTransition = Literal["raised", "changed", "reminded", "acknowledged", "resolved"]
#: `open` until acknowledged or resolved; a worse level re-opens an acknowledged alarm.
AlarmState = Literal["open", "acknowledged", "resolved"]
#: How an acknowledgement arrived: the API (a write token) or a signed action link from an email.
AckVia = Literal["api", "link"]


class AlarmKey(Frozen):
    """An alarm's identity: one per (target, certificate fingerprint, trigger)."""

    target_key: str
    fingerprint_sha256: str
    trigger: Trigger


class OwnerRef(Frozen):
    """An owner to notify, with the channels from `certmon.yaml` and the rule that chose it."""

    name: str
    email: list[str] = Field(default_factory=list)
    delivery: Literal["group", "individual"] = "group"
    snmp: list[str] = Field(default_factory=list)
    webhook: list[str] = Field(default_factory=list)
    rule: str  # e.g. "certificate[0] san=*.shop.example.com", "server web-01", "default"


class Acknowledgement(Frozen):
    """Who acknowledged an alarm, when, how, and what they said."""

    by: str
    at: datetime
    comment: str | None = None
    via: AckVia = "api"


class AlarmEvent(Frozen):
    """An alarm transition, everything a subscriber needs to act on it without calling back.

    `state` is the alarm's state after the transition; `acknowledgement` is set while it is acknowledged (and on
    the `acknowledged` transition itself); `cause` says who or what made the transition (the evaluation, the
    reminder schedule, or who acknowledged it); `reminders_sent` counts reminders since the alarm was raised or
    last changed level; `next_reminder_at` is when the next one is due (None: none will be sent).
    """

    alarm_id: str
    key: AlarmKey
    transition: AlarmTransition
    level: Level
    previous_level: Level | None = None
    triggers: list[Trigger] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    owners: list[OwnerRef] = Field(default_factory=list)
    target: TargetRef
    certificate: CertificateInfo | None = None
    days_remaining: float | None = None
    grade: str | None = None
    occurred_at: datetime
    evaluation_id: str | None = None
    state: AlarmState = "open"
    acknowledgement: Acknowledgement | None = None
    cause: str | None = None
    reminders_sent: int = Field(default=0, ge=0)
    next_reminder_at: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _state_of_older_events(cls, data: Any) -> Any:
        # Events published before `state` existed carry only their transition; a resolve closed the alarm.
        if isinstance(data, dict) and "state" not in data and data.get("transition") == "resolved":
            return {**data, "state": "resolved"}
        return data

    @property
    def target_key(self) -> str:
        """The key of the target the alarm is about."""
        return self.key.target_key


class AcknowledgementRequested(Frozen):
    """A request to acknowledge an alarm (`acknowledgement.requested.v1`, reporter → alarmer).

    The alarmer applies it once per event id: an open alarm becomes acknowledged and `alarm.acknowledged.v1`
    follows; an alarm already acknowledged or resolved is left as it is.
    """

    alarm_id: str
    by: str = Field(min_length=1, max_length=320)
    comment: str | None = Field(default=None, max_length=2000)
    via: AckVia = "api"
    requested_at: datetime
