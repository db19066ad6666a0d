"""The whole pipeline, for real: TLS servers on 127.0.0.1 are scanned by the scheduler, and through RabbitMQ and
PostgreSQL the right emails reach the right owners' mailboxes, and the daily report lands in the S3 bucket."""

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from services.reporter.domain.periods import period_of
from shared.config import parse_config
from shared.settings import Settings
from tests.support.pipeline import running_services
from tests.support.pki import make_ca, make_leaf, write_chain
from tests.support.smtp import SmtpServer, start_smtp_server
from tests.support.tls_server import server_context, tls_server

pytestmark = pytest.mark.e2e

DAY = dt.timedelta(days=1)


def subjects_for(smtp: SmtpServer, recipient: str) -> list[str]:
    """Subjects of the messages the SMTP server accepted for `recipient`."""
    return [str(r.message["Subject"]) for r in smtp.received if recipient in r.rcpt_tos]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1."""
    with start_smtp_server() as server:
        yield server


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real S3 API (moto in server mode) on 127.0.0.1 with an empty bucket; yields its endpoint URL."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "e2e",
        "AWS_SECRET_ACCESS_KEY": "e2e",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="e2e-reports")
    try:
        yield endpoint
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def estate(directory: Path, now: dt.datetime) -> AsyncIterator[tuple[Path, dict[str, int]]]:
    """Four TLS endpoints: healthy, expiring in 5 days, expired, self-signed; yields the root file and ports."""
    root = make_ca("e2e Root", not_before=now - 400 * DAY)
    issuing = make_ca("e2e Issuing CA", issuer=root, not_before=now - 400 * DAY)
    leaves = {
        "healthy": (make_leaf(issuing, ["127.0.0.1", "www.e2e.test"], not_after=now + 200 * DAY), (issuing,)),
        "expiring": (
            make_leaf(issuing, ["127.0.0.1", "shop.e2e.test"], not_before=now - 60 * DAY, not_after=now + 5 * DAY),
            (issuing,),
        ),
        "expired": (
            make_leaf(issuing, ["127.0.0.1", "old.e2e.test"], not_before=now - 90 * DAY, not_after=now - 3 * DAY),
            (issuing,),
        ),
        "self-signed": (make_leaf(None, ["127.0.0.1", "intranet.e2e.test"], not_after=now + 100 * DAY), ()),
    }
    ca_file = directory / "root.pem"
    ca_file.write_bytes(root.pem)
    async with contextlib.AsyncExitStack() as stack:
        ports = {}
        for name, (leaf, chain) in leaves.items():
            cert, key = write_chain(directory, name, leaf, *chain)
            ports[name] = await stack.enter_async_context(tls_server(server_context(cert, key)))
        yield ca_file, ports


async def test_expiring_expired_and_self_signed_certificates_reach_their_owners(
    tmp_path: Path, database_url: str, amqp_url: str, smtp: SmtpServer, s3: str
) -> None:
    """Each problem certificate's alarm is emailed to the owner that rules choose; the healthy one stays silent."""
    now = dt.datetime.now(dt.UTC)
    async with estate(tmp_path, now) as (ca_file, ports):
        config = parse_config(
            {
                "trust": {"ca_files": [str(ca_file)]},
                "defaults": {"owner": "security-team", "interval": "1h"},
                "channels": {
                    "email": {"host": "127.0.0.1", "port": smtp.port, "starttls": False, "from": "certmon@e2e.test"}
                },
                "owners": {
                    "security-team": {"email": ["secops@e2e.test"]},
                    "web-team": {"email": ["web@e2e.test"]},
                    "shop-team": {"email": ["alice@e2e.test", "bob@e2e.test"], "delivery": "individual"},
                },
                "targets": [
                    {"host": "127.0.0.1", "port": ports["healthy"], "owner": "web-team"},
                    {"host": "127.0.0.1", "port": ports["expiring"]},
                    {"host": "127.0.0.1", "port": ports["expired"], "owner": "web-team"},
                    {"host": "127.0.0.1", "port": ports["self-signed"]},
                ],
                "certificates": [{"match": {"san": "shop.e2e.test"}, "owner": "shop-team"}],
            }
        )
        settings = Settings(
            reports_url="s3://e2e-reports/certmon",
            s3_endpoint_url=s3,
            http_port=0,
            scheduler_tick_seconds=0.2,
            daily_report_hour_utc=None,  # the test publishes the report itself, once the alarms are out
        )
        async with running_services(settings, config, amqp_url=amqp_url, database_url=database_url) as services:
            expected = {
                "alice@e2e.test": "expiring",
                "bob@e2e.test": "expiring",
                "web@e2e.test": "expired",
                "secops@e2e.test": "self-signed",
            }
            async with asyncio.timeout(60):
                while not all(subjects_for(smtp, rcpt) for rcpt in expected):
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # anything extra (a duplicate, a mail about the healthy one) shows up by now

            for rcpt, case in expected.items():
                subjects = subjects_for(smtp, rcpt)
                assert len(subjects) == 1, (rcpt, subjects)
                assert f":{ports[case]}" in subjects[0], (rcpt, subjects)
                assert "CRITICAL" in subjects[0].upper()
            assert len(smtp.received) == 4  # individual delivery: alice and bob get one each
            healthy = f":{ports['healthy']}"
            assert not any(healthy in str(r.message["Subject"]) for r in smtp.received)

            reporter = next(s for s in services if s.name == "reporter")
            now = dt.datetime.now(dt.UTC)
            publication = await reporter.publish("daily", period_of("daily", now), now=now)  # type: ignore[attr-defined]
            report = publication.report
            keys = {
                o["Key"]
                for o in boto3.client("s3", endpoint_url=s3, region_name="us-east-1").list_objects_v2(
                    Bucket="e2e-reports"
                )["Contents"]
            }
            assert set(report.keys) <= keys
            json_key = next(k for k in report.keys if k.endswith(".json"))
            body = (
                boto3.client("s3", endpoint_url=s3, region_name="us-east-1")
                .get_object(Bucket="e2e-reports", Key=json_key)["Body"]
                .read()
                .decode()
            )
            for case in ("healthy", "expiring", "expired", "self-signed"):
                assert f"127.0.0.1:{ports[case]}" in body, case
            assert any(k.endswith("daily.html") for k in report.keys)
