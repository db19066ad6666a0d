"""What the status reports (daily and custom) read of a target's latest evaluation: slim, so the status of 100,000
targets is a few tens of megabytes where their evaluation objects took gigabytes.

The PostgreSQL history projects it from columns and the stored evaluation in SQL (`adapters.report_queries`); the
in-memory twin from the evaluation object (`status_of`). Both keep the findings a report shows through
`top_findings`, so the rule lives here once. Pure.
"""

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime

from services.reporter.domain.estate import target_row
from shared.events import Evaluation
from shared.events.evaluation import SEVERITY_ORDER

#: How many findings a status report shows per target: the most severe, in the evaluation's order on a tie.
TOP_FINDINGS = 3
#: A finding as a report shows it: code, severity, message.
FindingText = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """A target's latest evaluation (at its last sighting) as the status reports use it.

    `days_remaining` is the figure evaluated, which a report uses only for a target without a certificate (with
    one, it counts from `not_after` to the report's moment); `error_kind` and `error_message` say why an
    unreachable target was not observed.
    """

    target_key: str
    evaluated_at: datetime
    reachable: bool
    level: str
    grade: str | None
    owner: str | None
    server: str | None
    fingerprint: str | None
    subject: str | None
    issuer: str | None
    not_after: datetime | None
    days_remaining: float | None
    findings: tuple[FindingText, ...]
    error_kind: str | None
    error_message: str | None


def top_findings(findings: Iterable[FindingText]) -> tuple[FindingText, ...]:
    """The TOP_FINDINGS most severe of `findings`, most severe first (a tie: in their order)."""
    return tuple(sorted(findings, key=lambda f: -SEVERITY_ORDER.get(f[1], 0))[:TOP_FINDINGS])


def status_of(evaluation: Evaluation) -> TargetStatus:
    """The status of one evaluation (the in-memory history's projection; PostgreSQL's is its SQL twin)."""
    row, error = target_row(evaluation), evaluation.error
    return TargetStatus(
        **{field.name: getattr(row, field.name) for field in fields(row)},
        days_remaining=evaluation.expiry.days_remaining if evaluation.expiry is not None else None,
        findings=top_findings((f.code, f.severity, f.message) for f in evaluation.findings),
        error_kind=error.kind if error else None,
        error_message=error.message if error else None,
    )
