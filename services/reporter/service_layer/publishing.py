"""Publishing reports: build a report's objects, write them to the bucket, then record and announce it once.

A report is published once per (kind, custom report name, period) across replicas and restarts: the history
claims it and enqueues its `report.published.v1` announcement in one transaction (`HistoryStore.record_report`),
and only after every object is written, so an upload that fails leaves nothing recorded or announced and the next
attempt starts again. Each write is retried a few times with backoff before the publication fails.

A period already published is not built again unless asked (`rebuild`, what `certmon report --force` does): the
objects are then written again under the same keys, and the report keeps its record and is not announced twice.
"""

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import structlog

from services.reporter.domain.catalog import ReportSpec
from services.reporter.domain.periods import Period
from services.reporter.ports import Bucket, BucketError, HistoryStore
from services.reporter.service_layer.building import ReportBuilder, ReportObject
from services.reporter.service_layer.custom_reports import CustomReportBuilder
from services.reporter.service_layer.metrics import REPORT_FAILURES, REPORTS_PUBLISHED
from shared.events import ReportPublished, derived_id, make_event
from shared.periodic import Backoff

log = structlog.get_logger(__name__)

SOURCE = "certmon/reporter"

#: `published`: written, recorded and announced now; `existing`: published before (by this process, another
#: replica or the command line), nothing written; `rebuilt`: written again, keeping its record and announcement.
Outcome = Literal["published", "existing", "rebuilt"]


@dataclass(frozen=True)
class Publication:
    """The report as recorded (as written now, when rebuilt) and what publishing it came to."""

    report: ReportPublished
    outcome: Outcome


@dataclass(frozen=True)
class UploadRetry:
    """How often one object's write is tried, and how long to wait between tries."""

    attempts: int = 4
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=1.0, maximum=8.0))


#: Four tries over about ten seconds at most: long enough for a bucket that blinks, short of holding a tick long.
DEFAULT_RETRY = UploadRetry()


class ReportPublisher:
    """Builds, writes, records and announces reports; `announced` is called after an announcement is enqueued."""

    def __init__(
        self,
        history: HistoryStore,
        bucket: Bucket,
        builder: ReportBuilder,
        custom: CustomReportBuilder,
        *,
        announced: Callable[[], None] = lambda: None,
        retry: UploadRetry = DEFAULT_RETRY,
    ) -> None:
        self._history, self._bucket, self._builder, self._custom = history, bucket, builder, custom
        self._announced, self._retry = announced, retry

    async def publish(self, spec: ReportSpec, period: Period, *, now: datetime, rebuild: bool = False) -> Publication:
        """Publish the report `spec` names over `period`, built at `now`, unless it was published before (then
        that record, or with `rebuild` its objects written again). Raises BucketError when an object cannot be
        written after the retries; nothing is recorded or announced then."""
        existing = await self._history.report_for(spec.kind, period.start, period.end, name=spec.name)
        if existing is not None and not rebuild:
            return Publication(existing, "existing")
        prefix = spec.prefix(period)
        try:
            # The objects are rendered into files and written from them, so their bytes are never held in memory.
            with tempfile.TemporaryDirectory(prefix="certmon-report-") as folder:
                built = await self._build(spec, period, now=now, folder=Path(folder))
                keys = [await self._put(f"{prefix}/{item.name}", item) for item in built]
        except Exception:
            REPORT_FAILURES.labels(spec.kind).inc()
            raise
        written = ReportPublished(
            kind=spec.kind,
            name=spec.name,
            period=period.label,
            period_start=period.start,
            period_end=period.end,
            keys=keys,
            location=self._bucket.location,
        )
        if existing is not None:
            log.info("report_rebuilt", report=prefix, location=written.location)
            return Publication(written, "rebuilt")
        announcement = make_event(
            "report.published.v1", written, source=SOURCE, subject=prefix, event_id=_announcement_id(spec, period)
        )
        if await self._history.record_report(prefix, written, announcement):
            log.info("report_published", report=prefix, location=written.location, objects=len(keys))
            REPORTS_PUBLISHED.labels(spec.kind).inc()
            self._announced()
            return Publication(written, "published")
        # Another replica claimed the period between our check and our commit; its record is the one announced.
        recorded = await self._history.report_for(spec.kind, period.start, period.end, name=spec.name)
        return Publication(recorded or written, "existing")

    async def _build(self, spec: ReportSpec, period: Period, *, now: datetime, folder: Path) -> list[ReportObject]:
        if spec.custom is not None:
            return await self._custom.build(spec.custom, period, now=now, formats=spec.formats, folder=folder)
        assert spec.kind != "custom"  # a custom spec always carries its report
        return await self._builder.build(
            spec.kind, period.start, period.end, now=now, formats=spec.formats, folder=folder
        )

    async def _put(self, key: str, item: ReportObject) -> str:
        """Write one object, retrying with backoff; the last failure is raised."""
        attempt = 1
        while True:
            try:
                return await self._bucket.put_file(key, item.path, item.content_type)
            except BucketError as exc:
                if attempt >= self._retry.attempts:
                    raise
                delay = self._retry.backoff.delay(attempt)
                log.warning(
                    "report_upload_failed", key=key, attempt=attempt, error=str(exc), retry_in_seconds=round(delay, 2)
                )
                await asyncio.sleep(delay)
                attempt += 1


def _announcement_id(spec: ReportSpec, period: Period) -> str:
    """The same id wherever and however often a report is announced, so consumers drop a duplicate."""
    parts = (spec.kind, spec.name) if spec.name is not None else (spec.kind,)
    return derived_id("report.published.v1", *parts, period.start.isoformat(), period.end.isoformat())
