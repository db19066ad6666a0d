"""Severity policy and the alarm level: what the findings mean once the configured policy is applied."""

import functools
from typing import cast

from shared.config import Policy
from shared.events.evaluation import SEVERITY_ORDER, AlarmSummary, Finding, Level, Severity, Trigger

TRIGGER_ORDER: tuple[Trigger, ...] = ("expiry", "security", "chain", "validity", "reachability")
_LEVEL_OF: dict[str, Level] = {"critical": "critical", "warning": "warning", "info": "info"}


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
    """The most severe finding above notice gives the level (`ok` when none), with the triggers it spans."""
    raising = [f for f in findings if f.severity != "notice"]
    if not raising:
        return _summary("ok", ())
    worst = max(raising, key=lambda f: SEVERITY_ORDER[f.severity])
    triggers = {f.trigger for f in raising if f.trigger is not None}
    return _summary(_LEVEL_OF[worst.severity], tuple(t for t in TRIGGER_ORDER if t in triggers))


@functools.lru_cache(maxsize=256)
def _summary(level: Level, triggers: tuple[Trigger, ...]) -> AlarmSummary:
    """One frozen summary per level and set of triggers (128 at most), shared by the evaluations that have it."""
    return AlarmSummary(level=level, triggers=list(triggers))
