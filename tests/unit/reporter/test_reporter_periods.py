"""Report periods: days, ISO weeks and months in UTC, their labels and parsing, and when each schedule is due."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.reporter.domain.periods import Period, PeriodError, Schedule, parse_period, period_of, previous


def utc(*args: int) -> datetime:
    """A UTC moment."""
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "moment", "start", "end", "label"),
    [
        ("daily", utc(2026, 12, 5, 23, 59, 59), utc(2026, 12, 5), utc(2026, 12, 6), "2026-12-05"),
        ("weekly", utc(2026, 12, 5, 12), utc(2026, 11, 30), utc(2026, 12, 7), "2026-W49"),
        ("weekly", utc(2026, 11, 30), utc(2026, 11, 30), utc(2026, 12, 7), "2026-W49"),
        ("weekly", utc(2027, 1, 2), utc(2026, 12, 28), utc(2027, 1, 4), "2026-W53"),
        ("weekly", utc(2025, 12, 31), utc(2025, 12, 29), utc(2026, 1, 5), "2026-W01"),
        ("monthly", utc(2026, 12, 31, 23), utc(2026, 12, 1), utc(2027, 1, 1), "2026-12"),
        ("monthly", utc(2028, 2, 29), utc(2028, 2, 1), utc(2028, 3, 1), "2028-02"),
    ],
)
def test_period_of_a_moment_and_its_label(
    kind: str, moment: datetime, start: datetime, end: datetime, label: str
) -> None:
    """A moment lies in one UTC day, ISO week (Monday to Monday, ISO year across New Year) and month."""
    period = period_of(kind, moment)
    assert (period.start, period.end, period.label) == (start, end, label)


def test_a_moment_in_another_zone_belongs_to_its_utc_day() -> None:
    """01:00 on the 6th at UTC+2 is still the 5th in UTC."""
    plus_two = timezone(timedelta(hours=2))
    assert period_of("daily", datetime(2026, 12, 6, 1, 0, tzinfo=plus_two)).label == "2026-12-05"


@pytest.mark.parametrize(
    ("text", "label"),
    [("2026-12-05", "2026-12-05"), (" 2026-W49 ", "2026-W49"), ("2026-W01", "2026-W01"), ("2026-12", "2026-12")],
)
def test_parse_period_reads_each_form_back_to_its_label(text: str, label: str) -> None:
    """Each form the command line takes names the period whose label it is."""
    assert parse_period(None, text).label == label


def test_parse_period_of_a_kind_checks_the_form() -> None:
    """A weekly report takes a week; a day given to it is refused, saying what a weekly report takes."""
    assert parse_period("weekly", "2026-W49") == Period("weekly", utc(2026, 11, 30), utc(2026, 12, 7))
    with pytest.raises(PeriodError, match=r"a weekly report covers an ISO week, YYYY-Www; '2026-12-05' is a day"):
        parse_period("weekly", "2026-12-05")
    with pytest.raises(PeriodError, match="a monthly report covers a month, YYYY-MM"):
        parse_period("monthly", "2026-W49")


@pytest.mark.parametrize("text", ["2026-13", "2026-02-30", "2026-W54", "2026-W00", "2026-00"])
def test_parse_period_refuses_dates_that_do_not_exist(text: str) -> None:
    """Month 13, February 30 and week 54 have the right form but are not in the calendar."""
    with pytest.raises(PeriodError, match="is no day, week or month of the calendar"):
        parse_period(None, text)


@pytest.mark.parametrize("text", ["", "yesterday", "2026-12-5", "2026W49", "26-12", "2026-12-05T00:00"])
def test_parse_period_refuses_other_text_naming_the_forms(text: str) -> None:
    """Anything else is refused with the three forms spelt out."""
    with pytest.raises(PeriodError, match="give a day YYYY-MM-DD, an ISO week YYYY-Www or a month YYYY-MM"):
        parse_period(None, text)


def test_previous_is_the_whole_period_before() -> None:
    """Before 2026-W01 is 2025-W52; before January, December; before March 1st, February 28th."""
    assert previous(parse_period(None, "2026-W01")).label == "2025-W52"
    assert previous(parse_period(None, "2026-01")).label == "2025-12"
    assert previous(parse_period(None, "2026-03-01")).label == "2026-02-28"


DAILY = Schedule("daily", 6, "current")
WEEKLY = Schedule("weekly", 6, "previous")  # Monday 06:00
MONTHLY = Schedule("monthly", 6, "previous", day=3)


def label(period: Period | None) -> str | None:
    """A due period's label (None: nothing due)."""
    return period.label if period is not None else None


def test_daily_status_is_due_from_its_hour_and_covers_that_day() -> None:
    """Before 06:00 nothing is due (yesterday's is not caught up); from 06:00 on, today's day is."""
    assert DAILY.due(utc(2026, 12, 5, 5, 59, 59)) is None
    assert label(DAILY.due(utc(2026, 12, 5, 6))) == "2026-12-05"
    assert label(DAILY.due(utc(2026, 12, 5, 23, 59))) == "2026-12-05"


def test_weekly_is_due_from_monday_and_covers_the_week_before() -> None:
    """From Monday 06:00 the previous ISO week is due, and stays due all week (catching up after downtime);
    one second earlier it is still the week before that."""
    assert label(WEEKLY.due(utc(2026, 12, 7, 6))) == "2026-W49"
    assert label(WEEKLY.due(utc(2026, 12, 13, 23, 59))) == "2026-W49"
    assert label(WEEKLY.due(utc(2026, 12, 7, 5, 59, 59))) == "2026-W48"


def test_weekly_on_another_weekday() -> None:
    """A Wednesday schedule publishes the previous ISO week from Wednesday on."""
    wednesday = Schedule("weekly", 0, "previous", weekday=2)
    assert label(wednesday.due(utc(2026, 12, 8, 23, 59))) == "2026-W48"
    assert label(wednesday.due(utc(2026, 12, 9))) == "2026-W49"


def test_monthly_is_due_from_its_day_and_covers_the_month_before() -> None:
    """From the 3rd at 06:00 the previous month is due; before, the month before that."""
    assert label(MONTHLY.due(utc(2027, 1, 3, 6))) == "2026-12"
    assert label(MONTHLY.due(utc(2027, 1, 3, 5, 59))) == "2026-11"
    assert label(MONTHLY.due(utc(2027, 1, 31, 23))) == "2026-12"


def test_a_custom_daily_schedule_covers_the_day_before() -> None:
    """A schedule covering the previous day publishes yesterday from the hour on, and the day before until then."""
    yesterday = Schedule("daily", 6, "previous")
    assert label(yesterday.due(utc(2026, 12, 5, 6))) == "2026-12-04"
    assert label(yesterday.due(utc(2026, 12, 5, 5))) == "2026-12-03"
