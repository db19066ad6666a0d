"""Estate metrics for Prometheus, recomputed from the latest evaluations on every scrape.

certmon's own families (`certmon_*`: alarm level, grade, days left per target and certificate) sit beside the
families of ssl_exporter (`ssl_exporter_metrics`) and x509-certificate-exporter (`x509_exporter_metrics`) under
their names and labels, so existing dashboards and alert rules work unchanged. docs/estate-metrics.md lists them.

A scrape's memory does not grow with the estate: the evaluations come a page at a time (`metric_source`), each
page is decoded and rendered in a worker thread and its lines spooled to one temporary file per family
(`metric_text.FamilyFiles`), and the response streams the files. Scrapes that arrive together (two Prometheus
replicas) take turns on one lock, and a rendering finished a few seconds before a scrape arrived serves it too.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from services.reporter.adapters.metric_labels import Names, certificates
from services.reporter.adapters.metric_source import LatestEvaluations, Page
from services.reporter.adapters.metric_text import Family, FamilyFiles, escape
from services.reporter.adapters.ssl_exporter_metrics import SslExporterFamilies
from services.reporter.adapters.x509_exporter_metrics import X509ExporterFamilies
from services.reporter.domain.report import LEVELS
from shared.clock import Clock, utc_now
from shared.events import Evaluation
from shared.events.evaluation import LEVEL_ORDER

#: How old a finished rendering may be and still answer a scrape: long enough for scrapes that arrive together,
#: far shorter than any scrape interval, so each scrape of one Prometheus sees the estate anew.
REUSE_SECONDS = 5.0


class EstateRendering:
    """One scrape's text as of `now`, built from the targets in key order, a batch at a time, into files."""

    def __init__(self, now: datetime) -> None:
        self._names = Names()
        self._ssl = SslExporterFamilies(self._names)
        self._x509 = X509ExporterFamilies(self._names, now)
        self._levels: Counter[str] = Counter()
        self._by_level = Family("certmon_certificates", "Targets by the alarm level of their latest evaluation.")
        self._not_after = Family(
            "certmon_cert_not_after_timestamp_seconds",
            "NotAfter of the leaf certificate each target serves, as a Unix timestamp.",
        )
        self._days_left = Family(
            "certmon_cert_days_remaining", "Days (fractional) until the leaf certificate each target serves expires."
        )
        self._alarm_level = Family(
            "certmon_target_alarm_level",
            "Alarm level of each target's latest evaluation: 0 ok, 1 info, 2 warning, 3 critical.",
        )
        self._grade = Family(
            "certmon_target_grade_info", "Security grade of each target's latest evaluation (always 1)."
        )
        self.files = FamilyFiles(
            [
                self._by_level,
                self._not_after,
                self._days_left,
                self._alarm_level,
                self._grade,
                *self._ssl.families(),
                *self._x509.families(),
            ]
        )

    def add(self, evaluations: Iterable[Evaluation]) -> None:
        """Render a batch of targets (each after those of the batches before) and spool its lines."""
        names = self._names
        for evaluation in evaluations:
            target = escape(evaluation.target_key)
            self._levels[evaluation.alarm.level] += 1
            self._alarm_level.add(f'target="{target}"', LEVEL_ORDER[evaluation.alarm.level])
            if evaluation.security is not None:
                self._grade.add(f'grade="{evaluation.security.grade}",target="{target}"', 1)
            certs = certificates(evaluation)
            self._ssl.add(evaluation, certs, target)
            self._x509.add(evaluation, certs, target)
            cert = evaluation.certificate
            if cert is None:
                continue
            fields = names.fields(cert.subject), names.fields(cert.issuer)
            # serial_number stays in hex here, as this family always had it (the exporter families print decimal).
            label_text = (
                f'target="{target}",subject_CN="{escape(fields[0].get("CN", ""))}",'
                f'issuer_CN="{escape(fields[1].get("CN", ""))}",serial_number="{escape(cert.serial)}"'
            )
            self._not_after.add(label_text, cert.not_after.timestamp())
            if evaluation.expiry is not None:
                self._days_left.add(label_text, evaluation.expiry.days_remaining)
        self.files.spool()

    def add_page(self, page: Page) -> None:
        """Decode a page and render it; the evaluations are dropped on return."""
        self.add(page())

    def finish(self) -> FamilyFiles:
        """Write the estate-wide counts, once every target was added; the files then hold the whole text."""
        for level in LEVELS:
            self._by_level.add(f'level="{level}"', self._levels.get(level, 0))
        self._x509.finish()
        self.files.complete()
        return self.files


def exposition(evaluations: Iterable[Evaluation], *, now: datetime) -> bytes:
    """The whole text for `evaluations` (the latest per target, by target key) as of `now`, in one piece."""
    rendering = EstateRendering(now)
    rendering.add(evaluations)
    files = rendering.finish()
    try:
        return b"".join(files.chunks())
    finally:
        files.close()


@dataclass(frozen=True)
class _Rendered:
    files: FamilyFiles
    finished: float  # time.monotonic()


class EstateMetrics:
    """Serves the estate families of `source` to scrapes, rendering at most once per scrape interval burst."""

    def __init__(
        self, source: LatestEvaluations, *, clock: Clock = utc_now, reuse_seconds: float = REUSE_SECONDS
    ) -> None:
        self._source, self._clock, self._reuse_seconds = source, clock, reuse_seconds
        self._lock = asyncio.Lock()
        self._last: _Rendered | None = None

    async def scrape(self) -> Iterator[bytes]:
        """The text in chunks, from a rendering finished at most `reuse_seconds` before this call (or while it
        waited for the one under way), else from a new one. Read the chunks in a worker thread (file reads)."""
        asked = time.monotonic()
        async with self._lock:
            last = self._last
            if last is None or last.finished < asked - self._reuse_seconds:
                self._last = None  # the files of the one before go as soon as its readers are done
                last = self._last = await self._render()
                asyncio.get_running_loop().call_later(self._reuse_seconds, self._forget, last)
        return last.files.chunks()

    def _forget(self, rendered: _Rendered) -> None:
        # Past its reuse, a rendering only takes disk space: its readers hold it while they stream.
        if self._last is rendered:
            self._last = None

    async def _render(self) -> _Rendered:
        rendering = EstateRendering(self._clock())
        async for page in self._source.pages():
            # Seconds of CPU per 100,000 targets: in a worker thread, the event loop keeps serving meanwhile.
            await asyncio.to_thread(rendering.add_page, page)
        files = await asyncio.to_thread(rendering.finish)
        return _Rendered(files, time.monotonic())
