"""Reports as CSV, one flat table each, for a spreadsheet.

Certificate subjects, issuers and target names are chosen by whoever runs the server, and a spreadsheet runs a
cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage return before one) as a formula: every text cell
starting with one of those gets a leading apostrophe, which spreadsheets show as text (OWASP's CSV injection
advice). Numbers and moments are written by us and are left as they are.

- daily (and custom) status: one row per target;
- weekly trends: one row per change (first seen, renewed, expired, removed, added, entering a renewal window,
  alarm raised, acknowledged or resolved), its specifics in `detail`;
- monthly compliance: one row per rule a certificate breaks, with the finding codes behind it.
"""

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import BinaryIO

from services.reporter.domain.compliance import ComplianceReport
from services.reporter.domain.report import StatusReport
from services.reporter.domain.trends import CertificateLine, WeeklyReport

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
Cell = str | int | float | bool | datetime | date | None


def guard(value: Cell) -> str | int | float:
    """A cell as written: text that a spreadsheet would run as a formula prefixed with `'`; moments in ISO 8601;
    None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _table(header: Sequence[str], rows: Iterable[Sequence[Cell]], out: BinaryIO) -> None:
    # Encoded as it is written, row by row, into `out` (a file): a report of 100,000 rows is never held as text.
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([guard(cell) for cell in row] for row in rows)
    text.flush()
    text.detach()  # `out` stays open: it is the caller's


def status_csv(report: StatusReport, out: BinaryIO) -> None:
    """Write one row per target of a status report to `out`, soonest expiry first."""
    header = (
        "target",
        "level",
        "days_remaining",
        "grade",
        "reachable",
        "subject",
        "issuer",
        "not_after",
        "owner",
        "fingerprint_sha256",
        "evaluated_at",
        "top_findings",
    )
    _table(
        header,
        (
            (
                row.target,
                row.level,
                row.days_remaining,
                row.grade,
                row.reachable,
                row.subject,
                row.issuer,
                row.not_after,
                row.owner,
                row.fingerprint_sha256,
                row.evaluated_at,
                " ".join(f.code for f in row.top_findings),
            )
            for row in report.certificates
        ),
        out,
    )


_WEEKLY_HEADER = (
    "change",
    "target",
    "fingerprint_sha256",
    "subject",
    "issuer",
    "not_after",
    "owner",
    "server",
    "at",
    "detail",
)


def _certificate(change: str, line: CertificateLine, at: datetime | None, detail: str) -> tuple[Cell, ...]:
    return (
        change,
        line.target,
        line.fingerprint,
        line.subject,
        line.issuer,
        line.not_after,
        line.owner,
        line.server,
        at,
        detail,
    )


def _weekly_rows(report: WeeklyReport) -> Iterable[tuple[Cell, ...]]:
    for seen in report.first_seen:
        yield _certificate("first_seen", seen, seen.seen_at, "")
    for renewal in report.renewed:
        detail = f"replaces {renewal.previous_fingerprint}; {renewal.key_change.replace('_', ' ')}"
        yield _certificate("renewed", renewal, None, detail)
    for expired in report.expired:
        yield _certificate("expired", expired, expired.not_after, "still served" if expired.still_served else "")
    for change, targets in (("removed", report.removed), ("added", report.added)):
        for t in targets:
            yield (change, t.target, t.fingerprint, None, None, None, t.owner, t.server, t.evaluated_at, "")
    for window in report.entering_windows:
        for line in window.certificates:
            yield _certificate("entering_window", line, None, f"{window.days} days left next week")
    for alarm in report.alarms.changes:
        took = f"; resolved after {alarm.hours_to_resolve:.1f} h" if alarm.hours_to_resolve is not None else ""
        detail = f"{alarm.trigger} {alarm.level} (alarm {alarm.alarm_id}){took}"
        yield (f"alarm_{alarm.transition}", alarm.target, None, None, None, None, None, None, alarm.at, detail)


def weekly_csv(report: WeeklyReport, out: BinaryIO) -> None:
    """Write one row per change of the week to `out`."""
    _table(_WEEKLY_HEADER, _weekly_rows(report), out)


def compliance_csv(report: ComplianceReport, out: BinaryIO) -> None:
    """Write one row per rule a certificate breaks where it is served to `out`."""
    header = (
        "target",
        "fingerprint_sha256",
        "subject",
        "issuer",
        "owner",
        "server",
        "grade",
        "rule",
        "detail",
        "finding_codes",
    )
    _table(
        header,
        (
            (
                c.target,
                c.fingerprint,
                c.subject,
                c.issuer,
                c.owner,
                c.server,
                c.grade,
                v.rule,
                v.detail,
                " ".join(v.codes),
            )
            for c in report.violations
            for v in c.violations
        ),
        out,
    )


def write_csv(report: StatusReport | WeeklyReport | ComplianceReport, out: BinaryIO) -> None:
    """Write the report's CSV table to `out`."""
    if isinstance(report, WeeklyReport):
        weekly_csv(report, out)
    elif isinstance(report, ComplianceReport):
        compliance_csv(report, out)
    else:
        status_csv(report, out)
