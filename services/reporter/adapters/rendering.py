"""Render every report kind (daily or custom status, weekly trends, monthly compliance) as JSON, CSV,
self-contained HTML (inline CSS and SVG charts, no external assets) and PDF, and the dashboard's pages: a
certificate, an alarm, the acknowledge-link pages.

HTML comes from the Jinja2 templates in `services/reporter/adapters/templates/`, rendered in a sandboxed environment
with autoescaping on: certificate subjects, findings and target names come from servers we do not trust.
"""

from datetime import UTC, datetime

from jinja2 import PackageLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup
from pydantic_core import to_json

from services.reporter.adapters.charts import Charts
from services.reporter.adapters.csv_export import to_csv
from services.reporter.adapters.pdf import html_to_pdf
from services.reporter.domain.compliance import ComplianceReport
from services.reporter.domain.report import StatusReport, by_urgency
from services.reporter.domain.trends import WeeklyReport, expirations_by_week
from services.reporter.domain.views import MAX_ACK_COMMENT, AlarmView, CertificateDetail
from services.reporter.ports import AnyReport
from shared.config.reports import ReportFormat

DASHBOARD_REFRESH_SECONDS = 60
#: Rows a list shows in a report's HTML (and PDF); the CSV and JSON objects carry every row.
HTML_ROWS = 100


class ReportRenderer:
    """Turns a report into the bytes of each published format, and renders the dashboard's pages."""

    def __init__(self) -> None:
        self._env = ImmutableSandboxedEnvironment(
            loader=PackageLoader("services.reporter.adapters", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["utc"] = _utc
        self._charts = Charts()

    def to_json(self, report: AnyReport) -> bytes:
        """The report as indented JSON (the pydantic model dump, so it validates back into its model), encoded as
        it is written: a weekly report can run to tens of megabytes."""
        return to_json(report, indent=2)

    def to_html(self, report: AnyReport) -> str:
        """The report's page, with its charts inline: the weekly trends, the monthly compliance, or the status
        report (totals, expiry windows, certificates by days left, unreachable, alarms). Long lists stop at
        `HTML_ROWS` rows and say where the rest is."""
        if isinstance(report, WeeklyReport):
            charts = {
                "levels": self._charts.levels_over_time(report.levels_by_day),
                "expirations": self._charts.expirations_ahead(report.expirations_ahead),
            }
            return self._report_page("weekly.html.j2", report, charts)
        if isinstance(report, ComplianceReport):
            charts = {
                "issuers": self._charts.distribution(report.issuers, name="issuers"),
                "key_kinds": self._charts.distribution(report.key_kinds, name="key-kinds"),
            }
            return self._report_page("monthly.html.j2", report, charts)
        not_afters = {r.fingerprint_sha256: r.not_after for r in report.certificates if r.not_after is not None}
        ahead = expirations_by_week(not_afters.values(), report.generated_at)
        return self._report_page("daily.html.j2", report, {"expirations": self._charts.expirations_ahead(ahead)})

    def _report_page(self, template: str, report: AnyReport, charts: dict[str, str | None]) -> str:
        # The SVG is matplotlib's, which escapes every label it writes; the template must not escape it again.
        inline = {name: Markup(svg) if svg is not None else None for name, svg in charts.items()}
        return self._env.get_template(template).render(report=report, charts=inline, limit=HTML_ROWS)

    def render(self, report: AnyReport, fmt: ReportFormat) -> bytes:
        """The report in one format: JSON, CSV, HTML, or PDF (the HTML page laid out by WeasyPrint)."""
        if fmt == "json":
            return self.to_json(report)
        if fmt == "csv":
            return to_csv(report)
        page = self.to_html(report)
        return html_to_pdf(page) if fmt == "pdf" else page.encode()

    def dashboard(self, report: StatusReport, *, refresh_seconds: int = DASHBOARD_REFRESH_SECONDS) -> str:
        """The live dashboard page: every certificate, most urgent first, reloading itself."""
        rows = sorted(report.certificates, key=by_urgency)
        return self._env.get_template("dashboard.html.j2").render(
            report=report, rows=rows, refresh_seconds=refresh_seconds
        )

    def certificate_page(self, detail: CertificateDetail) -> str:
        """A certificate: its names and validity, where it is served, its latest findings, its alarms."""
        return self._env.get_template("certificate.html.j2").render(detail=detail)

    def alarm_page(self, alarm: AlarmView) -> str:
        """An alarm: its facts and acknowledgement, reminders, every step of its history, its notifications."""
        return self._env.get_template("alarm.html.j2").render(alarm=alarm)

    def ack_page(self, status: str, *, alarm: AlarmView | None, recipient: str = "", problem: str = "") -> str:
        """The page an acknowledge link answers with: the confirmation form (`status` "confirm") or an outcome
        (an `AckStatus`, or a link problem: "malformed", "altered", "expired", "invalid" with `problem` the why)."""
        return self._env.get_template("ack.html.j2").render(
            status=status, alarm=alarm, recipient=recipient, problem=problem, comment_max=MAX_ACK_COMMENT
        )

    def login_page(self, *, next_path: str, session_hours: int, problem: str = "") -> str:
        """The sign-in form, which comes back to `next_path` once signed in; `problem` says why the last try failed."""
        return self._env.get_template("login.html.j2").render(
            next_path=next_path, session_hours=session_hours, problem=problem
        )

    def message_page(self, title: str, message: str) -> str:
        """A page that only says something went wrong (an unknown certificate or alarm)."""
        return self._env.get_template("message.html.j2").render(title=title, message=message)


def _utc(moment: datetime) -> str:
    """A moment as `2026-11-27 06:30 UTC`, whatever zone it came in."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
