"""Building a report of one kind and period from the history, rendered in the formats asked for.

The daily status report reads the status of every target (`HistoryStore.statuses`), the alarms not resolved and
the alarm transitions of its last 24 hours; the weekly and monthly reports read slim facts (`HistoryStore.estate`
and friends); so each stays small at 100,000 targets.
Rendering (templates, charts, PDF layout) is CPU work of a second or more on a large estate, so it runs in a
worker thread while the event loop keeps serving, each format written into a file of a folder the caller gives
as it is rendered (a daily report of 100,000 targets is 150 MB of output; on disk, not in the reporter's memory).
The caller (the publisher, `certmon report`) decides where the objects go and announces them.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from services.reporter.domain.compliance import build_compliance_report, compliance_summary
from services.reporter.domain.facts import ESTATE_WINDOW
from services.reporter.domain.report import ALARM_LOOKBACK, AlarmLine, alarm_lines, build_status_report
from services.reporter.domain.trends import build_weekly_report
from services.reporter.ports import AnyReport, HistoryStore, ReportRendering
from shared.config import CertmonConfig
from shared.config.reports import ReportFormat

CONTENT_TYPES: dict[ReportFormat, str] = {
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "pdf": "application/pdf",
}


class UnknownFormat(ValueError):
    """A format other than html, csv, json and pdf was asked for."""


@dataclass(frozen=True)
class ReportObject:
    """One rendered object of a report: its name (`weekly.html`), the file its bytes were written to and their
    content type."""

    name: str
    path: Path
    content_type: str


class ReportBuilder:
    """Builds the daily, weekly and monthly reports from the history and renders them."""

    def __init__(self, history: HistoryStore, renderer: ReportRendering, config: CertmonConfig) -> None:
        self._history, self._renderer, self._config = history, renderer, config

    async def build(
        self,
        kind: Literal["daily", "weekly", "monthly"],
        start: datetime,
        end: datetime,
        *,
        now: datetime,
        formats: Sequence[str],
        folder: Path,
    ) -> list[ReportObject]:
        """The report of `kind` over `[start, end)` as of `now`, one object per format in the order asked, each
        written to a file in `folder` (which the caller removes once the objects are stored).

        Raises UnknownFormat before reading anything if a format is not one of html, csv, json and pdf.
        """
        wanted = [_format(name) for name in formats]
        report = await self._report(kind, start, end, now)
        return await asyncio.to_thread(render_objects, self._renderer, report, kind, wanted, folder)

    async def _report(
        self, kind: Literal["daily", "weekly", "monthly"], start: datetime, end: datetime, now: datetime
    ) -> AnyReport:
        if kind == "weekly":
            # The five reads are independent: asked at once, the database answers one while this process decodes
            # another (about a third less wall time at 100,000 targets; each estate is held either way).
            at_start, at_end, first_seen, alarm_steps, levels = await asyncio.gather(
                self._history.estate(start, since=start - ESTATE_WINDOW),
                self._history.estate(end, since=end - ESTATE_WINDOW),
                self._history.first_seen(start, end),
                self._history.alarm_steps(start, end),
                self._history.daily_levels(start, end),
            )
            return build_weekly_report(
                at_start,
                at_end,
                first_seen,
                alarm_steps,
                levels,
                start=start,
                end=end,
                now=now,
            )
        if kind == "monthly":
            policy = self._config.reports.compliance
            # The previous month's estate is summed up before this month's is read: one estate in memory at a time.
            previous = compliance_summary(
                await self._history.estate(start, since=start - ESTATE_WINDOW), policy, as_of=start
            )
            return build_compliance_report(
                await self._history.estate(end, since=end - ESTATE_WINDOW),
                policy=policy,
                previous=previous if previous.checked else None,
                start=start,
                end=end,
                now=now,
            )
        # The alarm events become the report's lines before the statuses are read: never both in memory.
        alarms = alarm_lines(await status_alarms(self._history, now), now)
        return build_status_report(await self._history.statuses(), alarms, now=now, period=(start, end))


def render_objects(
    renderer: ReportRendering, report: AnyReport, name: str, formats: Sequence[ReportFormat], folder: Path
) -> list[ReportObject]:
    """Write `report` in each of `formats` to `folder/name.format`, one format at a time (blocking: a worker
    thread's job)."""
    objects = []
    for fmt in formats:
        path = folder / f"{name}.{fmt}"
        with path.open("wb") as out:
            renderer.write(report, fmt, out)
        objects.append(ReportObject(path.name, path, CONTENT_TYPES[fmt]))
    return objects


async def status_alarms(history: HistoryStore, now: datetime) -> list[AlarmLine]:
    """What a status report at `now` reads of the alarm history: the latest transition of each alarm not resolved,
    and every transition since `ALARM_LOOKBACK` before `now` (each once), as the lines the report lists."""
    return await history.alarm_transitions(since=now - ALARM_LOOKBACK)


def _format(name: str) -> ReportFormat:
    for known in CONTENT_TYPES:
        if name == known:
            return known
    raise UnknownFormat(f"no report format {name!r}: give html, csv, json or pdf")
