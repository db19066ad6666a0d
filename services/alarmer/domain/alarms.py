"""The alarm state machine: which alarms an evaluation raises, changes or resolves (pure, no I/O, no clock).

An alarm is keyed by (target, certificate fingerprint, trigger). Its level is the most severe finding of its
trigger above notice; `ok` when there is none. An endpoint that could not be observed has no certificate, so
its alarm is keyed with fingerprint "" and trigger reachability, and it leaves the certificate's alarms alone:
unknown is not ok. Serving a different certificate resolves the alarms of the one it replaced.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shared.events import AlarmKey, AlarmTransition, Evaluation, Finding
from shared.events.evaluation import TRIGGER_ORDER, Level, Trigger, level_of

#: The fingerprint of an alarm about an endpoint that presented no certificate.
NO_CERTIFICATE = ""

# A finding from a producer that did not set `trigger` is grouped by its code's prefix.
_TRIGGER_BY_PREFIX: dict[str, Trigger] = {
    "expiry": "expiry",
    "endpoint": "reachability",
    "chain": "chain",
    "tls": "security",
    "cipher": "security",
    "key": "security",
    "signature": "security",
}


@dataclass(frozen=True)
class OpenAlarm:
    """An alarm that is open now, as the decision needs it."""

    alarm_id: str
    key: AlarmKey
    level: Level


@dataclass(frozen=True)
class Decision:
    """One transition to apply: `alarm_id` is None for a raise (the alarm does not exist yet)."""

    transition: AlarmTransition
    key: AlarmKey
    level: Level
    previous_level: Level | None
    findings: tuple[Finding, ...]
    alarm_id: str | None = None


def trigger_of(finding: Finding) -> Trigger:
    """The trigger a finding belongs to: its own, else the one its code's prefix implies, else validity."""
    if finding.trigger is not None:
        return finding.trigger
    return _TRIGGER_BY_PREFIX.get(finding.code.split(".", 1)[0], "validity")


def is_unobserved(evaluation: Evaluation) -> bool:
    """True when the target presented no certificate (unreachable, refused, unreadable file...)."""
    return not evaluation.reachable or evaluation.certificate is None


def consecutive_failures(previous: int, evaluation: Evaluation) -> int:
    """The target's run of failed observations after this evaluation: one longer, or zero on success."""
    return previous + 1 if is_unobserved(evaluation) else 0


def decide(
    open_alarms: Sequence[OpenAlarm],
    evaluation: Evaluation,
    *,
    failures: int,
    unreachable_critical_after: int,
) -> list[Decision]:
    """The transitions an evaluation causes, given the target's open alarms.

    `failures` is the run of failed observations including this evaluation (see `consecutive_failures`);
    from `unreachable_critical_after` on, an alarming reachability level becomes critical.
    """
    by_trigger = _group(evaluation.findings)
    current = {alarm.key: alarm for alarm in open_alarms if alarm.key.target_key == evaluation.target_key}
    if is_unobserved(evaluation):
        findings = by_trigger.get("reachability", ())
        level = level_of(findings)
        if level != "ok" and failures >= unreachable_critical_after:
            level = "critical"
        key = AlarmKey(target_key=evaluation.target_key, fingerprint_sha256=NO_CERTIFICATE, trigger="reachability")
        return _step(current.get(key), key, level, findings)

    assert evaluation.certificate is not None  # is_unobserved said so
    fingerprint = evaluation.certificate.fingerprint_sha256
    decisions: list[Decision] = []
    for alarm in current.values():
        if alarm.key.fingerprint_sha256 != fingerprint:
            # Reachable again, or a renewed certificate: the alarm's subject is no longer what is served.
            decisions.extend(_step(alarm, alarm.key, "ok", ()))
    for trigger in TRIGGER_ORDER:
        key = AlarmKey(target_key=evaluation.target_key, fingerprint_sha256=fingerprint, trigger=trigger)
        findings = by_trigger.get(trigger, ())
        decisions.extend(_step(current.get(key), key, level_of(findings), findings))
    return decisions


def _group(findings: Iterable[Finding]) -> dict[Trigger, tuple[Finding, ...]]:
    groups: dict[Trigger, list[Finding]] = {}
    for finding in findings:
        groups.setdefault(trigger_of(finding), []).append(finding)
    return {trigger: tuple(items) for trigger, items in groups.items()}


def _step(alarm: OpenAlarm | None, key: AlarmKey, level: Level, findings: tuple[Finding, ...]) -> list[Decision]:
    if alarm is None:
        if level == "ok":
            return []
        return [Decision("raised", key, level, None, findings)]
    if level == alarm.level:
        return []
    transition: AlarmTransition = "resolved" if level == "ok" else "changed"
    return [Decision(transition, key, level, alarm.level, findings, alarm.alarm_id)]
