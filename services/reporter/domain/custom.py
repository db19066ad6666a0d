"""Custom reports: which targets a `ReportFilter` selects, and the status report of those targets.

Every condition the filter gives must hold, and a condition listing several values holds when any of them does:
owner (the evaluation's owner), server (the target's server, named or resolved from its address), tag (the tags
`certmon.yaml` gives the target and its server, passed in as `tags`), level, grade, issuer (a substring of the
issuer's name, any case) and days left (at `now`, both ends inclusive). A target without a certificate has no
grade, issuer or days left, so a filter on any of those leaves it out. Pure.
"""

from collections.abc import Callable, Collection, Sequence
from datetime import datetime

from services.reporter.domain.periods import Period
from services.reporter.domain.report import StatusReport, build_status_report, days_remaining
from shared.config import ReportFilter
from shared.config.reports import DaysLeft
from shared.events import AlarmEvent, Evaluation

#: The tags of a target: its key and its server (None: none) → tags.
Tags = Callable[[str, str | None], Collection[str]]


def _any_of(wanted: Collection[str], value: str | None) -> bool:
    return not wanted or value in wanted


def _within(days: DaysLeft, left: float | None) -> bool:
    if days.min is None and days.max is None:
        return True
    return left is not None and (days.min is None or left >= days.min) and (days.max is None or left <= days.max)


def _issued_by(substrings: Collection[str], evaluation: Evaluation) -> bool:
    if not substrings:
        return True
    issuer = evaluation.certificate.issuer.casefold() if evaluation.certificate is not None else None
    return issuer is not None and any(s.casefold() in issuer for s in substrings)


def selects(report_filter: ReportFilter, evaluation: Evaluation, *, tags: Collection[str], now: datetime) -> bool:
    """Whether `evaluation` (of a target with `tags`) passes every condition of `report_filter` at `now`."""
    f = report_filter
    return (
        _any_of(f.owner, evaluation.owner)
        and _any_of(f.server, evaluation.target.server)
        and (not f.tag or any(tag in tags for tag in f.tag))
        and _any_of(f.level, evaluation.alarm.level)
        and _any_of(f.grade, evaluation.security.grade if evaluation.security is not None else None)
        and _issued_by(f.issuer, evaluation)
        and _within(f.days_left, days_remaining(evaluation, now))
    )


def select(
    evaluations: Sequence[Evaluation], report_filter: ReportFilter, *, tags: Tags, now: datetime
) -> list[Evaluation]:
    """The evaluations `report_filter` selects, in their order."""
    return [e for e in evaluations if selects(report_filter, e, tags=tags(e.target_key, e.target.server), now=now)]


def custom_status_report(
    evaluations: Sequence[Evaluation],
    alarm_events: Sequence[AlarmEvent],
    report_filter: ReportFilter,
    *,
    tags: Tags,
    now: datetime,
    period: Period,
    name: str,
) -> StatusReport:
    """The status report at `now` of the targets `report_filter` selects, with their alarms only, as the custom
    report `name`."""
    chosen = select(evaluations, report_filter, tags=tags, now=now)
    targets = {e.target_key for e in chosen}
    report = build_status_report(
        chosen,
        [a for a in alarm_events if a.key.target_key in targets],
        now=now,
        kind="custom",
        period=(period.start, period.end),
    )
    return report.model_copy(update={"name": name})
