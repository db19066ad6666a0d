"""Report periods (a UTC day, ISO week or calendar month), their labels, and when a scheduled report is due.

A period is `[start, end)` in UTC and is named by its label: `2026-12-05`, `2026-W49` or `2026-12`. A schedule
publishes one report per period at a moment inside it (an hour of the day, of a weekday, of a day of the month)
and covers either that period (the daily status report: the state of the day it is published on) or the whole
period before it (the weekly, monthly and custom reports). A report that fell due while nothing ran is still due
until its schedule's next moment: a reporter back from downtime catches up.

Pure: `now` is always an argument, and nothing here reads a clock.
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

PeriodKind = Literal["daily", "weekly", "monthly"]
Covers = Literal["current", "previous"]

_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_WEEK = re.compile(r"(\d{4})-W(\d{2})")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_FORMATS: dict[PeriodKind, str] = {
    "daily": "a day, YYYY-MM-DD",
    "weekly": "an ISO week, YYYY-Www",
    "monthly": "a month, YYYY-MM",
}


class PeriodError(ValueError):
    """A period that cannot be read, or is not of the kind asked for; the message says what was expected."""


@dataclass(frozen=True)
class Period:
    """A UTC day, ISO week or calendar month, `[start, end)`."""

    kind: PeriodKind
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        """`2026-12-05`, `2026-W49` or `2026-12`: how reports, bucket keys and the command line name it."""
        if self.kind == "daily":
            return f"{self.start:%Y-%m-%d}"
        if self.kind == "weekly":
            year, week, _ = self.start.date().isocalendar()
            return f"{year}-W{week:02d}"
        return f"{self.start:%Y-%m}"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _day(day: date) -> Period:
    return Period("daily", _midnight(day), _midnight(day + timedelta(days=1)))


def _week(monday: date) -> Period:
    return Period("weekly", _midnight(monday), _midnight(monday + timedelta(days=7)))


def _month(year: int, month: int) -> Period:
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return Period("monthly", _midnight(date(year, month, 1)), _midnight(following))


def period_of(kind: PeriodKind, moment: datetime) -> Period:
    """The day, ISO week or month (UTC) that contains `moment`."""
    day = moment.astimezone(UTC).date()
    if kind == "daily":
        return _day(day)
    if kind == "weekly":
        return _week(day - timedelta(days=day.weekday()))
    return _month(day.year, day.month)


def previous(period: Period) -> Period:
    """The whole period of the same kind just before `period`."""
    return period_of(period.kind, period.start - timedelta(microseconds=1))


def _read(value: str) -> Period | None:
    """The period `value` names, None if it has none of the three forms; ValueError for a date that does not
    exist (a month 13, June 31, week 54)."""
    if m := _DAY.fullmatch(value):
        return _day(date(int(m[1]), int(m[2]), int(m[3])))
    if m := _WEEK.fullmatch(value):
        return _week(date.fromisocalendar(int(m[1]), int(m[2]), 1))
    if m := _MONTH.fullmatch(value):
        return _month(int(m[1]), int(m[2]))
    return None


def parse_period(kind: PeriodKind | None, text: str) -> Period:
    """The period `text` names (`YYYY-MM-DD`, `YYYY-Www` or `YYYY-MM`); with `kind`, it must be of that kind.

    Raises PeriodError saying what was expected.
    """
    try:
        period = _read(text.strip())
    except ValueError as exc:
        raise PeriodError(f"{text!r} is no day, week or month of the calendar: {exc}") from exc
    if period is None:
        raise PeriodError(f"{text!r} is not a period: give a day YYYY-MM-DD, an ISO week YYYY-Www or a month YYYY-MM")
    if kind is not None and period.kind != kind:
        raise PeriodError(f"a {kind} report covers {_FORMATS[kind]}; {text!r} is {_FORMATS[period.kind]}")
    return period


@dataclass(frozen=True)
class Schedule:
    """When a report is published: once per `kind` period, from `hour_utc` on `weekday` (0 Monday, weekly) or
    on `day` of the month (monthly); it `covers` the period it is published in, or the whole one before."""

    kind: PeriodKind
    hour_utc: int
    covers: Covers
    weekday: int = 0
    day: int = 1

    def moment_in(self, period: Period) -> datetime:
        """The moment inside `period` (of this schedule's kind) from which the report is due."""
        offset = {"daily": 0, "weekly": self.weekday, "monthly": self.day - 1}[self.kind]
        return period.start + timedelta(days=offset, hours=self.hour_utc)

    def due(self, now: datetime) -> Period | None:
        """The period whose report should be out at `now`, or None before the first moment of a report that
        covers the current period (the daily status report is not published before its hour)."""
        current = period_of(self.kind, now)
        reached = self.moment_in(current) <= now
        if self.covers == "current":
            return current if reached else None
        return previous(current if reached else previous(current))
