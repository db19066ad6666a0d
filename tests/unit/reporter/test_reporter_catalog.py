"""The reports certmon.yaml defines: which are scheduled and when, their formats and names, the daily hour the
environment may override, and the period a report built on demand covers by default."""

import pytest

from services.reporter.domain.catalog import UnknownReport, adhoc_spec, daily_hour, report_spec, scheduled_reports
from services.reporter.domain.periods import parse_period
from shared.config import ReportFilter, Reports
from tests.unit.reporter.reporter_factories import NOW

REPORTS = Reports.model_validate(
    {
        "weekly": {"weekday": "wednesday", "hour_utc": 4},
        "monthly": {"enabled": False},
        "formats": ["html", "pdf"],
        "custom": [
            {"name": "shop-expiring", "schedule": "daily", "filter": {"owner": ["shop-team"]}, "formats": ["csv"]},
            {"name": "by-hand", "schedule": "off"},
        ],
    }
)


def test_scheduled_reports_follow_the_config() -> None:
    """Enabled built-in kinds with the config's formats and timing, and custom reports not `off`."""
    scheduled = scheduled_reports(REPORTS, daily_hour_utc=6)
    assert [(s.spec.kind, s.spec.name, s.spec.formats) for s in scheduled] == [
        ("daily", None, ("html", "pdf")),
        ("weekly", None, ("html", "pdf")),
        ("custom", "shop-expiring", ("csv",)),
    ]
    daily, weekly, custom = (s.schedule for s in scheduled)
    assert (daily.kind, daily.hour_utc, daily.covers) == ("daily", 6, "current")
    assert (weekly.weekday, weekly.hour_utc, weekly.covers) == (2, 4, "previous")
    assert (custom.kind, custom.covers) == ("daily", "previous")


def test_daily_hour_from_the_environment_overrides_the_config() -> None:
    """CERTMON_DAILY_REPORT_HOUR_UTC given explicitly wins (None: no daily report); else reports.daily.hour_utc;
    `enabled: false` turns it off either way."""
    reports = Reports.model_validate({"daily": {"hour_utc": 5}})
    assert daily_hour(reports, setting=6, setting_given=False) == 5
    assert daily_hour(reports, setting=9, setting_given=True) == 9
    assert daily_hour(reports, setting=None, setting_given=True) is None
    off = Reports.model_validate({"daily": {"enabled": False}})
    assert daily_hour(off, setting=9, setting_given=True) is None
    assert [s.spec.kind for s in scheduled_reports(off, daily_hour_utc=None)] == ["weekly", "monthly"]


def test_report_specs_by_kind_and_name() -> None:
    """A built-in kind takes `reports.formats`; a custom report its own; an unknown name is refused, listing
    the configured ones."""
    assert report_spec(REPORTS, "monthly").formats == ("html", "pdf")
    shop = report_spec(REPORTS, "custom", "shop-expiring")
    assert (shop.name, shop.formats) == ("shop-expiring", ("csv",))
    assert shop.prefix(parse_period(None, "2026-12-05")) == "custom/shop-expiring/2026-12-05"
    assert report_spec(REPORTS, "weekly").prefix(parse_period(None, "2026-W49")) == "weekly/2026-W49"
    with pytest.raises(UnknownReport, match=r"'nope' .*\(shop-expiring, by-hand\)"):
        report_spec(REPORTS, "custom", "nope")


def test_default_periods_of_reports_on_demand() -> None:
    """Without --period: today for the daily status and unscheduled custom reports, else the previous whole
    period of the report's kind or schedule."""
    assert report_spec(REPORTS, "daily").default_period(NOW).label == "2026-11-27"
    assert report_spec(REPORTS, "weekly").default_period(NOW).label == "2026-W47"
    assert report_spec(REPORTS, "monthly").default_period(NOW).label == "2026-10"
    assert report_spec(REPORTS, "custom", "shop-expiring").default_period(NOW).label == "2026-11-26"
    assert report_spec(REPORTS, "custom", "by-hand").default_period(NOW).label == "2026-11-27"


def test_an_adhoc_report_is_named_after_its_filter() -> None:
    """The same filter gives the same name (so it is published once per period); another filter another name."""
    first = adhoc_spec(ReportFilter(owner=["shop-team"]), ("html",))
    assert first.name == adhoc_spec(ReportFilter(owner=["shop-team"]), ("json",)).name
    assert first.name != adhoc_spec(ReportFilter(owner=["web-team"]), ("html",)).name
    assert first.name is not None and first.name.startswith("adhoc-")
    assert first.default_period(NOW).label == "2026-11-27"
