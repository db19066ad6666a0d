"""Fixtures of the reporter's integration tests: settings, the in-memory bus, a started reporter, a moto S3 server."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from moto.server import ThreadedMotoServer

from services.reporter.bootstrap import ReporterService, bootstrap
from shared.broker import InMemoryBus
from shared.config import CertmonConfig
from shared.settings import Settings
from tests.integration.reporter.reporter_support import ANNOUNCEMENTS, make_settings
from tests.unit.reporter.reporter_factories import NOW


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Reports and the generated link key in a temporary folder, an ephemeral HTTP port, no tokens, no daily
    report due at NOW."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    return make_settings(
        secrets,
        reports_url=str(tmp_path / "reports"),
        data_dir=tmp_path / "data",
        http_host="127.0.0.1",
        http_port=0,
        api_tokens=[],
        daily_report_hour_utc=23,
    )


@pytest.fixture
async def bus() -> AsyncIterator[InMemoryBus]:
    """The in-memory bus, with a queue that collects `report.published.v1`."""
    bus = InMemoryBus()
    await bus.start()
    bus.declare(ANNOUNCEMENTS, ["report.published.v1"])
    try:
        yield bus
    finally:
        await bus.close()


#: No report falls due by itself: the weekly and monthly schedules off (the daily one is at 23:00 in `settings`).
UNSCHEDULED = CertmonConfig.model_validate({"reports": {"weekly": {"enabled": False}, "monthly": {"enabled": False}}})


@pytest.fixture
async def reporter(settings: Settings, bus: InMemoryBus, pg_pool: asyncpg.Pool) -> AsyncIterator[ReporterService]:
    """A started reporter on the in-memory bus and a fresh database, its clock stopped at NOW, no HTTP server, no
    report published unless a test asks."""
    service = bootstrap(settings, UNSCHEDULED, bus=bus, pool=pg_pool, clock=lambda: NOW, serve_http=False)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (ephemeral port) and dummy AWS credentials; yields its endpoint URL."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
