"""Publishing reports through the wired reporter on PostgreSQL: every kind to a local folder or an S3 bucket,
recorded and announced on the bus exactly once across racing replicas; uploads retried and nothing announced
before every object is written; the schedules publishing what is due (what a report contains is tested in
tests/unit/reporter)."""

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
from services.reporter.adapters.history import History
from services.reporter.adapters.rendering import ReportRenderer
from services.reporter.bootstrap import ReporterService, bootstrap, build_publisher
from services.reporter.domain.catalog import report_spec
from services.reporter.domain.periods import parse_period
from services.reporter.ports import BucketError
from services.reporter.service_layer.publishing import UploadRetry
from shared.broker import InMemoryBus
from shared.config import CertmonConfig
from shared.events import CloudEvent, ReportPublished, make_event
from shared.periodic import Backoff
from shared.settings import Settings
from tests.integration.reporter.reporter_support import ANNOUNCEMENTS, make_settings
from tests.unit.reporter.reporter_buckets import FailingBucket
from tests.unit.reporter.reporter_factories import NOW, evaluation

BUCKET = "certmon-reports"
DAY = "daily/2026-11-27"
TODAY = parse_period("daily", "2026-11-27")
#: Only the reports a test publishes itself: no schedule but the daily one (which the settings put at 23:00).
CONFIG = CertmonConfig.model_validate(
    {
        "targets": [{"host": "soon.example", "tags": ["shop"]}],
        "reports": {
            "weekly": {"enabled": False},
            "monthly": {"enabled": False},
            "custom": [{"name": "shop", "schedule": "off", "filter": {"tag": ["shop"]}}],
        },
    }
)
EVERY_KIND = [
    ("daily", None, "2026-11-27"),
    ("weekly", None, "2026-W47"),
    ("monthly", None, "2026-10"),
    ("custom", "shop", "2026-W47"),
]


async def announcements(bus: InMemoryBus, *, at_least: int = 1, within: float = 30.0) -> list[CloudEvent]:
    """The `report.published.v1` events the outbox relay published, once there are `at_least` of them."""
    async with asyncio.timeout(within):
        while len(bus.pending(ANNOUNCEMENTS)) < at_least:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)  # give a wrongly duplicated announcement the chance to show up
    return bus.pending(ANNOUNCEMENTS)


def announced(events: list[CloudEvent]) -> list[tuple[str, str | None, str | None]]:
    """(kind, name, period) of each announcement, sorted."""
    reports = [ReportPublished.model_validate(event.data) for event in events]
    return sorted(((r.kind, r.name, r.period) for r in reports), key=str)


def local_folder(settings: Settings) -> Path:
    """The absolute folder `settings.reports_url` names."""
    return Path(settings.reports_url).resolve()


async def store_estate(reporter: ReporterService) -> None:
    """Two evaluations in history: one expiring in 5 days (tagged `shop` in CONFIG), one healthy."""
    for e in (evaluation("soon.example", days=5, level="critical"), evaluation("ok.example", days=200)):
        await reporter.history.record_evaluation(make_event("certificate.evaluated.v1", e, source="t").id, e)


async def test_racing_replicas_publish_and_announce_every_kind_once(
    settings: Settings, bus: InMemoryBus, pg_pool: asyncpg.Pool
) -> None:
    """Two reporters each publishing the daily, weekly, monthly and a custom report three times at once: one
    record and one announcement on the bus per report, and every object in the folder."""
    replicas = [
        bootstrap(settings, CONFIG, bus=bus, pool=pg_pool, clock=lambda: NOW, serve_http=False) for _ in range(2)
    ]
    for replica in replicas:
        await replica.start()
    try:
        await store_estate(replicas[0])
        results = await asyncio.gather(
            *(
                replica.publish(kind, parse_period(None, period), now=NOW, name=name)  # type: ignore[arg-type]
                for replica in replicas
                for kind, name, period in EVERY_KIND
                for _ in range(3)
            )
        )
        assert [r.outcome for r in results].count("published") == 4
        assert {r.report.model_dump_json() for r in results} == {
            r.model_dump_json() for r in await replicas[0].history.reports()
        }
        assert announced(await announcements(bus, at_least=4)) == sorted(EVERY_KIND, key=str)
        assert await pg_pool.fetchval('SELECT count(*) FROM "reporter".reports') == 4
        for report in await replicas[0].history.reports():
            assert report.keys and all((local_folder(settings) / key).is_file() for key in report.keys)
    finally:
        for replica in replicas:
            await replica.stop()


async def test_a_new_day_is_a_new_report(reporter: ReporterService, bus: InMemoryBus) -> None:
    """The next UTC day gets its own report and its own announcement."""
    await reporter.publish("daily", TODAY, now=NOW)
    tomorrow = await reporter.publish("daily", parse_period("daily", "2026-11-28"), now=NOW + timedelta(days=1))
    assert all(key.startswith("daily/2026-11-28/") for key in tomorrow.report.keys)
    assert len(await announcements(bus, at_least=2)) == 2


async def test_an_upload_is_retried_and_nothing_is_announced_before_it_is_written(
    pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """A bucket refusing the first two writes: at each refusal nothing is recorded or queued yet; then the report
    is written, recorded and queued once. A bucket refusing every try: the publish fails, nothing recorded or queued,
    and the next publish once it writes again publishes it."""
    history = History(pg_pool)
    await history.migrate()
    queued_at_refusals: list[int] = []

    async def probe() -> None:
        queued_at_refusals.append(await pg_pool.fetchval('SELECT count(*) FROM "reporter".outbox'))

    quick = UploadRetry(attempts=3, backoff=Backoff(initial=0.01, maximum=0.02))
    blinking = FailingBucket(LocalFolderBucket(tmp_path / "reports"), failures=2, probe=probe)
    publisher = build_publisher(CONFIG, history, blinking, renderer=ReportRenderer(), retry=quick)
    published = await publisher.publish(report_spec(CONFIG.reports, "daily"), TODAY, now=NOW)
    assert published.outcome == "published"
    assert queued_at_refusals == [0, 0]
    assert await pg_pool.fetchval('SELECT count(*) FROM "reporter".outbox') == 1

    week = parse_period("weekly", "2026-W47")
    down = FailingBucket(LocalFolderBucket(tmp_path / "reports"), failures=3, probe=probe)
    publisher = build_publisher(CONFIG, history, down, renderer=ReportRenderer(), retry=quick)
    with pytest.raises(BucketError):
        await publisher.publish(report_spec(CONFIG.reports, "weekly"), week, now=NOW)
    assert await history.report_for("weekly", week.start, week.end) is None
    assert await pg_pool.fetchval('SELECT count(*) FROM "reporter".outbox') == 1
    again = await publisher.publish(report_spec(CONFIG.reports, "weekly"), week, now=NOW)
    assert again.outcome == "published"
    assert await pg_pool.fetchval('SELECT count(*) FROM "reporter".outbox') == 2


@pytest.fixture
async def s3_bucket(s3_endpoint: str) -> AsyncIterator[str]:
    """An empty bucket on the moto server; yields the endpoint."""
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
    async with get_session().create_client("s3", endpoint_url=s3_endpoint, config=config) as s3:
        await s3.create_bucket(Bucket=BUCKET)
    yield s3_endpoint


async def test_reports_written_to_s3(
    s3_bucket: str, settings: Settings, bus: InMemoryBus, pg_pool: asyncpg.Pool
) -> None:
    """With `s3://bucket/prefix`, each object lands under the prefix with its content type; keys name them; a
    custom report goes under `custom/<name>/`."""
    settings = settings.model_copy(update={"reports_url": f"s3://{BUCKET}/reports", "s3_endpoint_url": s3_bucket})
    reporter = bootstrap(settings, CONFIG, bus=bus, pool=pg_pool, clock=lambda: NOW, serve_http=False)
    await reporter.start()
    try:
        await store_estate(reporter)
        daily = (await reporter.publish("daily", TODAY, now=NOW)).report
        await reporter.publish("daily", TODAY, now=NOW)
        shop = (await reporter.publish("custom", TODAY, now=NOW, name="shop")).report
        assert daily.location == f"s3://{BUCKET}"
        assert all(key.startswith(f"reports/{DAY}/") for key in daily.keys)
        assert all(key.startswith("reports/custom/shop/2026-11-27/") for key in shop.keys)
        assert len(await announcements(bus, at_least=2)) == 2
    finally:
        await reporter.stop()
    bucket = bucket_from_settings(settings)
    assert isinstance(bucket, S3Bucket)
    assert await bucket.list("daily/") == sorted(daily.keys)
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
    async with get_session().create_client("s3", endpoint_url=s3_bucket, config=config) as s3:
        json_key = next(key for key in daily.keys if key.endswith(".json"))
        html_key = next(key for key in daily.keys if key.endswith(".html"))
        obj = await s3.get_object(Bucket=BUCKET, Key=json_key)
        body = await obj["Body"].read()
        html = await s3.head_object(Bucket=BUCKET, Key=html_key)
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


SCHEDULED = CertmonConfig.model_validate(
    {"reports": {"custom": [{"name": "everything", "schedule": "monthly"}, {"name": "never", "schedule": "off"}]}}
)


async def test_the_schedules_publish_what_is_due_once(
    settings: Settings, bus: InMemoryBus, pg_pool: asyncpg.Pool
) -> None:
    """Monday 07:00 with every schedule on: today's daily, last week's, last month's and the monthly custom
    report are published by themselves, once each; the unscheduled custom report is not."""
    monday = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    due = settings.model_copy(update={"daily_report_hour_utc": 6})
    reporter = bootstrap(
        due, SCHEDULED, bus=bus, pool=pg_pool, clock=lambda: monday, serve_http=False, report_tick_seconds=0.02
    )
    await reporter.start()
    try:
        published = await announcements(bus, at_least=4)
        await asyncio.sleep(0.2)
        assert len(bus.pending(ANNOUNCEMENTS)) == len(published)
        assert announced(published) == sorted(
            [
                ("daily", None, "2026-11-30"),
                ("weekly", None, "2026-W48"),
                ("monthly", None, "2026-10"),
                ("custom", "everything", "2026-10"),
            ],
            key=str,
        )
    finally:
        await reporter.stop()


async def test_the_daily_schedule_waits_for_its_hour(
    settings: Settings, bus: InMemoryBus, pg_pool: asyncpg.Pool
) -> None:
    """Before the daily hour, with the other schedules off, nothing is published."""
    early = settings.model_copy(update={"daily_report_hour_utc": 6})
    reporter = bootstrap(
        early,
        CONFIG,
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


async def test_without_the_environment_setting_the_config_sets_the_daily_hour(
    settings: Settings, bus: InMemoryBus, pg_pool: asyncpg.Pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CERTMON_DAILY_REPORT_HOUR_UTC not set: `reports.daily.hour_utc` (5) decides, so at 05:30 the day is out."""
    monkeypatch.delenv("CERTMON_DAILY_REPORT_HOUR_UTC", raising=False)
    secrets = tmp_path / "no-secrets"
    secrets.mkdir()
    unset = make_settings(secrets, reports_url=settings.reports_url, data_dir=settings.data_dir, http_port=0)
    assert "daily_report_hour_utc" not in unset.model_fields_set
    config = CertmonConfig.model_validate(
        {"reports": {"daily": {"hour_utc": 5}, "weekly": {"enabled": False}, "monthly": {"enabled": False}}}
    )
    reporter = bootstrap(
        unset,
        config,
        bus=bus,
        pool=pg_pool,
        clock=lambda: datetime(2026, 11, 27, 5, 30, tzinfo=UTC),
        serve_http=False,
        report_tick_seconds=0.02,
    )
    await reporter.start()
    try:
        assert announced(await announcements(bus)) == [("daily", None, "2026-11-27")]
    finally:
        await reporter.stop()
