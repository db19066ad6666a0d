"""Publishing reports on the in-memory history and a folder bucket: each kind and custom report written, recorded
and announced once per period, whoever asks and however often; rebuilt without a second announcement; uploads
retried, and nothing announced before every object is written; the schedules publishing what is due."""

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.reporter.adapters.bucket import LocalFolderBucket
from services.reporter.adapters.memory import InMemoryHistory
from services.reporter.adapters.rendering import ReportRenderer
from services.reporter.bootstrap import build_publisher
from services.reporter.domain.catalog import ReportSpec, report_spec, scheduled_reports
from services.reporter.domain.periods import parse_period
from services.reporter.domain.report import StatusReport
from services.reporter.ports import Bucket, BucketError
from services.reporter.service_layer.publishing import ReportPublisher, UploadRetry
from services.reporter.service_layer.scheduling import ReportScheduler
from shared.config import CertmonConfig, CustomReport, ReportFilter
from shared.events import ReportPublished
from shared.periodic import Backoff
from tests.unit.reporter.reporter_buckets import FailingBucket
from tests.unit.reporter.reporter_factories import NOW, evaluation

TODAY = parse_period("daily", "2026-11-27")
LAST_WEEK = parse_period("weekly", "2026-W47")
QUICK = UploadRetry(attempts=3, backoff=Backoff(initial=0.001, maximum=0.002))
CONFIG = CertmonConfig.model_validate(
    {
        "targets": [{"host": "soon.example", "tags": ["shop"]}, {"host": "ok.example"}],
        "reports": {
            "formats": ["html", "json"],
            "custom": [
                {"name": "shop", "schedule": "weekly", "filter": {"tag": ["shop"]}, "formats": ["json", "html"]},
                {"name": "healthy", "schedule": "daily", "filter": {"level": ["ok"]}, "formats": ["json"]},
            ],
        },
    }
)


@dataclass
class Publishing:
    """A history and a bucket folder shared by any number of publishers (replicas), and their announced calls."""

    history: InMemoryHistory
    folder: Path
    kicks: list[None] = field(default_factory=list)

    def publisher(self, bucket: Bucket | None = None) -> ReportPublisher:
        """One more replica's publisher on the shared history and folder (or on `bucket`)."""
        return build_publisher(
            CONFIG,
            self.history,
            bucket or LocalFolderBucket(self.folder),
            renderer=ReportRenderer(),
            announced=lambda: self.kicks.append(None),
            retry=QUICK,
        )

    def announced(self) -> list[ReportPublished]:
        """The announcements enqueued, as payloads."""
        return [ReportPublished.model_validate(event.data) for event in self.history.outbox]

    def spec(self, kind: str, name: str | None = None) -> ReportSpec:
        """The report of `kind` (or custom `name`) that CONFIG defines."""
        return report_spec(CONFIG.reports, kind, name)


@pytest.fixture
async def publishing(tmp_path: Path) -> Publishing:
    """A history of two targets, one expiring in 5 days tagged `shop`, one healthy; an empty reports folder."""
    history = InMemoryHistory()
    for event_id, item in enumerate(
        (evaluation("soon.example", days=5, level="critical"), evaluation("ok.example", days=200))
    ):
        await history.record_evaluation(f"e{event_id}", item)
    return Publishing(history, tmp_path / "reports")


async def test_the_days_report_is_written_recorded_and_announced_once(publishing: Publishing) -> None:
    """The first publish writes each format under `daily/<day>/` and announces it; a later one returns the record."""
    publisher = publishing.publisher()
    first = await publisher.publish(publishing.spec("daily"), TODAY, now=NOW)
    again = await publisher.publish(publishing.spec("daily"), TODAY, now=NOW + timedelta(hours=3))
    assert (first.outcome, again.outcome) == ("published", "existing")
    assert again.report == first.report
    report = first.report
    assert (report.kind, report.name, report.period, report.location) == (
        "daily",
        None,
        "2026-11-27",
        str(publishing.folder.resolve()),
    )
    assert len(report.keys) == 2
    assert all(key.startswith("daily/2026-11-27/") for key in report.keys)
    assert sorted(Path(key).suffix for key in report.keys) == [".html", ".json"]
    assert all((publishing.folder / key).is_file() for key in report.keys)
    assert publishing.announced() == [report]
    assert len(publishing.kicks) == 1
    assert await publishing.history.reports() == [report]


@pytest.mark.parametrize(("kind", "period"), [("weekly", "2026-W47"), ("monthly", "2026-10")])
async def test_weekly_and_monthly_reports_go_under_their_period(publishing: Publishing, kind: str, period: str) -> None:
    """A weekly or monthly report is written under `<kind>/<label>/` and announced once, with its period."""
    publisher = publishing.publisher()
    span = parse_period(kind, period)
    published = await publisher.publish(publishing.spec(kind), span, now=NOW)
    await publisher.publish(publishing.spec(kind), span, now=NOW)
    assert all(key.startswith(f"{kind}/{period}/") for key in published.report.keys)
    assert (published.report.period_start, published.report.period_end) == (span.start, span.end)
    assert publishing.announced() == [published.report]


async def test_a_custom_report_holds_what_its_filter_selects(publishing: Publishing) -> None:
    """The `shop` report (tag shop, from certmon.yaml's targets) holds soon.example only, under
    `custom/shop/<week>/`, in its own formats, and is announced with its name."""
    published = (await publishing.publisher().publish(publishing.spec("custom", "shop"), LAST_WEEK, now=NOW)).report
    assert (published.kind, published.name, published.period) == ("custom", "shop", "2026-W47")
    assert all(key.startswith("custom/shop/2026-W47/") for key in published.keys)
    json_key = next(key for key in published.keys if key.endswith(".json"))
    report = StatusReport.model_validate_json((publishing.folder / json_key).read_bytes())
    assert report.kind == "custom"
    assert [row.target for row in report.certificates] == ["soon.example:443"]
    assert publishing.announced() == [published]


async def test_a_custom_report_renders_like_the_daily_one_in_every_format(publishing: Publishing) -> None:
    """Asked for PDF, CSV and HTML, a custom report is written as a PDF document, a CSV table of its targets and
    the status page titled with its name, each named after the report."""
    shop = publishing.spec("custom", "shop")
    spec = ReportSpec("custom", ("pdf", "csv", "html"), shop.custom)
    published = (await publishing.publisher().publish(spec, LAST_WEEK, now=NOW)).report
    assert published.keys == [f"custom/shop/2026-W47/shop.{fmt}" for fmt in ("pdf", "csv", "html")]
    pdf, csv, html = ((publishing.folder / key).read_bytes() for key in published.keys)
    assert pdf.startswith(b"%PDF-")
    assert b"soon.example:443" in csv and b"ok.example:443" not in csv
    assert "certmon custom report shop" in html.decode()


async def test_a_custom_report_selecting_nothing_says_so(publishing: Publishing) -> None:
    """A filter no target passes still gives a report, which says that nothing matches."""
    nobody = CustomReport(name="nobody", filter=ReportFilter(owner=["nobody"]), formats=("html",))
    published = (await publishing.publisher().publish(ReportSpec("custom", ("html",), nobody), TODAY, now=NOW)).report
    html = (publishing.folder / published.keys[0]).read_text(encoding="utf-8")
    assert "No target matches this report's filter." in html


async def test_custom_reports_of_one_period_are_each_announced_once(publishing: Publishing) -> None:
    """Two custom reports over the same day are two reports; each is announced once, under its own event id."""
    publisher = publishing.publisher()
    for _ in range(2):
        for name in ("shop", "healthy"):
            await publisher.publish(publishing.spec("custom", name), TODAY, now=NOW)
    assert [(r.name, r.period) for r in publishing.announced()] == [("shop", "2026-11-27"), ("healthy", "2026-11-27")]
    assert len({event.id for event in publishing.history.outbox}) == 2


async def test_racing_replicas_announce_each_report_once(publishing: Publishing) -> None:
    """Replicas publishing the same reports at once all answer with one record per report; one announcement each."""
    replicas = [publishing.publisher() for _ in range(3)]
    specs = [(publishing.spec("daily"), TODAY), (publishing.spec("weekly"), LAST_WEEK)]
    results = await asyncio.gather(
        *(replica.publish(spec, period, now=NOW) for replica in replicas for spec, period in specs)
    )
    assert sorted(r.outcome for r in results).count("published") == 2
    assert sorted((r.kind, r.period) for r in publishing.announced()) == [
        ("daily", "2026-11-27"),
        ("weekly", "2026-W47"),
    ]
    assert {r.report.model_dump_json() for r in results} == {r.model_dump_json() for r in publishing.announced()}
    assert len(publishing.kicks) == 2


async def test_a_rebuild_writes_again_without_a_second_announcement(publishing: Publishing) -> None:
    """`rebuild` writes the objects again under the same keys (now with a new target), keeps the record, and
    enqueues nothing more."""
    publisher = publishing.publisher()
    first = await publisher.publish(publishing.spec("custom", "healthy"), TODAY, now=NOW)
    await publishing.history.record_evaluation("e9", evaluation("new.example", days=300))
    rebuilt = await publisher.publish(publishing.spec("custom", "healthy"), TODAY, now=NOW, rebuild=True)
    assert rebuilt.outcome == "rebuilt"
    assert rebuilt.report.keys == first.report.keys
    report = StatusReport.model_validate_json((publishing.folder / rebuilt.report.keys[0]).read_bytes())
    assert [row.target for row in report.certificates] == ["ok.example:443", "new.example:443"]
    assert publishing.announced() == [first.report]
    assert await publishing.history.reports() == [first.report]
    assert len(publishing.kicks) == 1


async def test_a_failed_upload_is_retried_and_announced_once_written(publishing: Publishing) -> None:
    """Two refused writes are retried; the report is then written whole and announced once."""
    bucket = FailingBucket(LocalFolderBucket(publishing.folder), failures=2)
    published = await publishing.publisher(bucket).publish(publishing.spec("weekly"), LAST_WEEK, now=NOW)
    assert published.outcome == "published"
    assert bucket.tries == 2 + len(published.report.keys)
    assert all((publishing.folder / key).is_file() for key in published.report.keys)
    assert publishing.announced() == [published.report]


async def test_an_upload_that_keeps_failing_announces_nothing_and_is_tried_again_later(publishing: Publishing) -> None:
    """When the retries run out the publish fails with BucketError: nothing recorded, nothing announced; the next
    publish of the period, once the bucket writes again, publishes it."""
    bucket = FailingBucket(LocalFolderBucket(publishing.folder), failures=QUICK.attempts)
    with pytest.raises(BucketError, match="refused"):
        await publishing.publisher(bucket).publish(publishing.spec("weekly"), LAST_WEEK, now=NOW)
    assert bucket.tries == QUICK.attempts
    assert publishing.announced() == []
    assert await publishing.history.reports() == []
    assert publishing.kicks == []
    again = await publishing.publisher(bucket).publish(publishing.spec("weekly"), LAST_WEEK, now=NOW)
    assert again.outcome == "published"
    assert publishing.announced() == [again.report]


async def test_a_report_is_announced_under_one_event_id_wherever_it_is_published(tmp_path: Path) -> None:
    """Two histories publishing the same day enqueue announcements with the same id, so consumers drop one."""
    first, second = Publishing(InMemoryHistory(), tmp_path / "a"), Publishing(InMemoryHistory(), tmp_path / "b")
    for publishing in (first, second):
        await publishing.publisher().publish(publishing.spec("daily"), TODAY, now=NOW)
        await publishing.publisher().publish(publishing.spec("custom", "shop"), LAST_WEEK, now=NOW)
    assert [e.id for e in first.history.outbox] == [e.id for e in second.history.outbox]
    assert len({e.id for e in first.history.outbox}) == 2


def utc(*args: int) -> datetime:
    """A UTC moment."""
    return datetime(*args, tzinfo=UTC)


def published(publishing: Publishing) -> list[tuple[str, str | None, str | None]]:
    """(kind, name, period) of each announcement, in order."""
    return [(r.kind, r.name, r.period) for r in publishing.announced()]


async def test_the_schedules_publish_what_is_due_once(publishing: Publishing) -> None:
    """Monday 05:59: last week's and last month's reports and the custom ones fall due (caught up), the daily not
    yet; 06:00: the daily, the week just over and yesterday's custom; later that day nothing more; Tuesday 06:00
    its daily, November's report and Monday's custom."""
    moments = iter([utc(2026, 11, 30, 5, 59), utc(2026, 11, 30, 6), utc(2026, 11, 30, 23), utc(2026, 12, 1, 6)])
    scheduled = scheduled_reports(CONFIG.reports, daily_hour_utc=6)
    scheduler = ReportScheduler(publishing.publisher(), scheduled, clock=lambda: next(moments))
    await scheduler.tick()
    assert published(publishing) == [
        ("weekly", None, "2026-W47"),
        ("monthly", None, "2026-10"),
        ("custom", "shop", "2026-W47"),
        ("custom", "healthy", "2026-11-28"),
    ]
    await scheduler.tick()
    assert published(publishing)[4:] == [
        ("daily", None, "2026-11-30"),
        ("weekly", None, "2026-W48"),
        ("custom", "shop", "2026-W48"),
        ("custom", "healthy", "2026-11-29"),
    ]
    await scheduler.tick()
    assert len(published(publishing)) == 8
    await scheduler.tick()
    assert published(publishing)[8:] == [
        ("daily", None, "2026-12-01"),
        ("monthly", None, "2026-11"),
        ("custom", "healthy", "2026-11-30"),
    ]
    assert len(publishing.kicks) == 11


async def test_a_failing_report_does_not_hold_back_the_others(publishing: Publishing) -> None:
    """A tick where the weekly report cannot be written still publishes the others, then fails; the next tick
    publishes the weekly one."""
    bucket = FailingBucket(LocalFolderBucket(publishing.folder), failures=QUICK.attempts, only="weekly/")
    scheduled = scheduled_reports(CONFIG.reports, daily_hour_utc=6)
    scheduler = ReportScheduler(publishing.publisher(bucket), scheduled, clock=lambda: utc(2026, 11, 30, 5, 59))
    with pytest.raises(ExceptionGroup) as failed:
        await scheduler.tick()
    assert [type(e) for e in failed.value.exceptions] == [BucketError]
    assert ("weekly", None, "2026-W47") not in published(publishing)
    assert len(published(publishing)) == 3
    await scheduler.tick()
    assert published(publishing)[3:] == [("weekly", None, "2026-W47")]
