"""The reporter's pure rules: the status report of the estate at a moment, and the order of certificates.

Nothing here reads a clock or does I/O; `now` is always an argument and every datetime is timezone-aware UTC.
"""

import re
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Literal, overload

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, ValidatorFunctionWrapHandler, WrapValidator

from services.reporter.domain.status import TargetStatus
from shared.events import AlarmEvent, AlarmState
from shared.events.evaluation import LEVEL_ORDER

LEVELS: tuple[str, ...] = ("critical", "warning", "info", "ok")
GRADES: tuple[str, ...] = ("A+", "A", "A-", "B", "C", "D", "E", "F")
EXPIRY_WINDOWS_DAYS: tuple[int, ...] = (7, 30, 90)
ALARM_LOOKBACK = timedelta(hours=24)
_SECONDS_PER_DAY = 86400.0
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ReportModel(BaseModel):
    """Report parts are immutable values, so a report renders the same way every time."""

    model_config = ConfigDict(frozen=True)


class FindingLine(ReportModel):
    """One finding as a report shows it."""

    code: str
    severity: str
    message: str


class CertificateRow(ReportModel):
    """One target and the certificate it serves, as of the report's moment."""

    target: str
    level: str
    grade: str | None = None
    reachable: bool
    fingerprint_sha256: str | None = None
    subject: str | None = None
    issuer: str | None = None
    not_after: datetime | None = None
    days_remaining: float | None = None
    owner: str | None = None
    evaluated_at: datetime
    top_findings: list[FindingLine] = Field(default_factory=list)


class Totals(ReportModel):
    """How many targets and how they spread over levels and grades (every level and grade, maybe 0)."""

    targets: int
    certificates: int
    by_level: dict[str, int]
    by_grade: dict[str, int]


class ExpiryWindow(ReportModel):
    """Certificates not yet expired that expire within `days` days of the report's moment."""

    days: int
    count: int
    targets: list[str]


class UnreachableTarget(ReportModel):
    """A target the last scan could not observe, and why."""

    target: str
    kind: str | None = None
    message: str | None = None
    evaluated_at: datetime


class AlarmLine(ReportModel):
    """One alarm transition as a report lists it (an open alarm: its latest); who acknowledged the alarm and when,
    while it is acknowledged. The history reads a report's transitions as these eight fields (and the alarm's id),
    not as whole `AlarmEvent`s."""

    alarm_id: str
    target: str
    trigger: str
    level: str
    transition: str
    at: datetime
    state: AlarmState = "open"
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None


def normalize_fingerprint(text: str) -> str | None:
    """A fingerprint as typed (colons, spaces, either case) in canonical form, or None if it is not one."""
    canonical = re.sub(r"[:\s]", "", text).lower()
    return canonical if _HEX64.match(canonical) else None


def daily_period(now: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar day that contains `now`, as [start, end)."""
    start = datetime.combine(now.astimezone(UTC).date(), time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def days_remaining(status: TargetStatus, now: datetime) -> float | None:
    """Days from `now` to notAfter (negative once expired); the evaluated figure without a certificate."""
    if status.not_after is not None:
        return (status.not_after - now).total_seconds() / _SECONDS_PER_DAY
    return status.days_remaining


#: The fields every row and finding line sets, one set each shared by all of them (read-only: the models are
#: frozen, and pydantic copies it before a `model_copy` updates it): a set per instance was a third of the rows'
#: memory at 100,000 targets.
_ROW_FIELDS = set(CertificateRow.model_fields)
_FINDING_FIELDS = set(FindingLine.model_fields)


def certificate_row(status: TargetStatus, now: datetime) -> CertificateRow:
    """The report row of one target's status at `now` (built from the status's typed values, not validated
    again: the status reports make 100,000 of them)."""
    return CertificateRow.model_construct(
        _ROW_FIELDS,
        target=status.target_key,
        level=status.level,
        grade=status.grade,
        reachable=status.reachable,
        fingerprint_sha256=status.fingerprint,
        subject=status.subject,
        issuer=status.issuer,
        not_after=status.not_after,
        days_remaining=days_remaining(status, now),
        owner=status.owner,
        evaluated_at=status.evaluated_at,
        top_findings=[
            FindingLine.model_construct(_FINDING_FIELDS, code=code, severity=severity, message=message)
            for code, severity, message in status.findings
        ],
    )


class CertificateRows(Sequence[CertificateRow]):
    """A status report's rows: made from the targets' statuses (in the report's order) each time they are walked,
    so a report holds the slim statuses rather than a row model per target (+164 MB at 100,000 targets); each
    format walks them once, as it writes."""

    def __init__(self, statuses: Sequence[TargetStatus], now: datetime) -> None:
        self._statuses, self._now = statuses, now

    def __len__(self) -> int:
        return len(self._statuses)

    @overload
    def __getitem__(self, index: int) -> CertificateRow: ...

    @overload
    def __getitem__(self, index: slice) -> list[CertificateRow]: ...

    def __getitem__(self, index: int | slice) -> CertificateRow | list[CertificateRow]:
        if isinstance(index, slice):
            return [certificate_row(s, self._now) for s in self._statuses[index]]
        return certificate_row(self._statuses[index], self._now)

    def __iter__(self) -> Iterator[CertificateRow]:
        return (certificate_row(s, self._now) for s in self._statuses)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)


def _kept(value: object, validate: ValidatorFunctionWrapHandler) -> object:
    return value if isinstance(value, CertificateRows) else validate(value)


#: A status report's rows: its `CertificateRows` as they are (not walked to be validated), or a list validated (a
#: report read back from its JSON); dumped as a list.
Rows = Annotated[
    Sequence[CertificateRow], WrapValidator(_kept), PlainSerializer(list, return_type=list[CertificateRow])
]


class StatusReport(ReportModel):
    """The status of the whole estate at `generated_at` (the daily report, and what the dashboard shows)."""

    kind: Literal["daily", "weekly", "monthly", "custom"] = "daily"
    name: str | None = None  # a custom report's name
    generated_at: datetime
    period_start: datetime
    period_end: datetime
    totals: Totals
    certificates: Rows
    expired: list[str]
    expiring: list[ExpiryWindow]
    unreachable: list[UnreachableTarget]
    open_alarms: list[AlarmLine]
    alarms_raised: list[AlarmLine]
    alarms_resolved: list[AlarmLine]


def _soonest_first(days: float | None, target: str) -> tuple[bool, float, str]:
    return (days is None, days or 0.0, target)


def by_days_remaining(row: CertificateRow) -> tuple[bool, float, str]:
    """Sort key: soonest expiry first, rows without a certificate last, then by target."""
    return _soonest_first(row.days_remaining, row.target)


def by_urgency(row: CertificateRow) -> tuple[int, bool, float, str]:
    """Sort key: most severe level first, then soonest expiry, then by target."""
    return (-LEVEL_ORDER.get(row.level, 0), *by_days_remaining(row))


def open_alarms(transitions: Iterable[AlarmLine]) -> list[AlarmLine]:
    """The latest transition of every alarm not resolved: open ones and acknowledged ones."""
    latest: dict[str, AlarmLine] = {}
    for line in sorted(transitions, key=lambda line: line.at):
        latest[line.alarm_id] = line
    return [line for line in latest.values() if line.state != "resolved"]


#: The fields every alarm line sets, one set shared by all of them (as `_ROW_FIELDS`; the history's projection
#: builds its lines with it too).
ALARM_LINE_FIELDS = set(AlarmLine.model_fields)


def alarm_line(event: AlarmEvent) -> AlarmLine:
    """The line of one alarm transition."""
    ack = event.acknowledgement if event.state == "acknowledged" else None
    return AlarmLine.model_construct(
        ALARM_LINE_FIELDS,
        alarm_id=event.alarm_id,
        target=event.key.target_key,
        trigger=event.key.trigger,
        level=event.level,
        transition=event.transition,
        at=event.occurred_at,
        state=event.state,
        acknowledged_by=ack.by if ack else None,
        acknowledged_at=ack.at if ack else None,
    )


def _alarm_order(line: AlarmLine) -> tuple[int, datetime]:
    return (-LEVEL_ORDER.get(line.level, 0), line.at)


@dataclass(frozen=True)
class StatusAlarms:
    """The alarms a status report at a moment lists: each alarm not resolved (most severe first, then oldest), and
    those raised (in the same order) and resolved (oldest first) in the 24 h before it."""

    open: list[AlarmLine]
    raised: list[AlarmLine]
    resolved: list[AlarmLine]

    def of_targets(self, targets: Collection[str]) -> "StatusAlarms":
        """The alarms of `targets` only (an alarm is of one target)."""
        return StatusAlarms(
            *([a for a in lines if a.target in targets] for lines in (self.open, self.raised, self.resolved))
        )


def alarm_lines(transitions: Iterable[AlarmLine | AlarmEvent], now: datetime) -> StatusAlarms:
    """What a status report at `now` lists of the alarm history (at least each alarm's latest transition, and every
    transition of the 24 h before `now`, as events or already as lines): the slim lines, so the history can go
    before the targets are read."""
    lines = [t if isinstance(t, AlarmLine) else alarm_line(t) for t in transitions]
    since = now - ALARM_LOOKBACK
    recent = [line for line in lines if since <= line.at <= now]
    return StatusAlarms(
        open=sorted(open_alarms(lines), key=_alarm_order),
        raised=sorted((a for a in recent if a.transition == "raised"), key=_alarm_order),
        resolved=sorted((a for a in recent if a.transition == "resolved"), key=lambda a: a.at),
    )


def build_status_report(
    statuses: Sequence[TargetStatus],
    alarms: Iterable[AlarmEvent | AlarmLine] | StatusAlarms,
    *,
    now: datetime,
    kind: Literal["daily", "weekly", "monthly", "custom"] = "daily",
    period: tuple[datetime, datetime] | None = None,
) -> StatusReport:
    """The status report at `now` from the status of each target's latest evaluation and the alarm history (at
    least each alarm's latest transition, and every transition of the 24 h before `now`, as events or lines), or
    the lines `alarm_lines` made of it.

    `period` defaults to the UTC day of `now`; alarms raised or resolved count when they happened in the 24 h
    before `now`.
    """
    period_start, period_end = period or daily_period(now)
    lines = alarms if isinstance(alarms, StatusAlarms) else alarm_lines(alarms, now)
    ordered = sorted(statuses, key=lambda s: _soonest_first(days_remaining(s, now), s.target_key))
    # (target, days left) of each certificate, soonest first: what the expiry lists take of the rows.
    expiries = [(s.target_key, days_remaining(s, now) or 0.0) for s in ordered if s.not_after is not None]
    levels = Counter(s.level for s in statuses)
    grades = Counter(s.grade for s in statuses if s.grade is not None)
    return StatusReport(
        kind=kind,
        generated_at=now,
        period_start=period_start,
        period_end=period_end,
        totals=Totals(
            targets=len(statuses),
            certificates=len({s.fingerprint for s in statuses if s.not_after is not None}),
            by_level={level: levels.get(level, 0) for level in LEVELS},
            by_grade={grade: grades.get(grade, 0) for grade in GRADES},
        ),
        certificates=CertificateRows(ordered, now),
        expired=[target for target, days in expiries if days < 0],
        expiring=[_window(expiries, days) for days in EXPIRY_WINDOWS_DAYS],
        unreachable=[
            UnreachableTarget(
                target=s.target_key, kind=s.error_kind, message=s.error_message, evaluated_at=s.evaluated_at
            )
            for s in sorted(statuses, key=lambda s: s.target_key)
            if not s.reachable
        ],
        open_alarms=lines.open,
        alarms_raised=lines.raised,
        alarms_resolved=lines.resolved,
    )


def _window(expiries: Sequence[tuple[str, float]], days: int) -> ExpiryWindow:
    inside = [target for target, left in expiries if 0 <= left <= days]
    return ExpiryWindow(days=days, count=len(inside), targets=inside)
