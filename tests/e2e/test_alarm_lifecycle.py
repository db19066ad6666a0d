"""An alarm follows up until someone acts, for real: an expiring certificate's alarm is emailed with an
acknowledge link, comes back as a reminder at its 5 s cadence, is acknowledged through the link's confirmation
page, and then stays quiet; the API lists it as acknowledged by the recipient the link was sent to."""

import asyncio
import datetime as dt
import re
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from shared.config import parse_config
from shared.settings import Settings
from tests.support.pipeline import free_port, running_services
from tests.support.pki import make_ca, make_leaf, write_chain
from tests.support.smtp import SmtpServer, start_smtp_server
from tests.support.tls_server import server_context, tls_server

pytestmark = pytest.mark.e2e

DAY = dt.timedelta(days=1)
OWNER = "ops@e2e.test"
ACK_LINK = re.compile(r"(http://127\.0\.0\.1:\d+/ack/[A-Za-z0-9._-]+)")


def subjects(smtp: SmtpServer) -> list[str]:
    """Subjects of the messages accepted for the owner, in arrival order."""
    return [str(r.message["Subject"]) for r in smtp.received if OWNER in r.rcpt_tos]


def text_body(smtp: SmtpServer, index: int) -> str:
    """The plain-text part of the owner's message number `index`."""
    message = [r.message for r in smtp.received if OWNER in r.rcpt_tos][index]
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def wait_for(predicate: object, timeout: float) -> None:
    """Poll `predicate()` until it is true, failing after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.1)


async def test_reminders_until_acknowledged_through_the_email_link(
    tmp_path: Path, database_url: str, amqp_url: str
) -> None:
    """raised → reminder after 5 s → GET link shows a form and changes nothing → POST acknowledges → quiet."""
    now = dt.datetime.now(dt.UTC)
    root = make_ca("lifecycle Root", not_before=now - 400 * DAY)
    leaf = make_leaf(root, ["127.0.0.1"], not_before=now - 80 * DAY, not_after=now + 3 * DAY)
    cert, key = write_chain(tmp_path, "expiring", leaf)
    (tmp_path / "root.pem").write_bytes(root.pem)
    http_port = free_port()
    with start_smtp_server() as smtp:
        async with tls_server(server_context(cert, key)) as tls_port:
            config = parse_config(
                {
                    "trust": {"ca_files": [str(tmp_path / "root.pem")]},
                    "defaults": {"owner": "ops", "interval": "1h", "reminders": {"critical": "5s"}},
                    "channels": {
                        "email": {"host": "127.0.0.1", "port": smtp.port, "starttls": False, "from": "certmon@e2e.test"}
                    },
                    "owners": {"ops": {"email": [OWNER]}},
                    "targets": [{"host": "127.0.0.1", "port": tls_port}],
                }
            )
            settings = Settings(
                http_port=http_port,
                public_url=f"http://127.0.0.1:{http_port}",
                link_secret=SecretStr("e2e-link-secret-0123456789"),
                data_dir=tmp_path / "data",
                scheduler_tick_seconds=0.2,
                daily_report_hour_utc=None,
            )
            async with (
                running_services(settings, config, amqp_url=amqp_url, database_url=database_url),
                httpx.AsyncClient(base_url=settings.public_url, timeout=10) as client,
            ):
                await wait_for(lambda: subjects(smtp), 60)
                assert "raised" in subjects(smtp)[0]
                link = ACK_LINK.search(text_body(smtp, 0))
                assert link is not None, text_body(smtp, 0)

                await wait_for(lambda: len(subjects(smtp)) >= 2, 15)
                assert "REMINDER" in subjects(smtp)[1].upper()
                assert ACK_LINK.search(text_body(smtp, 1)) is not None

                page = await client.get(link[1])
                assert page.status_code == 200 and "<form" in page.text and 'method="post"' in page.text.lower()
                alarms = (await client.get("/api/v1/alarms", params={"state": "open"})).json()
                assert len(alarms) == 1  # looking at the page acknowledged nothing
                alarm_id = alarms[0]["alarm_id"]

                done = await client.post(link[1], data={"comment": "renewal booked"})
                assert done.status_code == 200, done.text
                await wait_for(lambda: any("acknowledged" in s.lower() for s in subjects(smtp)), 15)

                acked = (await client.get("/api/v1/alarms", params={"state": "acknowledged"})).json()
                assert [a["alarm_id"] for a in acked] == [alarm_id]
                assert acked[0]["acknowledgement"]["by"] == OWNER
                assert acked[0]["acknowledgement"]["comment"] == "renewal booked"

                count = len(subjects(smtp))
                await asyncio.sleep(7)  # more than one cadence: an acknowledged alarm is not reminded
                assert len(subjects(smtp)) == count, subjects(smtp)[count:]

                again = await client.post(link[1], data={})
                assert again.status_code == 200 and "already acknowledged" in again.text.lower()
