"""The report builder: each kind read from the history and rendered in the formats asked for."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.reporter.adapters.memory import InMemoryHistory
from services.reporter.adapters.rendering import ReportRenderer
from services.reporter.domain.compliance import ComplianceReport
from services.reporter.domain.trends import WeeklyReport
from services.reporter.service_layer.building import ReportBuilder, UnknownFormat
from shared.config import CertmonConfig
from shared.config.reports import CompliancePolicy, Reports
from shared.events import TlsSummary
from tests.unit.reporter.reporter_factories import alarm, evaluation

WEEK = datetime(2026, 11, 23, tzinfo=UTC)
MONTH = datetime(2026, 11, 1, tzinfo=UTC)


def builder(history: InMemoryHistory, config: CertmonConfig | None = None) -> ReportBuilder:
    """A builder over `history` with the real renderer."""
    return ReportBuilder(history, ReportRenderer(), config or CertmonConfig())


async def test_a_weekly_report_comes_in_every_format_asked_for_in_that_order(tmp_path: Path) -> None:
    """Each format is one object named after the kind, with its content type."""
    history = InMemoryHistory()
    await history.record_evaluation("e1", evaluation("a.example", days=40, evaluated_at=WEEK + timedelta(days=1)))
    objects = await builder(history).build(
        "weekly",
        WEEK,
        WEEK + timedelta(days=7),
        now=WEEK + timedelta(days=7),
        formats=["pdf", "json", "csv", "html"],
        folder=tmp_path,
    )
    assert [(o.name, o.content_type) for o in objects] == [
        ("weekly.pdf", "application/pdf"),
        ("weekly.json", "application/json"),
        ("weekly.csv", "text/csv; charset=utf-8"),
        ("weekly.html", "text/html; charset=utf-8"),
    ]
    assert objects[0].path.read_bytes().startswith(b"%PDF-")
    assert b"weekly trends" in objects[3].path.read_bytes()


async def test_the_weekly_report_reads_the_week_from_the_history(tmp_path: Path) -> None:
    """A target renewed in the week, a certificate first seen and an alarm resolved show in the report."""
    history = InMemoryHistory()
    old = evaluation("old-cert", days=10, evaluated_at=WEEK - timedelta(hours=2))
    new = evaluation("new-cert", days=90, evaluated_at=WEEK + timedelta(days=2))
    await history.record_evaluation("e1", old.model_copy(update={"target_key": "shop.example:443"}))
    await history.record_evaluation("e2", new.model_copy(update={"target_key": "shop.example:443"}))
    await history.record_alarm("a1", alarm("x", "raised", "warning", WEEK - timedelta(hours=10)))
    await history.record_alarm("a2", alarm("x", "resolved", "ok", WEEK + timedelta(hours=2)))
    [data] = await builder(history).build(
        "weekly", WEEK, WEEK + timedelta(days=7), now=WEEK + timedelta(days=7), formats=["json"], folder=tmp_path
    )
    report = WeeklyReport.model_validate_json(data.path.read_bytes())
    assert [r.target for r in report.renewed] == ["shop.example:443"]
    assert [c.target for c in report.first_seen] == ["shop.example:443"]
    assert (report.alarms.resolved, report.alarms.median_hours_to_resolve) == (1, 12.0)


async def test_the_monthly_report_compares_with_the_estate_at_the_previous_months_end(tmp_path: Path) -> None:
    """Month over month compares with the estate at the start of the month; the configured policy is applied."""
    history = InMemoryHistory()
    end = datetime(2026, 12, 1, tzinfo=UTC)
    good = evaluation("a.example", days=40, evaluated_at=MONTH - timedelta(days=1))
    old_tls = evaluation("a.example", days=40, evaluated_at=end - timedelta(days=1))
    await history.record_evaluation("e1", good)
    await history.record_evaluation("e2", old_tls.model_copy(update={"tls": TlsSummary(versions=["TLSv1.1"])}))
    config = CertmonConfig(reports=Reports(compliance=CompliancePolicy(chain_problems=False)))
    [data] = await builder(history, config).build("monthly", MONTH, end, now=end, formats=["json"], folder=tmp_path)
    report = ComplianceReport.model_validate_json(data.path.read_bytes())
    assert report.previous is not None and report.previous.share == 1.0
    assert (report.summary.share, report.share_change) == (0.0, -1.0)
    assert [v.rule for v in report.violations[0].violations] == ["protocol"]


async def test_a_month_with_nothing_before_it_has_no_comparison(tmp_path: Path) -> None:
    """Without a certificate at the previous month's end there is no previous summary to compare with."""
    history = InMemoryHistory()
    end = datetime(2026, 12, 1, tzinfo=UTC)
    await history.record_evaluation("e1", evaluation("a.example", days=40, evaluated_at=end - timedelta(days=1)))
    [data] = await builder(history).build("monthly", MONTH, end, now=end, formats=["json"], folder=tmp_path)
    assert json.loads(data.path.read_bytes())["previous"] is None


async def test_the_daily_report_is_the_status_report_of_the_period(tmp_path: Path) -> None:
    """The daily kind renders the status report of the latest evaluations."""
    history = InMemoryHistory()
    await history.record_evaluation("e1", evaluation("a.example", days=40))
    day = datetime(2026, 11, 27, tzinfo=UTC)
    [data] = await builder(history).build(
        "daily", day, day + timedelta(days=1), now=day, formats=["csv"], folder=tmp_path
    )
    assert data.name == "daily.csv"
    assert b"a.example:443" in data.path.read_bytes()


async def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    """A format other than html, csv, json and pdf raises UnknownFormat, naming it."""
    with pytest.raises(UnknownFormat, match="'xlsx'"):
        await builder(InMemoryHistory()).build("daily", WEEK, WEEK, now=WEEK, formats=["html", "xlsx"], folder=tmp_path)
