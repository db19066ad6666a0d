"""The alarmer's own metrics: alarm transitions, counted once their unit of work has committed."""

from collections.abc import Iterable

from prometheus_client import Counter

from shared.events import AlarmEvent

ALARM_TRANSITIONS = Counter(
    "certmon_alarm_transitions",
    "Alarm transitions committed, by transition (raised, changed, reminded, acknowledged, resolved) and level.",
    ["transition", "level"],
)

TRANSITIONS = ("raised", "changed", "reminded", "acknowledged", "resolved")
LEVELS = ("ok", "info", "warning", "critical")


def start_series() -> None:
    """Start every transition's series at zero (called once the alarmer is wired)."""
    for transition in TRANSITIONS:
        for level in LEVELS:
            ALARM_TRANSITIONS.labels(transition, level)


def committed(events: Iterable[AlarmEvent]) -> None:
    """Count transitions whose unit of work has committed."""
    for event in events:
        ALARM_TRANSITIONS.labels(event.transition, event.level).inc()
