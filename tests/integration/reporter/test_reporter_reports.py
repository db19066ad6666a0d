"""Publishing the daily report through the wired reporter: to a local folder or an S3 bucket, recorded in
PostgreSQL and announced on the bus exactly once (what a report contains is tested in tests/unit/reporter)."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiobotocore.session import get_session
from botocore.config import Config

from services.reporter.adapters.bucket import LocalFolderBucket, S3Bucket, bucket_from_settings
from services.reporter.bootstrap import ReporterService, bootstrap
from services.reporter.ports import BucketError
from shared.broker import InMemoryBus
from shared.config import CertmonConfig
from shared.events import CloudEvent, ReportPublished, make_event
from shared.settings import Settings
from tests.integration.reporter.reporter_support import ANNOUNCEMENTS
from tests.unit.reporter.reporter_factories import NOW, evaluation

BUCKET = "certmon-reports"
DAY = "daily/2026-11-27"


async def announcements(bus: InMemoryBus, *, at_least: int = 1, within: float = 5.0) -> list[CloudEvent]:
    """The `report.published.v1` events the outbox relay published, once there are `at_least` of them."""
    async with asyncio.timeout(within):
        while len(bus.pending(ANNOUNCEMENTS)) < at_least:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)  # give a wrongly duplicated announcement the chance to show up
    return bus.pending(ANNOUNCEMENTS)


def local_folder(settings: Settings) -> Path:
    """The absolute folder `settings.reports_url` names."""
    return Path(settings.reports_url).resolve()


async def store_estate(reporter: ReporterService) -> None:
    """Two evaluations in history: one expiring in 5 days, one healthy."""
    for e in (evaluation("soon.example", days=5, level="critical"), evaluation("ok.example", days=200)):
        await reporter.history.record_evaluation(make_event("certificate.evaluated.v1", e, source="t").id, e)


async def test_daily_report_written_to_local_folder_and_announced_once(
    reporter: ReporterService, bus: InMemoryBus, settings: Settings
) -> None:
    """publish_daily writes to the folder the settings name, and the outbox relay announces the day once on the bus."""
    await store_estate(reporter)
    first = await reporter.publish_daily(NOW)
    assert await reporter.publish_daily(NOW + timedelta(hours=3)) == first
    assert first.location == str(local_folder(settings))
    assert [(local_folder(settings) / key).is_file() for key in first.keys] == [True, True]
    published = await announcements(bus)
    assert len(published) == 1
    assert ReportPublished.model_validate(published[0].data) == first
    assert await reporter.history.reports() == [first]


async def test_racing_replicas_announce_the_day_once(
    settings: Settings, bus: InMemoryBus, pg_pool: asyncpg.Pool
) -> None:
    """Two reporters publishing the same day at once record and announce it exactly once."""
    replicas = [
        bootstrap(settings, CertmonConfig(), bus=bus, pool=pg_pool, clock=lambda: NOW, serve_http=False)
        for _ in range(2)
    ]
    for replica in replicas:
        await replica.start()
    try:
        results = await asyncio.gather(*(r.publish_daily(NOW) for r in replicas for _ in range(3)))
        assert len({r.model_dump_json() for r in results}) == 1
        assert len(await announcements(bus)) == 1
        count = await pg_pool.fetchval('SELECT count(*) FROM "reporter".reports')
        assert count == 1
    finally:
        for replica in replicas:
            await replica.stop()


async def test_a_new_day_is_a_new_report(reporter: ReporterService, bus: InMemoryBus) -> None:
    """The next UTC day gets its own report and its own announcement."""
    await reporter.publish_daily(NOW)
    tomorrow = await reporter.publish_daily(NOW + timedelta(days=1))
    assert tomorrow.keys[0] == "daily/2026-11-28/status.json"
    assert len(await announcements(bus, at_least=2)) == 2


@pytest.fixture
async def s3_bucket(s3_endpoint: str) -> AsyncIterator[str]:
    """An empty bucket on the moto server; yields the endpoint."""
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
    async with get_session().create_client("s3", endpoint_url=s3_endpoint, config=config) as s3:
        await s3.create_bucket(Bucket=BUCKET)
    yield s3_endpoint


async def test_daily_report_written_to_s3(
    s3_bucket: str, settings: Settings, bus: InMemoryBus, pg_pool: asyncpg.Pool
) -> None:
    """With `s3://bucket/prefix`, JSON and HTML land under the prefix with their content types; keys name them."""
    settings = settings.model_copy(update={"reports_url": f"s3://{BUCKET}/reports", "s3_endpoint_url": s3_bucket})
    reporter = bootstrap(settings, CertmonConfig(), bus=bus, pool=pg_pool, clock=lambda: NOW, serve_http=False)
    await reporter.start()
    try:
        await store_estate(reporter)
        published = await reporter.publish_daily(NOW)
        await reporter.publish_daily(NOW)
        assert published.location == f"s3://{BUCKET}"
        assert published.keys == [f"reports/{DAY}/status.json", f"reports/{DAY}/status.html"]
        assert len(await announcements(bus)) == 1
    finally:
        await reporter.stop()
    bucket = bucket_from_settings(settings)
    assert isinstance(bucket, S3Bucket)
    assert await bucket.list("daily/") == [f"reports/{DAY}/status.html", f"reports/{DAY}/status.json"]
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
    async with get_session().create_client("s3", endpoint_url=s3_bucket, config=config) as s3:
        obj = await s3.get_object(Bucket=BUCKET, Key=f"reports/{DAY}/status.json")
        body = await obj["Body"].read()
        html = await s3.head_object(Bucket=BUCKET, Key=f"reports/{DAY}/status.html")
    assert obj["ContentType"] == "application/json"
    assert html["ContentType"].startswith("text/html")
    assert json.loads(body)["totals"]["by_level"]["critical"] == 1


async def test_local_folder_rejects_keys_escaping_the_folder(tmp_path: Path) -> None:
    """A key with `..` or an absolute path never writes outside the reports folder."""
    bucket = LocalFolderBucket(tmp_path / "reports")
    for key in ("../escape.json", "/etc/passwd", "a/../../b"):
        with pytest.raises(BucketError, match="invalid object key"):
            await bucket.put(key, b"x", "text/plain")
    assert not (tmp_path / "escape.json").exists()
    await bucket.put("daily/x/status.json", b"{}", "application/json")
    assert await bucket.list() == ["daily/x/status.json"]


async def test_schedule_publishes_once_the_hour_has_come(
    settings: Settings, bus: InMemoryBus, pg_pool: asyncpg.Pool
) -> None:
    """At or after `daily_report_hour_utc` the schedule publishes the day's report by itself, once."""
    due = settings.model_copy(update={"daily_report_hour_utc": 6})
    clock_at = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    reporter = bootstrap(
        due, CertmonConfig(), bus=bus, pool=pg_pool, clock=lambda: clock_at, serve_http=False, report_tick_seconds=0.02
    )
    await reporter.start()
    try:
        published = await announcements(bus)
        await asyncio.sleep(0.1)
        assert len(bus.pending(ANNOUNCEMENTS)) == len(published) == 1
        assert ReportPublished.model_validate(published[0].data).period_start == datetime(2026, 11, 27, tzinfo=UTC)
    finally:
        await reporter.stop()


async def test_schedule_waits_for_the_hour(settings: Settings, bus: InMemoryBus, pg_pool: asyncpg.Pool) -> None:
    """Before `daily_report_hour_utc` nothing is published."""
    early = settings.model_copy(update={"daily_report_hour_utc": 6})
    reporter = bootstrap(
        early,
        CertmonConfig(),
        bus=bus,
        pool=pg_pool,
        clock=lambda: datetime(2026, 11, 27, 5, 59, tzinfo=UTC),
        serve_http=False,
        report_tick_seconds=0.02,
    )
    await reporter.start()
    try:
        await asyncio.sleep(0.2)
        assert bus.pending(ANNOUNCEMENTS) == []
        assert await reporter.history.reports() == []
    finally:
        await reporter.stop()
