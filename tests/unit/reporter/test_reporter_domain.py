"""The status report model: counts, ordering, expiry windows, unreachable targets and alarms, rendering."""

from datetime import UTC, datetime, timedelta

from services.reporter.adapters.rendering import ReportRenderer
from services.reporter.domain.report import (
    CertificateRows,
    StatusReport,
    alarm_lines,
    build_status_report,
    by_urgency,
    certificate_row,
    daily_period,
    normalize_fingerprint,
)
from shared.events import Acknowledgement, Finding, ObservationError
from tests.unit.reporter.reporter_factories import NOW, alarm, evaluation, statuses

ESTATE = [
    evaluation("ok.example", days=200, level="ok", grade="A+", owner="platform-team"),
    evaluation(
        "soon.example",
        days=5,
        level="critical",
        grade="B",
        findings=[
            Finding(code="tls.no_tls13", severity="notice", message="no TLS 1.3"),
            Finding(code="expiry.within_7_days", severity="critical", message="expires in 5 days"),
            Finding(code="tls.tls11", severity="warning", message="TLS 1.1 offered"),
            Finding(code="cipher.no_forward_secrecy", severity="warning", message="no forward secrecy"),
        ],
    ),
    evaluation("month.example", days=20, level="warning", grade="A"),
    evaluation("quarter.example", days=60, level="info", grade="A"),
    evaluation("gone.example", days=-2, level="critical", grade="F"),
    evaluation("down.example", days=None, level="warning", error=ObservationError(kind="timeout", message="no answer")),
]


def test_the_rows_are_made_from_the_statuses_as_they_are_walked() -> None:
    """The report holds the statuses, not a row model per target: each walk makes the rows anew, the same ones
    (and by index and slice), and the report's JSON validates back into an equal report whose rows are a list."""
    report = build_status_report(statuses(ESTATE), [], now=NOW)
    assert isinstance(report.certificates, CertificateRows)
    rows = list(report.certificates)
    made = [certificate_row(s, NOW) for s in statuses(ESTATE)]
    assert sorted(rows, key=lambda r: r.target) == sorted(made, key=lambda r: r.target)
    assert list(report.certificates) == rows and rows[0] is not next(iter(report.certificates))
    assert (len(report.certificates), report.certificates[1], report.certificates[2:4]) == (6, rows[1], rows[2:4])
    read = StatusReport.model_validate_json(ReportRenderer().to_json(report))
    assert read.certificates == rows and read == report


def test_totals_count_every_level_and_grade() -> None:
    """Totals count targets per level and per grade, listing zero for the ones nobody has."""
    report = build_status_report(statuses(ESTATE), [], now=NOW)
    assert report.totals.targets == 6
    assert report.totals.certificates == 5
    assert report.totals.by_level == {"critical": 2, "warning": 2, "info": 1, "ok": 1}
    assert report.totals.by_grade["A"] == 2
    assert report.totals.by_grade["A+"] == 1
    assert report.totals.by_grade["F"] == 1
    assert report.totals.by_grade["C"] == 0


def test_certificates_are_sorted_by_days_remaining_with_unreachable_last() -> None:
    """Rows go from the soonest (or already past) expiry to the latest; targets without a certificate come last."""
    report = build_status_report(statuses(ESTATE), [], now=NOW)
    assert [r.target for r in report.certificates] == [
        "gone.example:443",
        "soon.example:443",
        "month.example:443",
        "quarter.example:443",
        "ok.example:443",
        "down.example:443",
    ]


def test_days_remaining_are_counted_from_the_report_moment() -> None:
    """Days remaining come from notAfter and the report's `now`, not from when the evaluation ran."""
    later = NOW + timedelta(days=1)
    report = build_status_report(statuses([evaluation("soon.example", days=5)]), [], now=later)
    assert report.certificates[0].days_remaining == 4.0


def test_top_findings_are_the_most_severe_three() -> None:
    """A row shows at most three findings, most severe first; notices drop out before warnings."""
    report = build_status_report(statuses(ESTATE), [], now=NOW)
    soon = next(r for r in report.certificates if r.target == "soon.example:443")
    assert [f.code for f in soon.top_findings] == ["expiry.within_7_days", "tls.tls11", "cipher.no_forward_secrecy"]


def test_expiry_windows_are_cumulative_and_exclude_expired() -> None:
    """Within 7/30/90 days counts certificates not yet expired; expired ones are listed apart."""
    report = build_status_report(statuses(ESTATE), [], now=NOW)
    assert {w.days: w.count for w in report.expiring} == {7: 1, 30: 2, 90: 3}
    assert report.expiring[0].targets == ["soon.example:443"]
    assert report.expired == ["gone.example:443"]


def test_expiry_window_boundary_is_inclusive() -> None:
    """A certificate with exactly 7 days left is within 7 days; one second more is not."""
    exact = evaluation("seven.example", days=7)
    over = evaluation("over.example", days=7 + 1 / 86400)
    report = build_status_report(statuses([exact, over]), [], now=NOW)
    assert report.expiring[0].targets == ["seven.example:443"]


def test_unreachable_targets_carry_the_error() -> None:
    """A target the scanner could not reach is listed with the error kind and message."""
    report = build_status_report(statuses(ESTATE), [], now=NOW)
    assert [(u.target, u.kind, u.message) for u in report.unreachable] == [("down.example:443", "timeout", "no answer")]


def test_alarms_in_the_last_24_hours_and_open_alarms() -> None:
    """Raised/resolved lists cover the 24 h before now; an alarm is open until its latest transition resolves it."""
    events = [
        alarm("old", "raised", "warning", NOW - timedelta(days=3), host="old.example"),
        alarm("a1", "raised", "warning", NOW - timedelta(hours=5)),
        alarm("a1", "changed", "critical", NOW - timedelta(hours=2)),
        alarm("a2", "raised", "info", NOW - timedelta(hours=30), host="b.example"),
        alarm("a2", "resolved", "ok", NOW - timedelta(hours=1), host="b.example"),
        alarm("future", "raised", "critical", NOW + timedelta(hours=1), host="c.example"),
    ]
    report = build_status_report([], events[:-1], now=NOW)
    assert [a.alarm_id for a in report.alarms_raised] == ["a1"]
    assert [a.alarm_id for a in report.alarms_resolved] == ["a2"]
    assert [(a.alarm_id, a.level) for a in report.open_alarms] == [("a1", "critical"), ("old", "warning")]


def test_the_alarm_lines_made_first_give_the_same_report_and_select_by_target() -> None:
    """The lines `alarm_lines` makes of the events (before the targets are read) build the report the events
    build; `of_targets` keeps the lines of the targets named, in their order."""
    events = [
        alarm("old", "raised", "warning", NOW - timedelta(days=3), host="old.example"),
        alarm("a1", "raised", "warning", NOW - timedelta(hours=5)),
        alarm("a2", "raised", "info", NOW - timedelta(hours=30), host="b.example"),
        alarm("a2", "resolved", "ok", NOW - timedelta(hours=1), host="b.example"),
    ]
    lines = alarm_lines(events, NOW)
    assert build_status_report([], lines, now=NOW) == build_status_report([], events, now=NOW)
    mine = lines.of_targets({"b.example:443", "old.example:443"})
    assert ([a.alarm_id for a in mine.open], mine.raised, [a.alarm_id for a in mine.resolved]) == (["old"], [], ["a2"])


def test_acknowledged_alarms_stay_among_the_open_ones_with_who_and_when() -> None:
    """An acknowledged alarm is not resolved: it is listed with its state, who acknowledged it and when; the
    published report does not link it (the bucket has no alarm pages)."""
    ack = Acknowledgement(by="jane@example.com", at=NOW - timedelta(minutes=5), via="api")
    events = [
        alarm("a1", "raised", "critical", NOW - timedelta(hours=2)),
        alarm("a1", "acknowledged", "critical", ack.at, acknowledgement=ack),
    ]
    report = build_status_report([], events, now=NOW)
    [line] = report.open_alarms
    assert (line.state, line.acknowledged_by, line.acknowledged_at) == ("acknowledged", ack.by, ack.at)
    html = ReportRenderer().to_html(report)
    assert "acknowledged</span> by jane@example.com at 2026-11-27 06:25 UTC" in html
    assert "/alarms/a1" not in html


def test_urgency_puts_the_worst_level_first_then_soonest_expiry() -> None:
    """The dashboard order: critical before warning before info before ok, then by days remaining."""
    report = build_status_report(statuses(ESTATE), [], now=NOW)
    ordered = [r.target for r in sorted(report.certificates, key=by_urgency)]
    assert ordered == [
        "gone.example:443",
        "soon.example:443",
        "month.example:443",
        "down.example:443",
        "quarter.example:443",
        "ok.example:443",
    ]


def test_fingerprints_accept_colons_and_either_case() -> None:
    """A fingerprint typed with colons and capitals is the same as the canonical one; junk is not one."""
    canonical = "ab" * 32
    assert normalize_fingerprint(":".join(["AB"] * 32)) == canonical
    assert normalize_fingerprint(canonical) == canonical
    assert normalize_fingerprint("ab" * 31) is None
    assert normalize_fingerprint("zz" * 32) is None


def test_daily_period_is_the_utc_day() -> None:
    """The daily period is the UTC calendar day (when it is due: tests/unit/reporter/test_reporter_periods.py)."""
    start, end = daily_period(datetime(2026, 11, 27, 23, 59, 59, tzinfo=UTC))
    assert (start, end) == (datetime(2026, 11, 27, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC))


def test_json_round_trips_to_the_same_report() -> None:
    """The JSON rendering validates back into an equal StatusReport."""
    report = build_status_report(
        statuses(ESTATE), [alarm("a1", "raised", "warning", NOW - timedelta(hours=1))], now=NOW
    )
    assert StatusReport.model_validate_json(ReportRenderer().to_json(report)) == report


def test_html_escapes_hostile_certificate_text() -> None:
    """Markup in a subject or finding message is shown as text, never run as script."""
    hostile = evaluation(
        "evil.example",
        days=3,
        level="critical",
        subject='CN=<script>alert("x")</script>',
        findings=[Finding(code="hostname.mismatch", severity="critical", message="<img src=x onerror=alert(1)>")],
    )
    html = ReportRenderer().to_html(build_status_report(statuses([hostile]), [], now=NOW))
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_html_is_self_contained() -> None:
    """The report page has its CSS inline and loads nothing from anywhere."""
    html = ReportRenderer().to_html(build_status_report(statuses(ESTATE), [], now=NOW))
    assert "<style>" in html
    for external in ("<link", "<script", "src=", "@import", "url("):
        assert external not in html
    assert "soon.example:443" in html
    assert "2026-11-27" in html
