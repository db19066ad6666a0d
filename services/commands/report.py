"""`certmon report daily|weekly|monthly|custom`: build a report now from the history, write it to the bucket and
say where.

The history is the one `CERTMON_DATABASE_URL` names, or else the embedded PostgreSQL of `certmon run` in
`CERTMON_DATA_DIR` (shared with a running `certmon run`, started for the command when none runs). Reports go where
`CERTMON_REPORTS_URL` says. A report is recorded, and its `report.published.v1` queued in the reporter's outbox
for the running reporter to send, like a scheduled one; a period published before is not built again unless
`--force` asks, and then it is written again under the same keys without a second announcement.

Exit codes: 0 when the report is written (or was published before); 1 when the arguments, the configuration or
the infrastructure are refused: a bad period or filter value, an unknown report name, a period not over yet, no
database, a bucket that keeps refusing the writes, a PDF asked for on a host without pango.
"""

import argparse
from datetime import datetime

from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.markup import escape

from services.reporter.adapters.pdf import PdfUnavailable
from services.reporter.bootstrap import report_publisher
from services.reporter.domain.catalog import ReportSpec, UnknownReport, adhoc_spec, report_spec
from services.reporter.domain.periods import Period, PeriodError, parse_period
from services.reporter.ports import BucketError
from services.reporter.service_layer.publishing import Publication
from shared.clock import Clock, utc_now
from shared.config import ConfigError, ReportFilter, Reports, load_app_config
from shared.config.reports import ReportFormat
from shared.runtime import database
from shared.settings import RuntimeConfigError, Settings

#: The filter options of `certmon report custom` that list values: each is the `ReportFilter` field of its name.
FILTER_OPTIONS = tuple(name for name in ReportFilter.model_fields if name != "days_left")
_FORMATS: TypeAdapter[tuple[ReportFormat, ...]] = TypeAdapter(tuple[ReportFormat, ...])


class UsageError(ValueError):
    """The arguments ask for something that cannot be built; the message says why."""


async def report(args: argparse.Namespace, settings: Settings, *, clock: Clock = utc_now) -> int:
    """Build, write and record the report the arguments name; print where it went. Returns the exit code."""
    errors = Console(stderr=True)
    now = clock()
    try:
        config = load_app_config(settings, args.config)
        spec = chosen_spec(args, config.reports)
        period = chosen_period(spec, args.period, now)
    except ConfigError as exc:
        errors.print(f"[red]configuration refused[/red] {escape(str(exc))}")
        return 1
    except (UsageError, UnknownReport, PeriodError) as exc:
        errors.print(f"[red]certmon report:[/red] {escape(str(exc))}")
        return 1
    try:
        async with database(settings) as (pool, _):
            publisher = await report_publisher(settings, config, pool)
            publication = await publisher.publish(spec, period, now=now, rebuild=args.force)
    except RuntimeConfigError as exc:
        errors.print(f"[red]cannot reach the history:[/red] {escape(str(exc))}")
        return 1
    except (BucketError, PdfUnavailable) as exc:
        errors.print(f"[red]not published:[/red] {escape(str(exc))}; nothing was recorded or announced")
        return 1
    show(Console(), spec, period, publication)
    return 0


def chosen_spec(args: argparse.Namespace, reports: Reports) -> ReportSpec:
    """The report the arguments name: a built-in kind, a configured custom report, or an ad-hoc one built from
    the filter options; `--format` replaces its formats."""
    formats = _formats(args.format)
    if args.report_kind != "custom":
        spec = report_spec(reports, args.report_kind)
    else:
        report_filter = _filter(args)
        if args.name is not None and report_filter != ReportFilter():
            raise UsageError("give a custom report's NAME or filter options, not both")
        if args.name is not None:
            spec = report_spec(reports, "custom", args.name)
        elif report_filter == ReportFilter():
            raise UsageError("name a custom report under reports.custom, or select certificates with filter options")
        else:
            return adhoc_spec(report_filter, formats or reports.formats)
    return spec if formats is None else ReportSpec(spec.kind, formats, spec.custom)


def chosen_period(spec: ReportSpec, text: str | None, now: datetime) -> Period:
    """The period `--period` names (of the report's kind; any kind for a custom report), by default the one the
    report covers at `now`. A period not begun is refused, and so is one not over yet for a report that covers a
    whole period (recorded, it would stand in for the report of the whole period)."""
    if text is None:
        return spec.default_period(now)
    period = parse_period(None if spec.kind == "custom" else spec.kind, text)
    if period.start > now:
        raise UsageError(f"{period.label} has not begun")
    whole = spec.kind in ("weekly", "monthly") or (spec.custom is not None and spec.custom.schedule != "off")
    if whole and period.end > now:
        raise UsageError(
            f"{period.label} is not over until {period.end:%Y-%m-%d %H:%M} UTC; its {spec.kind} report covers the "
            "whole period"
        )
    return period


def _formats(values: list[str] | None) -> tuple[ReportFormat, ...] | None:
    if not values:
        return None
    names = tuple(name.strip() for value in values for name in value.split(",") if name.strip())
    try:
        return _FORMATS.validate_python(names)
    except ValidationError as exc:
        raise UsageError(f"--format takes html, csv, json or pdf (comma-separated or repeated): {names}") from exc


def _filter(args: argparse.Namespace) -> ReportFilter:
    values: dict[str, object] = {name: getattr(args, name) for name in FILTER_OPTIONS if getattr(args, name)}
    if args.days_left_min is not None or args.days_left_max is not None:
        values["days_left"] = {"min": args.days_left_min, "max": args.days_left_max}
    try:
        return ReportFilter.model_validate(values)
    except ValidationError as exc:
        reasons = "; ".join(f"--{_option(error['loc'])}: {error['msg']}" for error in exc.errors())
        raise UsageError(reasons) from exc


def _option(loc: tuple[int | str, ...]) -> str:
    """The command-line option a filter error is about (`level`, `days-left-max`)."""
    if loc and loc[0] == "days_left":
        return "days-left-min/--days-left-max"
    return str(loc[0]).replace("_", "-") if loc else "filter"


def show(console: Console, spec: ReportSpec, period: Period, publication: Publication) -> None:
    """Say what happened and where each object is."""
    what = f"{spec.kind} report {spec.name + ' ' if spec.name else ''}{period.label}"
    message = {
        "published": f"[green]published[/green] {what}; report.published.v1 queued for the reporter to send",
        "existing": f"[yellow]already published[/yellow] {what}; nothing written (--force writes it again, "
        "without announcing it twice)",
        "rebuilt": f"[green]rebuilt[/green] {what} under the same keys; not announced again",
    }[publication.outcome]
    console.print(message, soft_wrap=True)
    for key in publication.report.keys:
        console.print(f"  {escape(publication.report.location)}/{escape(key)}", highlight=False, soft_wrap=True)
