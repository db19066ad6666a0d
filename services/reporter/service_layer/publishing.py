"""Publishing reports: render the status report, write it to the bucket, record it and announce it once.

The history claims the report's (kind, period) and enqueues its `report.published.v1` announcement atomically
(`HistoryStore.record_report`), so replicas or restarts racing on the same day announce the report exactly once.
"""

from collections.abc import Callable
from datetime import datetime

import structlog

from services.reporter.domain.report import build_status_report, daily_period
from services.reporter.ports import Bucket, HistoryStore, ReportRendering
from shared.events import ReportPublished, derived_id, make_event

log = structlog.get_logger(__name__)

SOURCE = "certmon/reporter"


class ReportPublisher:
    """Builds, writes and announces reports; `announced` is called after an announcement is enqueued."""

    def __init__(
        self,
        history: HistoryStore,
        bucket: Bucket,
        renderer: ReportRendering,
        *,
        announced: Callable[[], None] = lambda: None,
    ) -> None:
        self._history, self._bucket, self._renderer, self._announced = history, bucket, renderer, announced

    async def publish_daily(self, now: datetime) -> ReportPublished:
        """Publish the daily status report of `now`'s UTC day, or return the one already published for it."""
        start, end = daily_period(now)
        existing = await self._history.report_for("daily", start, end)
        if existing is not None:
            return existing
        report = build_status_report(
            await self._history.latest(),
            [event for _, event in await self._history.alarm_events()],
            now=now,
            period=(start, end),
        )
        base = f"daily/{start:%Y-%m-%d}"
        keys = [
            await self._bucket.put(f"{base}/status.json", self._renderer.to_json(report), "application/json"),
            await self._bucket.put(
                f"{base}/status.html", self._renderer.to_html(report).encode(), "text/html; charset=utf-8"
            ),
        ]
        published = ReportPublished(
            kind="daily", period_start=start, period_end=end, keys=keys, location=self._bucket.location
        )
        announcement = make_event(
            "report.published.v1",
            published,
            source=SOURCE,
            subject=base,
            event_id=derived_id("report.published.v1", "daily", start.isoformat(), end.isoformat()),
        )
        if await self._history.record_report(base, published, announcement):
            log.info("report_published", kind="daily", period_start=start.isoformat(), location=published.location)
            self._announced()
            return published
        # Another replica claimed the day between our check and our commit; its record is the one announced.
        return await self._history.report_for("daily", start, end) or published
