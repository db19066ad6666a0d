"""Every report kind rendered as JSON, CSV, HTML and PDF: hostile certificate fields stay text, the CSV runs no
formula, the HTML is self-contained with its charts inline, and an empty period says so."""

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from pydantic_core import to_json

from services.reporter.adapters.csv_export import guard
from services.reporter.adapters.rendering import ReportRenderer
from services.reporter.domain.compliance import ComplianceReport, build_compliance_report, compliance_summary
from services.reporter.domain.facts import DayLevels, alarm_step, facts_of
from services.reporter.domain.report import StatusReport, build_status_report
from services.reporter.domain.trends import WeeklyReport, build_weekly_report
from services.reporter.ports import AnyReport
from shared.config.reports import CompliancePolicy, ReportFormat
from shared.events import ChainInfo, Evaluation, Finding, TlsSummary
from tests.unit.reporter.reporter_factories import NOW, alarm, evaluation, statuses

HOSTILE = '<script>alert("x")</script><img src=https://evil.example/x>'
FORMULA = '=HYPERLINK("https://evil.example","click")'
START = datetime(2026, 11, 23, tzinfo=UTC)
END = START + timedelta(days=7)


def hostile(host: str, *, at: datetime, subject: str = HOSTILE, issuer: str = FORMULA) -> Evaluation:
    """An evaluation of `host` whose certificate names are attacker-chosen, with an old protocol and a bad chain
    so it breaks the compliance policy too."""
    base = evaluation(host, days=-1 if host.startswith("expired") else 40, subject=subject, evaluated_at=at)
    assert base.certificate is not None
    return base.model_copy(
        update={
            "certificate": base.certificate.model_copy(update={"issuer": issuer, "san": [HOSTILE]}),
            "owner": FORMULA,
            "tls": TlsSummary(versions=["TLSv1.0", "TLSv1.2"]),
            "chain": ChainInfo(complete=False, trusted=True),
            "findings": [Finding(code="tls.tls10", severity="warning", message=HOSTILE)],
        }
    )


@pytest.fixture(scope="module")
def renderer() -> ReportRenderer:
    """One renderer for the module (building the template environment and charts once)."""
    return ReportRenderer()


def status_report() -> StatusReport:
    """A daily report of two hostile certificates."""
    evaluations = [hostile("a.example", at=NOW), hostile("expired.example", at=NOW)]
    return build_status_report(statuses(evaluations), [alarm("a1", "raised", "critical", NOW)], now=NOW)


def weekly_report() -> WeeklyReport:
    """A week in which a hostile certificate replaced another, with an alarm raised and resolved."""
    before = facts_of(hostile("a.example", at=START - timedelta(hours=1), subject="CN=old"))
    after = facts_of(
        hostile("b.example", at=END - timedelta(hours=1)).model_copy(update={"target_key": "a.example:443"})
    )
    steps = [
        alarm_step(alarm("a1", "raised", "critical", START + timedelta(hours=1))),
        alarm_step(alarm("a1", "resolved", "ok", START + timedelta(hours=3))),
    ]
    levels = [
        DayLevels(day=START.date(), counts={"critical": 1}),
        DayLevels(day=END.date() - timedelta(days=1), counts={"ok": 1}),
    ]
    return build_weekly_report([before], [after], [after], steps, levels, start=START, end=END, now=END)


def compliance_report() -> ComplianceReport:
    """A month whose one certificate is hostile and non-compliant, compared with a month before it."""
    estate = [facts_of(hostile("a.example", at=END - timedelta(hours=1)))]
    policy = CompliancePolicy()
    previous = compliance_summary([facts_of(evaluation("a.example", days=60))], policy, as_of=START)
    return build_compliance_report(estate, policy=policy, previous=previous, start=START, end=END, now=END)


REPORTS = [
    pytest.param(status_report, id="daily"),
    pytest.param(weekly_report, id="weekly"),
    pytest.param(compliance_report, id="monthly"),
]


@pytest.mark.parametrize("make", REPORTS)
def test_html_escapes_hostile_certificate_fields(renderer: ReportRenderer, make: Callable[[], AnyReport]) -> None:
    """A subject, SAN, owner or finding message carrying markup shows as text: no script, no image tag."""
    html = renderer.render(make(), "html").decode()
    assert not Elements(html).tags & {"script", "img"}
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


class Elements(HTMLParser):
    """The tags of a page and every URL-bearing attribute, as a browser's parser reads them."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.links: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.links += [value or "" for name, value in attrs if name in ("src", "href", "xlink:href", "action")]


@pytest.mark.parametrize("make", REPORTS)
def test_html_is_self_contained_with_its_charts_inline(renderer: ReportRenderer, make: Callable[[], AnyReport]) -> None:
    """Each page carries an inline SVG chart and loads nothing: no script, link, image or frame element, and no
    reference but to a fragment of the page itself (the chart's own glyphs)."""
    html = renderer.render(make(), "html").decode()
    elements = Elements(html)
    assert "svg" in elements.tags
    assert "<?xml" not in html
    assert not elements.tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert all(link.startswith("#") for link in elements.links)
    assert "@import" not in html
    assert "url(" not in html


@pytest.mark.parametrize(
    ("make", "charts"),
    [(status_report, 1), (weekly_report, 2), (compliance_report, 2)],
    ids=["daily", "weekly", "monthly"],
)
def test_each_kind_carries_its_charts(renderer: ReportRenderer, make: Callable[[], AnyReport], charts: int) -> None:
    """Daily: expirations ahead; weekly: levels over the week and expirations ahead; monthly: issuing CAs and key
    kinds."""
    assert renderer.render(make(), "html").decode().count("<svg ") == charts


@pytest.mark.parametrize("make", REPORTS)
def test_the_same_report_renders_to_the_same_bytes(renderer: ReportRenderer, make: Callable[[], AnyReport]) -> None:
    """Charts carry no date and fixed ids, so HTML renders deterministically."""
    report = make()
    assert renderer.render(report, "html") == renderer.render(report, "html")


@pytest.mark.parametrize("make", REPORTS)
def test_pdf_is_a_pdf_document(renderer: ReportRenderer, make: Callable[[], AnyReport]) -> None:
    """The PDF rendering of each kind is a PDF file."""
    assert renderer.render(make(), "pdf").startswith(b"%PDF-")


@pytest.mark.parametrize("make", REPORTS)
def test_json_validates_back_into_the_report(renderer: ReportRenderer, make: Callable[[], AnyReport]) -> None:
    """The JSON object is the report's model dump: it reads back into an equal report."""
    report = make()
    assert type(report).model_validate_json(renderer.render(report, "json")) == report


@pytest.mark.parametrize("make", REPORTS)
def test_csv_runs_no_formula(renderer: ReportRenderer, make: Callable[[], AnyReport]) -> None:
    """No cell of any CSV starts with a character a spreadsheet reads as a formula; the hostile issuer is there,
    guarded."""
    rows = list(csv.reader(io.StringIO(renderer.render(make(), "csv").decode())))
    assert len(rows) > 1
    cells = [cell for row in rows[1:] for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or (c[:1] == "-" and not _number(c))]
    assert "'" + FORMULA in cells


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1+1", "@SUM(A1)", "\t=1", "\r=1"])
def test_guard_prefixes_every_formula_start(text: str) -> None:
    """Text starting with =, +, -, @, a tab or a carriage return gets an apostrophe in front."""
    assert guard(text) == "'" + text


def test_guard_leaves_numbers_moments_and_plain_text() -> None:
    """Numbers (even negative), moments and ordinary text are written as they are; None is empty."""
    assert guard(-3.5) == -3.5
    assert guard(NOW) == "2026-11-27T06:30:00+00:00"
    assert guard("CN=shop") == "CN=shop"
    assert (guard(None), guard(True)) == ("", "yes")


def test_an_empty_week_says_so(renderer: ReportRenderer) -> None:
    """A week with nothing evaluated and no alarm says plainly there is no trend to report."""
    empty = build_weekly_report([], [], [], [], [], start=START, end=END, now=END)
    assert "Nothing was evaluated and no alarm moved during this week" in renderer.render(empty, "html").decode()


def test_an_empty_month_says_so(renderer: ReportRenderer) -> None:
    """A month with no certificate says none could be checked, and gives no share."""
    empty = build_compliance_report([], policy=CompliancePolicy(), previous=None, start=START, end=END, now=END)
    html = renderer.render(empty, "html").decode()
    assert "No certificate was observed at the end of this month" in html
    assert "no comparison" in html


def test_long_lists_stop_in_html_and_say_where_the_rest_is(renderer: ReportRenderer) -> None:
    """A list longer than the page shows says how many there are; the CSV has every row."""
    evaluations = [hostile(f"h{i}.example", at=END - timedelta(hours=1)) for i in range(150)]
    report = build_compliance_report(
        [facts_of(e) for e in evaluations], policy=CompliancePolicy(), previous=None, start=START, end=END, now=END
    )
    assert "Showing 100 of 150" in renderer.render(report, "html").decode()
    assert len(renderer.render(report, "csv").decode().splitlines()) == 1 + 150 * 2  # protocol and chain each


def empty_status_report() -> StatusReport:
    """A status report without certificates, alarms or anything unreachable."""
    return build_status_report([], [], now=NOW)


@pytest.mark.parametrize("make", [*REPORTS, pytest.param(empty_status_report, id="empty")])
def test_json_written_piece_by_piece_is_the_model_dump_byte_for_byte(
    renderer: ReportRenderer, make: Callable[[], AnyReport]
) -> None:
    """The JSON written a field and a list item at a time is exactly pydantic's indented dump of the report."""
    report = make()
    assert renderer.render(report, "json") == to_json(report, indent=2)


@pytest.mark.parametrize("fmt", ["html", "csv", "json"])
@pytest.mark.parametrize("make", REPORTS)
def test_a_format_written_to_a_file_is_its_rendering(
    renderer: ReportRenderer, make: Callable[[], AnyReport], fmt: ReportFormat, tmp_path: Path
) -> None:
    """Written into a file as it is rendered (after what the file already holds, which stays), each format has
    the bytes `render` gives."""
    report = make()
    with (tmp_path / "out").open("wb") as out:
        out.write(b"before ")
        renderer.write(report, fmt, out)
        out.write(b" after")
    assert (tmp_path / "out").read_bytes() == b"before " + renderer.render(report, fmt) + b" after"
