"""Publishing reports on the in-memory history and a folder bucket: the day's report written, recorded and
announced once per period, whoever asks and however often; the daily schedule publishing it from its hour on."""

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.reporter.adapters.bucket import LocalFolderBucket
from services.reporter.adapters.memory import InMemoryHistory
from services.reporter.adapters.rendering import ReportRenderer
from services.reporter.domain.report import StatusReport
from services.reporter.service_layer.publishing import ReportPublisher
from services.reporter.service_layer.scheduling import DailyReportScheduler
from shared.events import ReportPublished
from tests.unit.reporter.reporter_factories import NOW, evaluation

DAY = "daily/2026-11-27"


@dataclass
class Publishing:
    """A history and a bucket folder shared by any number of publishers (replicas), and their announced calls."""

    history: InMemoryHistory
    folder: Path
    kicks: list[None] = field(default_factory=list)

    def publisher(self) -> ReportPublisher:
        """One more replica's publisher on the shared history and folder."""
        return ReportPublisher(
            self.history, LocalFolderBucket(self.folder), ReportRenderer(), announced=lambda: self.kicks.append(None)
        )

    def announced(self) -> list[ReportPublished]:
        """The announcements enqueued, as payloads."""
        return [ReportPublished.model_validate(event.data) for event in self.history.outbox]


@pytest.fixture
def publishing(tmp_path: Path) -> Publishing:
    """An empty history and reports folder."""
    return Publishing(InMemoryHistory(), tmp_path / "reports")


async def test_the_days_report_is_written_recorded_and_announced_once(publishing: Publishing) -> None:
    """The first publish writes JSON and HTML and announces them; a later one that day returns the same record."""
    for event_id, item in enumerate(
        (evaluation("soon.example", days=5, level="critical"), evaluation("ok.example", days=200))
    ):
        await publishing.history.record_evaluation(f"e{event_id}", item)
    publisher = publishing.publisher()
    first = await publisher.publish_daily(NOW)
    again = await publisher.publish_daily(NOW + timedelta(hours=3))
    assert again == first
    assert first.keys == [f"{DAY}/status.json", f"{DAY}/status.html"]
    report = StatusReport.model_validate_json((publishing.folder / DAY / "status.json").read_bytes())
    assert [r.target for r in report.certificates] == ["soon.example:443", "ok.example:443"]
    assert "soon.example:443" in (publishing.folder / DAY / "status.html").read_text(encoding="utf-8")
    assert publishing.announced() == [first]
    assert len(publishing.kicks) == 1
    assert await publishing.history.reports() == [first]


async def test_racing_replicas_announce_the_day_once(publishing: Publishing) -> None:
    """Replicas publishing the same day at once all answer with one record; one announcement is enqueued."""
    replicas = [publishing.publisher() for _ in range(3)]
    results = await asyncio.gather(*(replica.publish_daily(NOW) for replica in replicas))
    assert all(result == results[0] for result in results)
    assert publishing.announced() == [results[0]]
    assert len(publishing.kicks) == 1


async def test_a_new_day_is_a_new_report(publishing: Publishing) -> None:
    """The next UTC day gets its own keys, record and announcement."""
    publisher = publishing.publisher()
    today = await publisher.publish_daily(NOW)
    tomorrow = await publisher.publish_daily(NOW + timedelta(days=1))
    assert tomorrow.keys[0] == "daily/2026-11-28/status.json"
    assert publishing.announced() == [today, tomorrow]
    assert await publishing.history.reports() == [tomorrow, today]


async def test_a_day_is_announced_under_one_event_id_wherever_it_is_published(tmp_path: Path) -> None:
    """Two histories publishing the same day enqueue announcements with the same id, so consumers drop one."""
    first, second = Publishing(InMemoryHistory(), tmp_path / "a"), Publishing(InMemoryHistory(), tmp_path / "b")
    for publishing in (first, second):
        await publishing.publisher().publish_daily(NOW)
    assert [e.id for e in first.history.outbox] == [e.id for e in second.history.outbox]


async def test_schedule_publishes_once_the_hour_has_come(publishing: Publishing) -> None:
    """Before the hour a tick publishes nothing; from it on, one tick publishes the day's report, later ones not."""
    moments = iter(
        [
            datetime(2026, 11, 27, 5, 59, tzinfo=UTC),
            datetime(2026, 11, 27, 6, 0, tzinfo=UTC),
            datetime(2026, 11, 27, 23, 0, tzinfo=UTC),
            datetime(2026, 11, 28, 6, 30, tzinfo=UTC),
        ]
    )
    scheduler = DailyReportScheduler(publishing.publisher(), clock=lambda: next(moments), hour_utc=6)
    await scheduler.tick()
    assert publishing.announced() == []
    await scheduler.tick()
    await scheduler.tick()
    assert [r.period_start for r in publishing.announced()] == [datetime(2026, 11, 27, tzinfo=UTC)]
    await scheduler.tick()
    assert [r.period_start.day for r in publishing.announced()] == [27, 28]
    assert len(publishing.kicks) == 2
