"""Render every report kind (daily or custom status, weekly trends, monthly compliance) as JSON, CSV,
self-contained HTML (inline CSS and SVG charts, no external assets) and PDF, and the dashboard's pages: a
certificate, an alarm, the acknowledge-link pages.

HTML comes from the Jinja2 templates in `services/reporter/adapters/templates/`, rendered in a sandboxed environment
with autoescaping on: certificate subjects, findings and target names come from servers we do not trust.
"""

import io
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

from jinja2 import PackageLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from services.reporter.adapters.auth import Viewer
from services.reporter.adapters.charts import Charts
from services.reporter.adapters.csv_export import write_csv
from services.reporter.adapters.json_export import write_json
from services.reporter.adapters.page_params import MAX_TEXT, AlarmQuery, CertificateQuery, ListLinks
from services.reporter.adapters.pdf import html_to_pdf
from services.reporter.domain.certificate_view import describe_key
from services.reporter.domain.compliance import ComplianceReport
from services.reporter.domain.report import GRADES, LEVELS
from services.reporter.domain.timeline import Timeline
from services.reporter.domain.trends import WeeklyReport, expirations_by_week
from services.reporter.domain.views import MAX_ACK_COMMENT, AlarmView
from services.reporter.ports import AnyReport
from services.reporter.service_layer.dashboard import AlarmHistory, CertificateList, CertificatePage, Overview
from shared.config.reports import ReportFormat
from shared.events import ReportPublished

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
        """The report as indented JSON (the pydantic model dump, so it validates back into its model)."""
        return self.render(report, "json")

    def to_html(self, report: AnyReport) -> str:
        """The report's page, with its charts inline: the weekly trends, the monthly compliance, or the status
        report (totals, expiry windows, certificates by days left, unreachable, alarms). Long lists stop at
        `HTML_ROWS` rows and say where the rest is."""
        return "".join(self._html(report))

    def _html(self, report: AnyReport) -> Iterator[str]:
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

    def _report_page(self, template: str, report: AnyReport, charts: dict[str, str | None]) -> Iterator[str]:
        # The SVG is matplotlib's, which escapes every label it writes; the template must not escape it again.
        inline = {name: Markup(svg) if svg is not None else None for name, svg in charts.items()}
        # Generated piece by piece (the same text `render` joins), so a page of 100,000 rows goes to a file as made.
        return self._env.get_template(template).generate(report=report, charts=inline, limit=HTML_ROWS)

    def write(self, report: AnyReport, fmt: ReportFormat, out: BinaryIO) -> None:
        """Write the report in one format to `out` as it is rendered: JSON, CSV, HTML, or PDF (the HTML page laid
        out by WeasyPrint, which needs the whole page first)."""
        if fmt == "json":
            write_json(report, out)
        elif fmt == "csv":
            write_csv(report, out)
        elif fmt == "pdf":
            out.write(html_to_pdf(self.to_html(report)))
        else:
            text = io.TextIOWrapper(out, encoding="utf-8", newline="")
            text.writelines(self._html(report))
            text.flush()
            text.detach()  # `out` stays open: it is the caller's

    def render(self, report: AnyReport, fmt: ReportFormat) -> bytes:
        """The report in one format, as bytes (`write` into memory)."""
        buffer = io.BytesIO()
        self.write(report, fmt, buffer)
        return buffer.getvalue()

    # The dashboard's pages. `viewer` is who is signed in (None: unknown): it decides whether forms that write show.

    def overview(self, overview: Overview, *, now: datetime, viewer: Viewer | None) -> str:
        """The live overview: counts per level and grade, the next expirations, open alarms; it reloads itself."""
        return self._env.get_template("overview.html.j2").render(
            overview=overview, now=now, viewer=viewer, refresh_seconds=DASHBOARD_REFRESH_SECONDS
        )

    def certificate_list(
        self,
        listing: CertificateList,
        links: ListLinks,
        *,
        query: CertificateQuery,
        now: datetime,
        viewer: Viewer | None,
    ) -> str:
        """The certificates list: the filter form, the count, a page of targets, links to sort and to page."""
        return self._env.get_template("certificates.html.j2").render(
            listing=listing,
            query=query,
            now=now,
            viewer=viewer,
            sorts=links.sorts,
            first_url=links.first,
            next_url=links.next,
            levels=LEVELS,
            grades=GRADES,
            max_text=MAX_TEXT,
        )

    def certificate_page(self, page: CertificatePage, *, now: datetime, viewer: Viewer | None) -> str:
        """A certificate: facts, targets, owners, grade and caps, findings, chain, history, alarms, and the
        acknowledge form of its open alarms for a viewer who may write."""
        return self._env.get_template("certificate.html.j2").render(
            page=page,
            now=now,
            viewer=viewer,
            describe_key=describe_key,
            sources=CHAIN_SOURCES,
            comment_max=MAX_ACK_COMMENT,
        )

    def timeline(self, timeline: Timeline, *, viewer: Viewer | None) -> str:
        """The expiration calendar and the month bars."""
        return self._env.get_template("timeline.html.j2").render(
            timeline=timeline, viewer=viewer, levels=LEVELS, one_day=timedelta(days=1)
        )

    def alarm_history(
        self, history: AlarmHistory, links: ListLinks, *, query: AlarmQuery, viewer: Viewer | None
    ) -> str:
        """The alarm history: the filter form, the count, a page of alarms with their steps, links to page."""
        return self._env.get_template("alarms.html.j2").render(
            history=history,
            query=query,
            viewer=viewer,
            first_url=links.first,
            next_url=links.next,
            levels=LEVELS,
            max_text=MAX_TEXT,
        )

    def alarm_page(self, alarm: AlarmView, *, viewer: Viewer | None, ack: str = "") -> str:
        """An alarm: its facts and acknowledgement, reminders, every step of its history, its notifications, its
        acknowledgements; `ack` is what became of an acknowledgement just sent (an `AckStatus`, or "")."""
        return self._env.get_template("alarm.html.j2").render(
            alarm=alarm, viewer=viewer, ack=ack, comment_max=MAX_ACK_COMMENT
        )

    def reports_page(self, reports: list[ReportPublished], *, viewer: Viewer | None) -> str:
        """The published reports, each format linked."""
        return self._env.get_template("reports.html.j2").render(reports=reports, viewer=viewer)

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

    def message_page(
        self, title: str, message: str, *, reasons: Sequence[str] = (), viewer: Viewer | None = None
    ) -> str:
        """A dashboard page that only says what went wrong: an unknown certificate or alarm, or a list asked for
        with bad values (`reasons`, one per value)."""
        return self._env.get_template("message.html.j2").render(
            title=title, message=message, reasons=reasons, viewer=viewer, section=None
        )


#: How the certificate page names where a certificate of the verified chain came from.
CHAIN_SOURCES = {
    "presented": "sent by the server",
    "cache": "known intermediate",
    "aia": "fetched (AIA)",
    "trust store": "trust store",
    "unknown": "not recorded",
}


def _utc(moment: datetime) -> str:
    """A moment as `2026-11-27 06:30 UTC`, whatever zone it came in."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
