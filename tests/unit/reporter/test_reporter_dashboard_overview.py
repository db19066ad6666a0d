"""The overview page: level and grade counts, the next expirations, open alarms, navigation; and the grade
table the daily report shares."""

from collections.abc import AsyncIterator

import pytest

from services.reporter.adapters.memory import InMemoryHistory
from services.reporter.adapters.rendering import ReportRenderer
from services.reporter.domain.report import build_status_report
from tests.unit.reporter.html_tables import body_rows, links, table, text_of
from tests.unit.reporter.reporter_app import JANE, READ, client_on, store_alarms
from tests.unit.reporter.reporter_factories import NOW, evaluation, statuses
from tests.unit.reporter.test_reporter_pages import assert_self_contained

ESTATE = [
    evaluation("fine.example", days=200, level="ok", grade="A+"),
    evaluation("soon.example", days=5, level="critical", grade="B", subject="CN=<script>alert(1)</script>"),
    evaluation("month.example", days=20, level="warning", grade="A"),
    evaluation("gone.example", days=-2, level="critical", grade="F"),
    evaluation("down.example", days=None, level="warning"),
]


@pytest.fixture
async def page() -> AsyncIterator[str]:
    """The overview of ESTATE with an open, an acknowledged and a resolved alarm."""
    history = InMemoryHistory()
    for n, item in enumerate(ESTATE):
        await history.record_evaluation(f"e{n}", item)
    await store_alarms(history)
    async with client_on(history) as client:
        response = await client.get("/", headers=READ)
        assert response.status_code == 200
        assert_self_contained(response)
        yield response.text


def test_levels_and_the_expired_are_counted_and_link_to_their_lists(page: str) -> None:
    """Each level's card counts its targets and links to the list filtered by it."""
    assert text_of(page, "level-critical").startswith("2")
    assert text_of(page, "level-warning").startswith("2")
    assert text_of(page, "level-ok").startswith("1")
    assert text_of(page, "expired-count") == "1"
    assert ("/certificates?level=critical", "2 critical") in links(page)


def test_each_grade_count_stands_in_its_grades_row(page: str) -> None:
    """The grade table has one row per grade, its count beside it, so no count can stand under another grade."""
    rows = table(page, "grade-distribution")
    assert rows[0] == ["Grade", "Targets", "Share"]
    counts = {row[0]: row[1] for row in rows[1:]}
    assert counts == {"A+": "1", "A": "1", "A-": "0", "B": "1", "C": "0", "D": "0", "E": "0", "F": "1"}


def test_the_next_expirations_start_from_now_soonest_first(page: str) -> None:
    """Certificates not yet expired, soonest first; the expired one and the one without a certificate are not
    among them; the hostile subject is text."""
    assert [row[0] for row in body_rows(page, "next-expirations")] == [
        "soon.example:443",
        "month.example:443",
        "fine.example:443",
    ]
    assert "<script>alert(1)" not in page and "CN=&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_open_alarms_show_who_acknowledged_and_when_most_severe_first(page: str) -> None:
    """Open and acknowledged alarms are listed, the critical first; the acknowledged one says by whom and when;
    the resolved one is not listed."""
    rows = body_rows(page, "open-alarms")
    assert [row[0] for row in rows] == ["open.example:443", "acked.example:443"]
    assert rows[1][3] == f"acknowledged by {JANE.by} at 2026-11-27 06:20 UTC"
    assert "1 open, 1 acknowledged" in page
    assert ("/alarms/open1", "open.example:443") in links(page)


def test_the_overview_reloads_itself_and_marks_its_place_in_the_navigation(page: str) -> None:
    """A refresh meta tag, and the navigation to every page with the overview as the current one."""
    assert '<meta http-equiv="refresh" content="60">' in page
    nav = [address for address, _ in links(page)][:6]
    assert nav == ["/", "/", "/certificates", "/timeline", "/alarms", "/reports"]
    assert '<a id="nav-overview" href="/" aria-current="page">' in page


async def test_an_empty_estate_says_so() -> None:
    """With nothing evaluated, every count is 0 and the lists say there is nothing."""
    async with client_on(InMemoryHistory()) as client:
        page = (await client.get("/", headers=READ)).text
    assert "No certificate expires from now on." in page
    assert "No open alarms." in page
    assert text_of(page, "level-critical").startswith("0")


async def test_without_a_sign_in_the_overview_sends_to_login() -> None:
    """A browser without credentials is sent to the sign-in form, to come back to the overview."""
    async with client_on(InMemoryHistory()) as client:
        response = await client.get("/")
    assert (response.status_code, response.headers["location"]) == (303, "/login?next=%2F")


def test_the_daily_reports_grade_headers_align_like_their_counts() -> None:
    """In the daily report's grade table each grade header is right-aligned like the count under it, so a
    browser never shows a count under the next grade."""
    html = ReportRenderer().to_html(build_status_report(statuses(ESTATE), [], now=NOW))
    assert '<th scope="col" class="num">A+</th>' in html
    assert "td.num, th.num { text-align: right;" in html
