"""The report schedules: the daily, weekly and monthly reports and every scheduled custom report, each published
once per period from its moment on (catching up after downtime; see `domain.periods`)."""

from collections.abc import Sequence

import structlog

from services.reporter.domain.catalog import ScheduledReport
from services.reporter.domain.periods import Period
from services.reporter.service_layer.publishing import ReportPublisher
from shared.clock import Clock
from shared.periodic import PeriodicTask

log = structlog.get_logger(__name__)


class ReportScheduler:
    """Every `tick_seconds`, publishes each scheduled report that is due and that this process has not seen
    published; one that fails is retried next tick, and does not keep the others from publishing."""

    def __init__(
        self,
        publisher: ReportPublisher,
        scheduled: Sequence[ScheduledReport],
        *,
        clock: Clock,
        tick_seconds: float = 60.0,
    ) -> None:
        self._publisher, self._scheduled, self._clock = publisher, tuple(scheduled), clock
        self._seen: dict[int, Period] = {}  # index in `scheduled` → the last period seen published
        self._loop = PeriodicTask("reporter:report-schedule", self.tick, interval=tick_seconds)

    async def start(self) -> None:
        """Start the schedule loop."""
        await self._loop.start()

    async def stop(self) -> None:
        """Stop the loop (a publish in progress is cancelled; nothing of it is announced, the next start redoes it)."""
        await self._loop.stop()

    async def tick(self) -> None:
        """Publish every report that is due now; raises an ExceptionGroup of the failures after trying them all."""
        now = self._clock()
        failures: list[Exception] = []
        for index, item in enumerate(self._scheduled):
            period = item.schedule.due(now)
            if period is None or self._seen.get(index) == period:
                continue
            try:
                await self._publisher.publish(item.spec, period, now=now)
            except Exception as exc:  # collected: the other reports still publish, then the tick fails with it
                log.error(
                    "scheduled_report_failed",
                    report=item.spec.prefix(period),
                    error_type=type(exc).__name__,
                    error=str(exc)[:500],
                )
                failures.append(exc)
                continue
            self._seen[index] = period
        if failures:
            raise ExceptionGroup("scheduled reports not published", failures)
