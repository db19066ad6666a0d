"""The dashboard's pages on the wired reporter and its PostgreSQL history, where SQL decides what they show:
counts, filters, pages, a certificate, the timeline, the alarm history, bad values."""

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from services.reporter.bootstrap import ReporterService
from services.reporter.service_layer.dashboard import PAGE_SIZE
from shared.events import Acknowledgement, NotificationResult, OwnerRef
from tests.unit.reporter.html_tables import body_rows, links, text_of
from tests.unit.reporter.reporter_factories import NOW, alarm, evaluation

HOSTILE = evaluation("evil.example", days=3, level="critical", grade="F", subject="CN=<script>alert(1)</script>")


@pytest.fixture
async def client(reporter: ReporterService) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the reporter (no tokens configured), its history holding PAGE_SIZE + 10 targets, HOSTILE,
    and two alarms on HOSTILE's certificate: one open and mailed, one acknowledged."""
    history = reporter.history
    for n in range(PAGE_SIZE + 10):
        item = evaluation(f"h{n:03d}.example", days=n, level="warning" if n % 2 else "ok", owner=f"team-{n % 3}")
        await history.record_evaluation(f"e{n}", item)
    await history.record_evaluation("evil", HOSTILE)
    assert HOSTILE.certificate is not None
    fingerprint = HOSTILE.certificate.fingerprint_sha256
    owner = OwnerRef(name="sec", rule="certificate[1] subject=*evil*")
    raised = alarm("a1", "raised", "critical", NOW - timedelta(hours=1), "evil.example", fingerprint)
    await history.record_alarm("a1-1", raised.model_copy(update={"owners": [owner]}))
    sent = NotificationResult(
        alarm_id="a1", alarm_event_id="a1-1", channel="email", recipient="sec@x", attempt=1, at=NOW
    )
    await history.record_notification("a1-n", sent, ok=True)
    jane = Acknowledgement(by="jane", at=NOW - timedelta(minutes=5), comment="looking")
    await history.record_alarm("a2-1", alarm("a2", "raised", "warning", NOW - timedelta(hours=2), "h001.example"))
    await history.record_alarm(
        "a2-2", alarm("a2", "acknowledged", "warning", jane.at, "h001.example", acknowledgement=jane)
    )
    transport = httpx.ASGITransport(app=reporter.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://reporter") as client:
        yield client


async def test_the_overview_counts_in_sql(client: httpx.AsyncClient) -> None:
    """Levels, the next expirations and the open alarms, most severe first, come from the SQL reads."""
    page = (await client.get("/")).text
    assert text_of(page, "level-critical").startswith("1")
    assert text_of(page, "level-warning").startswith(str((PAGE_SIZE + 10) // 2))
    assert [row[0] for row in body_rows(page, "open-alarms")] == ["evil.example:443", "h001.example:443"]
    assert body_rows(page, "next-expirations")[0][0] == "h000.example:443"
    assert "<script>alert(1)" not in page


async def test_the_list_filters_and_pages_in_sql(client: httpx.AsyncClient) -> None:
    """Walking the next links of a filtered list shows every match once, in order; bad values are 400."""
    seen: list[str] = []
    address: str | None = "/certificates?level=warning&sort=expiry"
    while address is not None:
        page = (await client.get(address)).text
        seen += [row[0] for row in body_rows(page, "certificates")]
        address = next((a for a, label in links(page) if label == "Next page"), None)
    assert seen == [f"h{n:03d}.example:443" for n in range(PAGE_SIZE + 10) if n % 2]
    assert [row[0] for row in body_rows((await client.get("/certificates?q=EVIL")).text, "certificates")] == [
        "evil.example:443"
    ]
    for bad in ("level=nope", "days_min=4&days_max=1", "cursor=abc"):
        assert (await client.get(f"/certificates?{bad}")).status_code == 400


async def test_the_certificate_page_reads_its_alarms_owners_and_history(client: httpx.AsyncClient) -> None:
    """HOSTILE's page: escaped subject, its target, its owner's rule, its open alarm's mail, and the form (no
    tokens: everyone may write)."""
    assert HOSTILE.certificate is not None
    page = (await client.get(f"/certificates/{HOSTILE.certificate.fingerprint_sha256}")).text
    assert "CN=&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert [row[0] for row in body_rows(page, "serving")] == ["evil.example:443"]
    assert "certificate[1] subject=*evil*" in text_of(page, "owners")
    assert "sec@x" in text_of(page, "alarm-a1")
    assert re.search(r'action="/alarms/a1/ack"', page)


async def test_the_timeline_and_alarm_history_read_sql(client: httpx.AsyncClient) -> None:
    """The calendar places HOSTILE on its day; the alarm history filters by state in SQL and shows Jane."""
    timeline = (await client.get("/timeline")).text
    assert "evil.example:443" in text_of(timeline, "day-2026-11-30")
    acked = (await client.get("/alarms?state=acknowledged")).text
    assert re.findall(r'<article class="alarm" id="alarm-([^"]+)"', acked) == ["a2"]
    assert "jane" in text_of(acked, "alarm-a2") and "looking" in text_of(acked, "alarm-a2")
    assert (await client.get("/alarms?since=someday")).status_code == 400
