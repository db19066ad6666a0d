"""The expiration timeline: a calendar of the coming days, week by week, and a bar per month for a year, each
target placed on the UTC day or month its certificate's notAfter falls in (pure: `now` is an argument)."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from services.reporter.domain.estate import ExpiryCount, TargetRow
from services.reporter.domain.report import LEVELS

CALENDAR_DAYS = 90
MONTHS = 12
#: Targets named in a calendar day; the others are counted and linked.
PER_DAY = 4


@dataclass(frozen=True, slots=True)
class CalendarDay:
    """One day of the calendar: targets expiring on it per level, the most urgent few named; `in_range` is
    false for the days that only fill the first and the last week."""

    day: date
    in_range: bool
    counts: dict[str, int] = field(default_factory=dict)
    entries: tuple[TargetRow, ...] = ()

    @property
    def total(self) -> int:
        """Targets expiring that day."""
        return sum(self.counts.values())

    @property
    def more(self) -> int:
        """Targets expiring that day that are not named."""
        return self.total - len(self.entries)


@dataclass(frozen=True, slots=True)
class MonthBar:
    """One calendar month: targets expiring in it per level (every level listed)."""

    month: date
    counts: dict[str, int]

    @property
    def total(self) -> int:
        """Targets expiring that month."""
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class Timeline:
    """The calendar from `start` until `end` (exclusive), Monday-first weeks, and `MONTHS` month bars."""

    start: date
    end: date
    weeks: tuple[tuple[CalendarDay, ...], ...]
    months: tuple[MonthBar, ...]

    @property
    def busiest_month(self) -> int:
        """The largest month total (at least 1), to scale the bars by."""
        return max((m.total for m in self.months), default=0) or 1


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def calendar_span(now: datetime) -> tuple[datetime, datetime]:
    """The calendar's `[start, end)`: from the start of `now`'s UTC day, CALENDAR_DAYS days."""
    today = now.astimezone(UTC).date()
    return _midnight(today), _midnight(today + timedelta(days=CALENDAR_DAYS))


def month_span(now: datetime) -> tuple[datetime, datetime]:
    """The month bars' `[start, end)`: from the first of `now`'s UTC month, MONTHS months."""
    first = now.astimezone(UTC).date().replace(day=1)
    return _midnight(first), _midnight(_add_months(first, MONTHS))


def _add_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def build_timeline(
    now: datetime,
    day_counts: Sequence[ExpiryCount],
    entries: Sequence[TargetRow],
    month_counts: Sequence[ExpiryCount],
) -> Timeline:
    """The timeline at `now` from the per-day and per-month counts of the store and the targets it named."""
    start, end = (moment.date() for moment in calendar_span(now))
    counts: dict[date, dict[str, int]] = defaultdict(dict)
    for count in day_counts:
        counts[count.start][count.level] = count.count
    named: dict[date, list[TargetRow]] = defaultdict(list)
    for row in entries:
        if row.not_after is not None:
            named[row.not_after.astimezone(UTC).date()].append(row)
    first_monday = start - timedelta(days=start.weekday())
    weeks = []
    monday = first_monday
    while monday < end:
        days = (monday + timedelta(days=n) for n in range(7))
        weeks.append(
            tuple(
                CalendarDay(day, start <= day < end, counts.get(day, {}), tuple(named.get(day, ())[:PER_DAY]))
                for day in days
            )
        )
        monday += timedelta(days=7)
    by_month: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(LEVELS, 0))
    for count in month_counts:
        by_month[count.start][count.level] = count.count
    first = month_span(now)[0].date()
    months = tuple(MonthBar(m, dict(by_month[m])) for m in (_add_months(first, n) for n in range(MONTHS)))
    return Timeline(start=start, end=end, weeks=tuple(weeks), months=months)
