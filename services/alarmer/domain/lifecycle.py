"""The alarm lifecycle (pure): the state an alarm is in after each transition, its acknowledgement, and when it
is reminded next.

States are `open`, `acknowledged` and `resolved`. An open alarm is re-notified at its level's cadence, counted
from its last notification (raise, change or reminder). Acknowledging silences it until its level gets worse,
which re-opens it; a better level that is not ok leaves it acknowledged; a resolve closes it whatever its state.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from shared.events import Acknowledgement, AcknowledgementRequested, AlarmEvent, AlarmState, AlarmTransition
from shared.events.evaluation import LEVEL_ORDER, Level

_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


@dataclass(frozen=True)
class Lifecycle:
    """An alarm's lifecycle fields after a transition, as its `AlarmEvent` carries them."""

    state: AlarmState
    acknowledgement: Acknowledgement | None
    reminders_sent: int
    next_reminder_at: datetime | None


@dataclass(frozen=True)
class Ignored:
    """An acknowledgement request that changes nothing, and why."""

    reason: Literal["unknown_alarm", "resolved", "already_acknowledged"]


def duration_text(seconds: int) -> str:
    """A cadence as `certmon.yaml` writes it, in the largest unit that divides it: 86400 → `1d`, 90 → `90s`."""
    unit, size = next((unit, size) for unit, size in _UNITS if seconds % size == 0)
    return f"{seconds // size}{unit}"


def reminder_cause(cadence: int) -> str:
    """Who or what caused a reminder: the schedule, with its cadence."""
    return f"reminder schedule (every {duration_text(cadence)})"


def acknowledgement_cause(request: Acknowledgement | AcknowledgementRequested) -> str:
    """Who or what caused an acknowledgement: the person, how it arrived, and what they said."""
    said = f": {request.comment}" if request.comment else ""
    return f"acknowledged by {request.by} via {request.via}{said}"


def _next(now: datetime, cadence: int | None) -> datetime | None:
    return None if cadence is None else now + timedelta(seconds=cadence)


def after_evaluation(
    transition: AlarmTransition,
    level: Level,
    previous: AlarmEvent | None,
    *,
    now: datetime,
    cadence: int | None,
) -> Lifecycle:
    """The lifecycle after an evaluation raised, changed or resolved an alarm; `previous` is its last event
    (None for a raise) and `cadence` the reminder interval at the new level (None: no reminders)."""
    if transition == "resolved":
        return Lifecycle("resolved", None, previous.reminders_sent if previous else 0, None)
    if previous is not None and previous.state == "acknowledged" and LEVEL_ORDER[level] < LEVEL_ORDER[previous.level]:
        # Better but not ok: what was acknowledged has not got worse, so it stays silenced.
        return Lifecycle("acknowledged", previous.acknowledgement, 0, None)
    return Lifecycle("open", None, 0, _next(now, cadence))


def reminded(previous: AlarmEvent, *, now: datetime, cadence: int) -> AlarmEvent:
    """The reminder of an open alarm whose reminder is due, the next one scheduled `cadence` seconds on."""
    return previous.model_copy(
        update={
            "transition": "reminded",
            "previous_level": None,
            "occurred_at": now,
            "cause": reminder_cause(cadence),
            "reminders_sent": previous.reminders_sent + 1,
            "next_reminder_at": _next(now, cadence),
        }
    )


def reminder_number(event: AlarmEvent) -> str:
    """What tells a reminder apart from every other of its alarm: its count since the evaluation that last set
    the alarm's level (each change starts the count again, and comes from another evaluation)."""
    return f"reminder {event.evaluation_id} {event.reminders_sent}"


def acknowledge(
    current: AlarmEvent | None, request: AcknowledgementRequested, *, now: datetime
) -> AlarmEvent | Ignored:
    """The `acknowledged` transition of an open alarm (`current` is its last event, None when unknown), or why
    the request changes nothing."""
    if current is None:
        return Ignored("unknown_alarm")
    if current.state == "resolved":
        return Ignored("resolved")
    if current.state == "acknowledged":
        return Ignored("already_acknowledged")
    acknowledgement = Acknowledgement(by=request.by, at=request.requested_at, comment=request.comment, via=request.via)
    return current.model_copy(
        update={
            "transition": "acknowledged",
            "previous_level": None,
            "occurred_at": now,
            "state": "acknowledged",
            "acknowledgement": acknowledgement,
            "cause": acknowledgement_cause(acknowledgement),
            "next_reminder_at": None,
        }
    )
