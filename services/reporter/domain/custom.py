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
from services.reporter.domain.report import (
    StatusAlarms,
    StatusReport,
    alarm_lines,
    build_status_report,
    days_remaining,
)
from services.reporter.domain.status import TargetStatus
from shared.config import ReportFilter
from shared.config.reports import DaysLeft
from shared.events import AlarmEvent

#: The tags of a target: its key and its server (None: none) → tags.
Tags = Callable[[str, str | None], Collection[str]]


def _any_of(wanted: Collection[str], value: str | None) -> bool:
    return not wanted or value in wanted


def _within(days: DaysLeft, left: float | None) -> bool:
    if days.min is None and days.max is None:
        return True
    return left is not None and (days.min is None or left >= days.min) and (days.max is None or left <= days.max)


def _issued_by(substrings: Collection[str], status: TargetStatus) -> bool:
    if not substrings:
        return True
    issuer = status.issuer.casefold() if status.issuer is not None else None
    return issuer is not None and any(s.casefold() in issuer for s in substrings)


def selects(report_filter: ReportFilter, status: TargetStatus, *, tags: Collection[str], now: datetime) -> bool:
    """Whether `status` (of a target with `tags`) passes every condition of `report_filter` at `now`."""
    f = report_filter
    return (
        _any_of(f.owner, status.owner)
        and _any_of(f.server, status.server)
        and (not f.tag or any(tag in tags for tag in f.tag))
        and _any_of(f.level, status.level)
        and _any_of(f.grade, status.grade)
        and _issued_by(f.issuer, status)
        and _within(f.days_left, days_remaining(status, now))
    )


def select(
    statuses: Sequence[TargetStatus], report_filter: ReportFilter, *, tags: Tags, now: datetime
) -> list[TargetStatus]:
    """The targets' statuses `report_filter` selects, in their order."""
    return [s for s in statuses if selects(report_filter, s, tags=tags(s.target_key, s.server), now=now)]


def custom_status_report(
    statuses: Sequence[TargetStatus],
    alarms: Sequence[AlarmEvent] | StatusAlarms,
    report_filter: ReportFilter,
    *,
    tags: Tags,
    now: datetime,
    period: Period,
    name: str,
) -> StatusReport:
    """The status report at `now` of the targets `report_filter` selects, with their alarms only, as the custom
    report `name`."""
    chosen = select(statuses, report_filter, tags=tags, now=now)
    targets = {s.target_key for s in chosen}
    if not isinstance(alarms, StatusAlarms):
        alarms = alarm_lines(alarms, now)
    report = build_status_report(
        chosen,
        alarms.of_targets(targets),
        now=now,
        kind="custom",
        period=(period.start, period.end),
    )
    return report.model_copy(update={"name": name})
