"""The daily report schedule: once per UTC day from `daily_report_hour_utc` on (catching up after downtime)."""

from datetime import datetime

import structlog

from services.reporter.domain.report import daily_period, daily_report_due
from services.reporter.service_layer.publishing import ReportPublisher
from shared.clock import Clock
from shared.periodic import PeriodicTask

log = structlog.get_logger(__name__)


class DailyReportScheduler:
    """Every `tick_seconds`, publishes today's report if it is due; a failure is retried next tick."""

    def __init__(self, publisher: ReportPublisher, *, clock: Clock, hour_utc: int, tick_seconds: float = 60.0) -> None:
        self._publisher, self._clock, self._hour = publisher, clock, hour_utc
        self._published_period: datetime | None = None
        self._loop = PeriodicTask(
            "reporter:daily-schedule",
            self.tick,
            interval=tick_seconds,
        )

    async def start(self) -> None:
        """Start the schedule loop."""
        await self._loop.start()

    async def stop(self) -> None:
        """Stop the loop (a publish in progress is cancelled; the next start completes it)."""
        await self._loop.stop()

    async def tick(self) -> None:
        """Publish today's report if it is due and this process has not seen it published."""
        now = self._clock()
        period_start, _ = daily_period(now)
        if daily_report_due(now, hour_utc=self._hour, published=self._published_period == period_start):
            await self._publisher.publish_daily(now)
            self._published_period = period_start
