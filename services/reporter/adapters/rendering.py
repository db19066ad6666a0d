"""Render a status report as JSON and as self-contained HTML (inline CSS, no external assets), and the
dashboard's pages: a certificate, an alarm, the acknowledge-link pages.

HTML comes from the Jinja2 templates in `services/reporter/adapters/templates/`, rendered in a sandboxed environment
with autoescaping on: certificate subjects, findings and target names come from servers we do not trust.
"""

from datetime import UTC, datetime

from jinja2 import PackageLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from services.reporter.domain.report import StatusReport, by_urgency
from services.reporter.domain.views import MAX_ACK_COMMENT, AlarmView, CertificateDetail

DASHBOARD_REFRESH_SECONDS = 60


class ReportRenderer:
    """Turns a `StatusReport` into the bytes of each published format and into the dashboard page."""

    def __init__(self) -> None:
        self._env = ImmutableSandboxedEnvironment(
            loader=PackageLoader("services.reporter.adapters", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["utc"] = _utc

    def to_json(self, report: StatusReport) -> bytes:
        """The report as indented JSON (the pydantic model dump, so it validates back into a StatusReport)."""
        return report.model_dump_json(indent=2).encode()

    def to_html(self, report: StatusReport) -> str:
        """The daily report page: totals, expiry windows, certificates by days left, unreachable, alarms."""
        return self._env.get_template("daily.html.j2").render(report=report)

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
