"""The expiration timeline: its calendar and month bars (pure), and the page that shows them."""

from datetime import UTC, date, datetime, timedelta, timezone

from services.reporter.adapters.memory import InMemoryHistory
from services.reporter.domain.estate import ExpiryCount, target_row
from services.reporter.domain.timeline import CALENDAR_DAYS, MONTHS, PER_DAY, build_timeline, calendar_span, month_span
from tests.unit.reporter.html_tables import body_rows, links, text_of
from tests.unit.reporter.reporter_app import READ, client_on
from tests.unit.reporter.reporter_factories import NOW, evaluation
from tests.unit.reporter.test_reporter_pages import assert_self_contained


def test_the_calendar_starts_today_in_utc_whatever_the_time_zone() -> None:
    """20:00 on the 27th at UTC-8 is the 28th in UTC: the calendar starts on the 28th, for 90 days."""
    evening = datetime(2026, 11, 27, 20, 0, tzinfo=timezone(timedelta(hours=-8)))
    start, end = calendar_span(evening)
    assert (start, end - start) == (datetime(2026, 11, 28, tzinfo=UTC), timedelta(days=CALENDAR_DAYS))


def test_weeks_run_monday_to_sunday_and_pad_outside_the_range() -> None:
    """NOW is a Friday: the first week starts on the Monday before, its first four days outside the range."""
    timeline = build_timeline(NOW, [], [], [])
    first = timeline.weeks[0]
    assert [d.day for d in first] == [date(2026, 11, 23) + timedelta(days=n) for n in range(7)]
    assert [d.in_range for d in first] == [False] * 4 + [True] * 3
    in_range = [d for week in timeline.weeks for d in week if d.in_range]
    assert len(in_range) == CALENDAR_DAYS and in_range[-1].day == date(2027, 2, 24)


def test_a_day_names_the_first_few_and_counts_the_rest() -> None:
    """A day with more targets than PER_DAY names PER_DAY of them and says how many more."""
    day = NOW + timedelta(days=3)
    rows = [target_row(evaluation(f"h{n}.example", days=3, level="critical")) for n in range(PER_DAY)]
    counts = [ExpiryCount(day.date(), "critical", PER_DAY + 3), ExpiryCount(day.date(), "ok", 2)]
    cell = next(d for week in build_timeline(NOW, counts, rows, []).weeks for d in week if d.day == day.date())
    assert (cell.total, len(cell.entries), cell.more) == (PER_DAY + 5, PER_DAY, 5)


def test_months_list_a_year_with_every_level() -> None:
    """Twelve months from the current one, each with every level counted (0 when none)."""
    months = build_timeline(NOW, [], [], [ExpiryCount(date(2027, 1, 1), "warning", 4)]).months
    assert [m.month for m in months][:3] == [date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1)]
    assert len(months) == MONTHS and months[-1].month == date(2027, 10, 1)
    assert months[2].counts == {"critical": 0, "warning": 4, "info": 0, "ok": 0}
    assert month_span(NOW) == (datetime(2026, 11, 1, tzinfo=UTC), datetime(2027, 11, 1, tzinfo=UTC))


async def test_the_page_places_each_target_on_its_day_coloured_by_level() -> None:
    """Each target links to its certificate from its notAfter day, with its level's colour; a busy day links to
    the list of that day; each month links to its list."""
    history = InMemoryHistory()
    soon = evaluation("soon.example", days=3, level="critical", subject="CN=<script>x</script>")
    for n, item in enumerate(
        [soon, *(evaluation(f"busy{n}.example", days=3.01, level="ok") for n in range(PER_DAY + 1))]
    ):
        await history.record_evaluation(f"e{n}", item)
    await history.record_evaluation("late", evaluation("late.example", days=200, level="warning"))
    async with client_on(history) as client:
        response = await client.get("/timeline", headers=READ)
    assert response.status_code == 200
    assert_self_contained(response)
    page = response.text
    assert soon.certificate is not None
    assert f'<a class="entry entry-critical" href="/certificates/{soon.certificate.fingerprint_sha256}"' in page
    assert "<script>x" not in page
    day = text_of(page, "day-2026-11-30")
    assert day.startswith("Nov 30 soon.example:443") and "+2 more" in day
    assert ("/certificates?expires=2026-11-30", "+2 more") in links(page)
    months = {row[0]: row[1] for row in body_rows(page, "month-bars")}
    assert months["November 2026"] == str(PER_DAY + 2) and months["June 2027"] == "1"
    assert ("/certificates?expires=2027-06&sort=expiry", "June 2027") in links(page)
