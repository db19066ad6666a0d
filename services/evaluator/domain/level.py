"""Severity policy and the alarm level: what the findings mean once the configured policy is applied."""

import functools
from typing import cast

from shared.config import Policy
from shared.events.evaluation import (
    SEVERITY_ORDER,
    TRIGGER_ORDER,
    AlarmSummary,
    Finding,
    Level,
    Severity,
    Trigger,
    level_of,
)


def apply_policy(findings: list[Finding], policy: Policy) -> list[Finding]:
    """Override each finding's severity from `policy.severities`; a code set to `off` is dropped."""
    judged: list[Finding] = []
    for item in findings:
        override = policy.severities.get(item.code)
        if override == "off":
            continue
        if override is not None and override in SEVERITY_ORDER:
            item = item.model_copy(update={"severity": cast(Severity, override)})
        judged.append(item)
    return judged


def alarm_summary(findings: list[Finding]) -> AlarmSummary:
    """The level (`level_of`: the most severe finding above notice, `ok` when none) with the triggers it spans."""
    level = level_of(findings)
    if level == "ok":
        return _summary("ok", ())
    triggers = {f.trigger for f in findings if f.severity != "notice" and f.trigger is not None}
    return _summary(level, tuple(t for t in TRIGGER_ORDER if t in triggers))


@functools.lru_cache(maxsize=256)
def _summary(level: Level, triggers: tuple[Trigger, ...]) -> AlarmSummary:
    """One frozen summary per level and set of triggers (128 at most), shared by the evaluations that have it."""
    return AlarmSummary(level=level, triggers=list(triggers))
