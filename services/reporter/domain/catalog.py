"""The reports `certmon.yaml` defines: each one's kind, name, filter, formats and schedule.

The built-in kinds are published on their own schedules (`reports.daily`, `reports.weekly`, `reports.monthly`);
a custom report on the timing of the built-in schedule its `schedule` names (the daily hour, the weekly weekday
and hour, the monthly day and hour), covering the whole day, ISO week or month before. Pure.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from services.reporter.domain.periods import Period, PeriodKind, Schedule, period_of, previous
from shared.config import CustomReport, ReportFilter, Reports
from shared.config.reports import ReportFormat, Weekday

ReportKind = Literal["daily", "weekly", "monthly", "custom"]
BuiltInKind = Literal["daily", "weekly", "monthly"]
BUILT_IN_KINDS: tuple[BuiltInKind, ...] = get_args(BuiltInKind)
_WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)


class UnknownReport(LookupError):
    """No custom report of that name is configured."""


@dataclass(frozen=True)
class ReportSpec:
    """One report: its kind, the custom report it is (None for a built-in kind), and the formats written."""

    kind: ReportKind
    formats: tuple[ReportFormat, ...]
    custom: CustomReport | None = None

    @property
    def name(self) -> str | None:
        """The custom report's name (None for a built-in kind)."""
        return self.custom.name if self.custom is not None else None

    def prefix(self, period: Period) -> str:
        """Where its objects go in the bucket: `weekly/2026-W49`, `custom/expiring-soon/2026-W49`."""
        if self.custom is not None:
            return f"custom/{self.custom.name}/{period.label}"
        return f"{self.kind}/{period.label}"

    def default_period(self, now: datetime) -> Period:
        """The period `certmon report` builds when none is given: today for the daily status report (and for a
        custom report without a schedule), else the whole day, ISO week or month before `now`'s."""
        if self.kind == "daily":
            return period_of("daily", now)
        kind: PeriodKind | None = self.kind if self.kind != "custom" else _custom_kind(self.custom)
        return period_of("daily", now) if kind is None else previous(period_of(kind, now))


@dataclass(frozen=True)
class ScheduledReport:
    """A report and its schedule."""

    spec: ReportSpec
    schedule: Schedule


def _custom_kind(custom: CustomReport | None) -> PeriodKind | None:
    if custom is None or custom.schedule == "off":
        return None
    return custom.schedule


def report_spec(reports: Reports, kind: ReportKind, name: str | None = None) -> ReportSpec:
    """The built-in report of `kind`, or the custom report `name`; raises UnknownReport for a name not
    configured."""
    if kind != "custom":
        return ReportSpec(kind, reports.formats)
    custom = next((c for c in reports.custom if c.name == name), None)
    if custom is None:
        known = ", ".join(c.name for c in reports.custom) or "none is configured"
        raise UnknownReport(f"no custom report named {name!r} under reports.custom ({known})")
    return ReportSpec("custom", custom.formats, custom)


def adhoc_spec(report_filter: ReportFilter, formats: tuple[ReportFormat, ...]) -> ReportSpec:
    """A custom report over `report_filter` that is not in the config; its name (`adhoc-` and a digest of the
    filter) is the same whenever the same filter is asked for, so it is published once per period too."""
    digest = hashlib.sha256(report_filter.model_dump_json().encode()).hexdigest()[:10]
    custom = CustomReport(name=f"adhoc-{digest}", schedule="off", filter=report_filter, formats=formats)
    return ReportSpec("custom", formats, custom)


def daily_hour(reports: Reports, *, setting: int | None, setting_given: bool) -> int | None:
    """The hour (UTC) of the daily status report, None for none: `reports.daily.hour_utc`, unless
    `CERTMON_DAILY_REPORT_HOUR_UTC` was given explicitly (`setting_given`; then its value, None: no daily report);
    None whenever `reports.daily.enabled` is false."""
    if not reports.daily.enabled:
        return None
    return setting if setting_given else reports.daily.hour_utc


def scheduled_reports(reports: Reports, *, daily_hour_utc: int | None) -> list[ScheduledReport]:
    """Every report published on a schedule: the enabled built-in kinds (the daily one at `daily_hour_utc`, None:
    not at all) and the custom reports whose schedule is not `off`."""
    timings: dict[PeriodKind, Schedule] = {
        "daily": Schedule("daily", reports.daily.hour_utc, "previous"),
        "weekly": Schedule(
            "weekly", reports.weekly.hour_utc, "previous", weekday=_WEEKDAYS.index(reports.weekly.weekday)
        ),
        "monthly": Schedule("monthly", reports.monthly.hour_utc, "previous", day=reports.monthly.day),
    }
    scheduled: list[ScheduledReport] = []
    if daily_hour_utc is not None:
        scheduled.append(ScheduledReport(report_spec(reports, "daily"), Schedule("daily", daily_hour_utc, "current")))
    if reports.weekly.enabled:
        scheduled.append(ScheduledReport(report_spec(reports, "weekly"), timings["weekly"]))
    if reports.monthly.enabled:
        scheduled.append(ScheduledReport(report_spec(reports, "monthly"), timings["monthly"]))
    for custom in reports.custom:
        if custom.schedule != "off":
            scheduled.append(ScheduledReport(ReportSpec("custom", custom.formats, custom), timings[custom.schedule]))
    return scheduled
