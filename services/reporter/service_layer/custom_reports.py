"""Building a custom report: the status report of the targets its filter selects, rendered in its formats the way
the daily status report is (`ReportRendering.render`), in a worker thread like every report."""

import asyncio
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from services.reporter.domain.custom import Tags, custom_status_report
from services.reporter.domain.periods import Period
from services.reporter.domain.report import alarm_lines
from services.reporter.ports import HistoryStore, ReportRendering
from services.reporter.service_layer.building import ReportObject, render_objects, status_alarms
from shared.config import CustomReport
from shared.config.reports import ReportFormat


class CustomReportBuilder:
    """Reads the targets' statuses and the alarms a status report lists, selects with the report's filter, renders."""

    def __init__(self, history: HistoryStore, renderer: ReportRendering, tags: Tags) -> None:
        self._history, self._renderer, self._tags = history, renderer, tags

    async def build(
        self,
        custom: CustomReport,
        period: Period,
        *,
        now: datetime,
        formats: Sequence[ReportFormat],
        folder: Path,
    ) -> list[ReportObject]:
        """The objects of `custom` over `period`, built at `now`, one per format in the order given, each named
        after the report (`shop-expiring.html`) and written to a file in `folder`."""
        # The alarm events become the report's lines before the statuses are read: never both in memory.
        alarms = alarm_lines(await status_alarms(self._history, now), now)
        report = custom_status_report(
            await self._history.statuses(),
            alarms,
            custom.filter,
            tags=self._tags,
            now=now,
            period=period,
            name=custom.name,
        )
        return await asyncio.to_thread(render_objects, self._renderer, report, custom.name, formats, folder)
