"""The weekly trend report: what changed in the estate over one week `[start, end)`.

It compares the estate at the start of the week with the estate at its end (each target by its latest evaluation
before that moment, among targets evaluated within `ESTATE_WINDOW` of it) and reads the week's alarm transitions:

- *first seen*: certificates whose first evaluation ever falls in the week;
- *renewed*: targets serving another certificate at the end than at the start (a target that changed twice
  in the week counts once, start to end). A renewal is *rekeyed* (`new_key`) when the public key changed
  and *reissued with the same key* (`same_key`) when it did not, by the keys' SubjectPublicKeyInfo fingerprints;
  where an evaluation predates that field, only the key's type, size and curve can be compared, and a renewal
  that kept them says "key kind unchanged" rather than guess;
- *expired*: certificates served at the start or the end whose notAfter falls in the week, and whether the
  target still served them at the end;
- *removed*: targets in the estate at the start that were not evaluated once during the week (taken out of the
  configuration or no longer scanned; a target that is down is still evaluated, so it is not removed), and
  *added*: targets evaluated in the week that were not in the estate at its start;
- alarms raised, acknowledged and resolved in the week, and the median time from raise to resolve of those
  resolved in it;
- the level and grade counts at the start and at the end, the level counts of each day (for the chart), the
  certificates entering each renewal window (90, 30, 7 and 0 days left) during the following week, and the
  expirations in each of the coming weeks.

Pure: `now` is an argument and nothing here does I/O.
"""

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal, TypeVar

from services.reporter.domain.facts import AlarmStep, DayLevels, LeafFacts, TargetFacts
from services.reporter.domain.report import GRADES, LEVELS, ReportModel, Totals

RENEWAL_WINDOWS_DAYS: tuple[int, ...] = (90, 30, 7, 0)
WEEKS_AHEAD = 12
_WEEK = timedelta(days=7)

KeyChange = Literal["new_key", "same_key", "key_kind_unchanged"]


# Report lines are slotted dataclasses, not pydantic models: a report can list 100,000 of them and a model costs
# ten times the memory. The report model around them still dumps them to JSON and validates them back.
@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateLine:
    """A certificate at a target, as the weekly report lists it."""

    target: str
    fingerprint: str
    subject: str
    issuer: str
    not_after: datetime
    owner: str | None = None
    server: str | None = None


_Line = TypeVar("_Line", bound=CertificateLine)


@dataclass(frozen=True, slots=True, kw_only=True)
class FirstSeen(CertificateLine):
    """A certificate evaluated for the first time in the week, at the target and moment it was first seen."""

    seen_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Renewal(CertificateLine):
    """A target that serves another certificate at the end of the week; the line names the new one."""

    previous_fingerprint: str
    previous_not_after: datetime
    key_change: KeyChange


@dataclass(frozen=True, slots=True, kw_only=True)
class Expired(CertificateLine):
    """A certificate whose notAfter fell in the week; `still_served` when the target served it at the end."""

    still_served: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetChange:
    """A target that left or joined the estate, with its last (left) or first (joined) evaluation."""

    target: str
    evaluated_at: datetime
    owner: str | None = None
    server: str | None = None
    fingerprint: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmChange:
    """One alarm transition of the week; `hours_to_resolve` on a resolve whose raise is known."""

    alarm_id: str
    target: str
    trigger: str
    level: str
    transition: str
    at: datetime
    hours_to_resolve: float | None = None


class AlarmActivity(ReportModel):
    """The week's alarm transitions: counts, the raises by level, and the median time to resolve."""

    raised: int
    acknowledged: int
    resolved: int
    raised_by_level: dict[str, int]
    median_hours_to_resolve: float | None
    changes: list[AlarmChange]


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowEntering:
    """Certificates whose days left drop to `days` during the week after the report's."""

    days: int
    certificates: list[CertificateLine]


@dataclass(frozen=True, slots=True, kw_only=True)
class DayCount:
    """Targets per level on one UTC day."""

    day: date
    by_level: dict[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class WeekCount:
    """Certificates expiring in the week starting `week_start`."""

    week_start: date
    count: int


class WeeklyReport(ReportModel):
    """The weekly trend analysis of `[period_start, period_end)`; `empty` when nothing was evaluated and no alarm
    moved in it."""

    kind: Literal["weekly"] = "weekly"
    generated_at: datetime
    period_start: datetime
    period_end: datetime
    empty: bool
    at_start: Totals
    at_end: Totals
    first_seen: list[FirstSeen]
    renewed: list[Renewal]
    expired: list[Expired]
    removed: list[TargetChange]
    added: list[TargetChange]
    alarms: AlarmActivity
    entering_windows: list[WindowEntering]
    levels_by_day: list[DayCount]
    expirations_ahead: list[WeekCount]


def totals(estate: Iterable[TargetFacts]) -> Totals:
    """Targets, distinct certificates, and targets per level and per grade (every level and grade, maybe 0)."""
    entries = list(estate)
    levels = Counter(f.level for f in entries)
    grades = Counter(f.grade for f in entries if f.grade is not None)
    return Totals(
        targets=len(entries),
        certificates=len({f.leaf.fingerprint for f in entries if f.leaf is not None}),
        by_level={level: levels.get(level, 0) for level in LEVELS},
        by_grade={grade: grades.get(grade, 0) for grade in GRADES},
    )


def expirations_by_week(
    not_afters: Iterable[datetime], start: datetime, *, weeks: int = WEEKS_AHEAD
) -> list[WeekCount]:
    """How many of `not_afters` fall in each of the `weeks` weeks from `start` on."""
    counts = Counter(int((moment - start) / _WEEK) for moment in not_afters if moment >= start)
    return [WeekCount(week_start=(start + i * _WEEK).date(), count=counts.get(i, 0)) for i in range(weeks)]


def _line(cls: type[_Line], facts: TargetFacts, leaf: LeafFacts, **extra: Any) -> _Line:
    """A line of kind `cls` about `leaf` at the target of `facts`, with the fields `cls` adds."""
    return cls(
        target=facts.target_key,
        fingerprint=leaf.fingerprint,
        subject=leaf.subject,
        issuer=leaf.issuer,
        not_after=leaf.not_after,
        owner=facts.owner,
        server=facts.server,
        **extra,
    )


def _key_change(before: LeafFacts, after: LeafFacts) -> KeyChange:
    if before.spki_sha256 is not None and after.spki_sha256 is not None:
        return "same_key" if before.spki_sha256 == after.spki_sha256 else "new_key"
    kind = (before.key_type, before.key_bits, before.key_curve)
    return "new_key" if kind != (after.key_type, after.key_bits, after.key_curve) else "key_kind_unchanged"


def _renewals(at_start: dict[str, TargetFacts], at_end: dict[str, TargetFacts]) -> list[Renewal]:
    renewed = []
    for key, after in at_end.items():
        before = at_start.get(key)
        if before is None or before.leaf is None or after.leaf is None:
            continue
        if before.leaf.fingerprint != after.leaf.fingerprint:
            renewed.append(
                _line(
                    Renewal,
                    after,
                    after.leaf,
                    previous_fingerprint=before.leaf.fingerprint,
                    previous_not_after=before.leaf.not_after,
                    key_change=_key_change(before.leaf, after.leaf),
                )
            )
    return renewed


def _expired(
    at_start: dict[str, TargetFacts], at_end: dict[str, TargetFacts], start: datetime, end: datetime
) -> list[Expired]:
    expired: dict[tuple[str, str], Expired] = {}
    for facts, served_at_end in [*((f, False) for f in at_start.values()), *((f, True) for f in at_end.values())]:
        leaf = facts.leaf
        if leaf is not None and start <= leaf.not_after < end:
            expired[(facts.target_key, leaf.fingerprint)] = _line(Expired, facts, leaf, still_served=served_at_end)
    return sorted(expired.values(), key=lambda e: (e.target, e.not_after))


def _target_change(facts: TargetFacts) -> TargetChange:
    return TargetChange(
        target=facts.target_key,
        evaluated_at=facts.evaluated_at,
        owner=facts.owner,
        server=facts.server,
        fingerprint=facts.leaf.fingerprint if facts.leaf is not None else None,
    )


def _alarms(steps: Sequence[AlarmStep], start: datetime, end: datetime) -> AlarmActivity:
    raised_at = {s.alarm_id: s.at for s in steps if s.transition == "raised"}
    changes: list[AlarmChange] = []
    for step in sorted(steps, key=lambda s: (s.at, s.alarm_id)):
        if not start <= step.at < end or step.transition not in ("raised", "acknowledged", "resolved"):
            continue
        since = raised_at.get(step.alarm_id) if step.transition == "resolved" else None
        changes.append(
            AlarmChange(
                alarm_id=step.alarm_id,
                target=step.target_key,
                trigger=step.trigger,
                level=step.level,
                transition=step.transition,
                at=step.at,
                hours_to_resolve=(step.at - since).total_seconds() / 3600.0 if since is not None else None,
            )
        )
    transitions = Counter(c.transition for c in changes)
    raised_levels = Counter(c.level for c in changes if c.transition == "raised")
    durations = [c.hours_to_resolve for c in changes if c.hours_to_resolve is not None]
    return AlarmActivity(
        raised=transitions["raised"],
        acknowledged=transitions["acknowledged"],
        resolved=transitions["resolved"],
        raised_by_level={level: raised_levels.get(level, 0) for level in LEVELS if level != "ok"},
        median_hours_to_resolve=statistics.median(durations) if durations else None,
        changes=changes,
    )


def _entering(at_end: Iterable[TargetFacts], end: datetime) -> list[WindowEntering]:
    windows: dict[int, list[CertificateLine]] = {days: [] for days in RENEWAL_WINDOWS_DAYS}
    for facts in at_end:
        if facts.leaf is None:
            continue
        for days in RENEWAL_WINDOWS_DAYS:
            if end <= facts.leaf.not_after - timedelta(days=days) < end + _WEEK:
                windows[days].append(_line(CertificateLine, facts, facts.leaf))
    return [WindowEntering(days=days, certificates=lines) for days, lines in windows.items()]


def _days(levels: Sequence[DayLevels], start: datetime, end: datetime) -> list[DayCount]:
    """One count per UTC day of the period, zero on a day nothing was evaluated."""
    by_day = {d.day: d.counts for d in levels}
    days = []
    moment = start
    while moment < end:
        counts = by_day.get(moment.date(), {})
        days.append(DayCount(day=moment.date(), by_level={level: counts.get(level, 0) for level in LEVELS}))
        moment += timedelta(days=1)
    return days


def build_weekly_report(
    at_start: Sequence[TargetFacts],
    at_end: Sequence[TargetFacts],
    first_seen: Sequence[TargetFacts],
    alarm_steps: Sequence[AlarmStep],
    levels_by_day: Sequence[DayLevels],
    *,
    start: datetime,
    end: datetime,
    now: datetime,
) -> WeeklyReport:
    """The trend report of `[start, end)` from the estate at its start and end (see the module's definitions),
    the first evaluations of certificates first seen in it, the alarm steps in it (with the raise of each alarm
    resolved in it) and the per-day level counts."""
    starting = {f.target_key: f for f in at_start}
    ending = {f.target_key: f for f in at_end}
    alarms = _alarms(alarm_steps, start, end)
    return WeeklyReport(
        generated_at=now,
        period_start=start,
        period_end=end,
        empty=not any(start <= f.evaluated_at < end for f in at_end) and not alarms.changes,
        at_start=totals(at_start),
        at_end=totals(at_end),
        first_seen=sorted(
            (_line(FirstSeen, f, f.leaf, seen_at=f.evaluated_at) for f in first_seen if f.leaf is not None),
            key=lambda c: (c.seen_at, c.target),
        ),
        renewed=sorted(_renewals(starting, ending), key=lambda r: r.target),
        expired=_expired(starting, ending, start, end),
        removed=sorted((_target_change(f) for k, f in starting.items() if k not in ending), key=lambda t: t.target),
        added=sorted((_target_change(f) for k, f in ending.items() if k not in starting), key=lambda t: t.target),
        alarms=alarms,
        entering_windows=_entering(at_end, end),
        levels_by_day=_days(levels_by_day, start, end),
        expirations_ahead=expirations_by_week(
            {f.leaf.fingerprint: f.leaf.not_after for f in at_end if f.leaf}.values(), end
        ),
    )
