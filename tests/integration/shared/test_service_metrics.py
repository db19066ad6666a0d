"""Each service counts its own work in `/metrics`: the five services on the real RabbitMQ and PostgreSQL scan a
local TLS server and a closed port, evaluate, raise alarms, email them and publish a report, and the counters
scraped over HTTP moved accordingly."""

import asyncio
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.reporter.bootstrap import ReporterService
from services.reporter.domain.periods import period_of
from shared.config import parse_config
from shared.settings import Settings
from tests.support.pipeline import free_port, running_services
from tests.support.pki import make_ca, make_leaf, write_chain
from tests.support.smtp import SmtpServer, start_smtp_server
from tests.support.tls_server import server_context, tls_server

DAY = dt.timedelta(days=1)
DOC = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"

#: Families whose series start with the first failure (their labels name the error).
ONLY_ONCE_SOMETHING_FAILED = {"certmon_handler_retries_total", "certmon_loop_errors_total"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1."""
    with start_smtp_server() as server:
        yield server


async def scrape(port: int) -> Samples:
    """Every sample `/metrics` on `port` serves, keyed by name and labels."""
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample `name{labels}` (0 when absent); a label given as `*suffix` matches any value ending so."""
    total = 0.0
    for (sample, sample_labels), number in samples.items():
        if sample != name:
            continue
        have = dict(sample_labels)
        if all(have.get(k, "").endswith(v[1:]) if v.startswith("*") else have.get(k) == v for k, v in labels.items()):
            total += number
    return total


def documented_families() -> set[str]:
    """The metric names docs/metrics.md lists in its table."""
    return set(re.findall(r"^\| `(certmon_[a-z_]+)`", DOC.read_text(), flags=re.MULTILINE))


async def test_scans_evaluations_alarms_notifications_reports_and_messages_are_counted(
    tmp_path: Path, database_url: str, amqp_url: str, smtp: SmtpServer
) -> None:
    """An expired certificate and a closed port go through all five services: each counter of that work moves,
    the scan and evaluation histograms count them, the outboxes show an empty backlog, and every family
    docs/metrics.md lists is served."""
    now = dt.datetime.now(dt.UTC)
    ca = make_ca("metrics CA", not_before=now - 400 * DAY)
    leaf = make_leaf(ca, ["127.0.0.1"], not_before=now - 90 * DAY, not_after=now - 2 * DAY)
    cert, key = write_chain(tmp_path, "expired", leaf, ca)
    closed = free_port()
    async with tls_server(server_context(cert, key)) as port:
        config = parse_config(
            {
                "defaults": {"owner": "ops", "interval": "1h"},
                "channels": {
                    "email": {"host": "127.0.0.1", "port": smtp.port, "starttls": False, "from": "certmon@m.test"}
                },
                "owners": {"ops": {"email": ["ops@m.test"]}},
                "targets": [{"host": "127.0.0.1", "port": port}, {"host": "127.0.0.1", "port": closed}],
            }
        )
        settings = Settings(
            reports_url=str(tmp_path / "reports"),
            http_port=0,
            scheduler_tick_seconds=0.2,
            daily_report_hour_utc=None,
        )
        async with running_services(settings, config, amqp_url=amqp_url, database_url=database_url) as services:
            reporter = next(s for s in services if isinstance(s, ReporterService))
            before = await scrape(reporter.http_port)
            async with asyncio.timeout(60):
                while len(smtp.received) < 2:  # the expired certificate's alarm and the closed port's
                    await asyncio.sleep(0.1)
            await reporter.publish("daily", period_of("daily", now), now=now)
            async with asyncio.timeout(10):
                while value(await scrape(reporter.http_port), "certmon_outbox_backlog", schema="reporter") != 0:
                    await asyncio.sleep(0.1)
            after = await scrape(reporter.http_port)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("certmon_scans_total", kind="tls", outcome="ok") >= 1
    assert moved("certmon_scans_total", kind="tls", outcome="refused") >= 1
    assert moved("certmon_scan_duration_seconds_count", kind="tls", profile="expiry") >= 2
    assert moved("certmon_evaluations_total", level="critical") >= 1
    assert moved("certmon_evaluation_duration_seconds_count") >= 2
    assert moved("certmon_alarm_transitions_total", transition="raised", level="critical") >= 1
    assert moved("certmon_notifications_total", channel="email", outcome="sent") >= 2
    assert moved("certmon_reports_published_total", kind="daily") == 1
    for queue, event in [
        ("*certmon.scanner.scan-requests", "scan.requested.v1"),
        ("*certmon.evaluator.observations", "certificate.observed.v1"),
        ("*certmon.alarmer.evaluations", "certificate.evaluated.v1"),
    ]:
        assert moved("certmon_messages_consumed_total", queue=queue, event_type=event, outcome="acked") >= 2, queue
    assert value(after, "certmon_messages_consumed_total", outcome="dead_lettered") == value(
        before, "certmon_messages_consumed_total", outcome="dead_lettered"
    )
    for schema in ("scanner", "alarmer", "notifier", "reporter"):
        assert ("certmon_outbox_backlog", frozenset({("schema", schema)})) in after, schema
        assert value(after, "certmon_outbox_backlog", schema=schema) == 0, schema
    served = {re.sub(r"_(bucket|count|sum)$", "", name) for name, _ in after}
    assert documented_families() - ONLY_ONCE_SOMETHING_FAILED <= served
