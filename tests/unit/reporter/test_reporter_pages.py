"""The dashboard's HTML pages: a certificate, an alarm, and acknowledged alarms on the dashboard."""

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from services.reporter.adapters.memory import InMemoryHistory
from shared.events import Finding, NotificationResult, make_event
from tests.unit.reporter.reporter_app import JANE, RAISED_AT, READ, client_on
from tests.unit.reporter.reporter_factories import NOW, alarm, evaluation

SHOP = evaluation(
    "shop.example",
    days=5,
    level="critical",
    subject="CN=<i>shop</i>",
    findings=[Finding(code="expiry.within_7_days", severity="critical", message="expires in 5 days")],
)
assert SHOP.certificate is not None
FINGERPRINT = SHOP.certificate.fingerprint_sha256
HOST = "shop.example"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """SHOP evaluated, its expiry alarm raised, mailed, reminded, then acknowledged by Jane."""
    history = InMemoryHistory()
    await history.record_evaluation(make_event("certificate.evaluated.v1", SHOP, source="t").id, SHOP)
    reminded_at = NOW - timedelta(hours=1)
    await history.record_alarm("e1", alarm("shop1", "raised", "critical", RAISED_AT, HOST, FINGERPRINT))
    await history.record_alarm(
        "e2", alarm("shop1", "reminded", "critical", reminded_at, HOST, FINGERPRINT, cause="reminder schedule")
    )
    acknowledged = alarm("shop1", "acknowledged", "critical", JANE.at, HOST, FINGERPRINT, acknowledgement=JANE)
    await history.record_alarm("e3", acknowledged)
    mailed = NotificationResult(
        alarm_id="shop1", alarm_event_id="e1", channel="email", recipient="shop@example.com", attempt=1, at=RAISED_AT
    )
    await history.record_notification("n1", mailed, ok=True)
    async with client_on(history) as client:
        yield client


def assert_self_contained(response: httpx.Response) -> None:
    """An HTML page under the dashboard's CSP, not cached, loading nothing from anywhere."""
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    for external in ("<script", "<link", "src=", "url(", "@import"):
        assert external not in response.text


async def test_certificate_page_shows_names_validity_places_findings_and_alarms(client: httpx.AsyncClient) -> None:
    """The page has the escaped subject, issuer, validity, where it is served, its findings and its alarm's state."""
    response = await client.get(f"/certificates/{FINGERPRINT.upper()}", headers=READ)
    assert response.status_code == 200
    assert_self_contained(response)
    page = response.text
    assert "CN=&lt;i&gt;shop&lt;/i&gt;" in page and "<i>shop</i>" not in page
    for fact in ("CN=certmon Test CA", "2026-12-02 06:30 UTC", "shop.example:443", "expiry.within_7_days"):
        assert fact in page
    assert 'href="/alarms/shop1"' in page
    assert f"acknowledged</span> by {JANE.by} at 2026-11-27 06:20 UTC" in page


async def test_alarm_page_shows_history_causes_notifications_and_acknowledgement(client: httpx.AsyncClient) -> None:
    """Every step with its cause and time, the delivery, Jane's acknowledgement and comment, the certificate link."""
    response = await client.get("/alarms/shop1", headers=READ)
    assert response.status_code == 200
    assert_self_contained(response)
    page = response.text
    steps = [page.index(f"<td>{t}</td>") for t in ("raised", "reminded", "acknowledged")]
    assert steps == sorted(steps)
    assert "reminder schedule" in page
    assert "shop@example.com" in page and "2026-11-27 04:30 UTC" in page
    assert f"by {JANE.by} at 2026-11-27 06:20 UTC" in page and "renewal ordered" in page
    assert f'href="/certificates/{FINGERPRINT}"' in page


async def test_unknown_pages_are_404_pages(client: httpx.AsyncClient) -> None:
    """An unknown alarm, an unknown certificate and a malformed fingerprint answer a 404 HTML page."""
    for path in ("/alarms/nope", f"/certificates/{'0' * 64}", "/certificates/not-a-fingerprint"):
        response = await client.get(path, headers=READ)
        assert response.status_code == 404
        assert_self_contained(response)
        assert "knows no such" in response.text


async def test_dashboard_shows_acknowledged_alarms_as_such_and_links_them(client: httpx.AsyncClient) -> None:
    """The open-alarms table says who acknowledged an alarm and when, and links it to its page."""
    page = (await client.get("/", headers=READ)).text
    assert 'href="/alarms/shop1"' in page
    assert f"acknowledged</span> by {JANE.by} at 2026-11-27 06:20 UTC" in page
