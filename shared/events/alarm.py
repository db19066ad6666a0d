"""`alarm.raised.v1`, `alarm.changed.v1`, `alarm.resolved.v1` (and later reminded/acknowledged)."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.events.base import Frozen
from shared.events.evaluation import CertificateInfo, Finding, Level, Trigger
from shared.events.target import TargetRef

AlarmTransition = Literal["raised", "changed", "resolved"]


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
    rule: str  # e.g. "certificate[0] san=*.shop.example.com", "server web-01", "default"


class AlarmEvent(Frozen):
    """An alarm transition, everything a subscriber needs to act on it without calling back."""

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

    @property
    def target_key(self) -> str:
        """The key of the target the alarm is about."""
        return self.key.target_key
