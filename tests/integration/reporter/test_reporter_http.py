"""The reporter's HTTP surface: dashboard, API filters, tokens, metrics, health; and the real server over TCP."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from structlog.testing import capture_logs

from services.reporter.adapters.history import History
from services.reporter.adapters.http import create_app
from services.reporter.adapters.memory import InMemoryHistory
from services.reporter.bootstrap import ReporterService, bootstrap
from services.reporter.ports import HistoryStore
from shared.action_links import ActionLinkSigner
from shared.broker import InMemoryBus
from shared.config import CertmonConfig
from shared.events import Finding, NotificationResult, make_event
from shared.settings import Settings
from tests.unit.reporter.reporter_factories import NOW, alarm, evaluation

TOKEN = "s3cret-token-for-tests"
LINKS = ActionLinkSigner(b"link-key-for-the-reporter-tests")
AUTH = {"Authorization": f"Bearer {TOKEN}"}

SOON = evaluation(
    "soon.example",
    days=5,
    level="critical",
    grade="B",
    owner="shop-team",
    findings=[Finding(code="expiry.within_7_days", severity="critical", message="expires in 5 days")],
)
FINE = evaluation("fine.example", days=200, level="ok", grade="A+")
MONTH = evaluation("month.example", days=20, level="warning", grade="A", subject="CN=<b>month</b>")
ESTATE = [FINE, SOON, MONTH]


async def fill(history: HistoryStore) -> None:
    """Store the estate, an alarm on SOON's certificate and one delivery of it."""
    for e in ESTATE:
        await history.record_evaluation(make_event("certificate.evaluated.v1", e, source="t").id, e)
    assert SOON.certificate is not None
    fingerprint = SOON.certificate.fingerprint_sha256
    raised = alarm("a1", "raised", "critical", NOW - timedelta(hours=1), host="soon.example", fingerprint=fingerprint)
    await history.record_alarm("alarm-event-1", raised)
    sent = NotificationResult(
        alarm_id="a1", alarm_event_id="alarm-event-1", channel="email", recipient="shop@example.com", attempt=1, at=NOW
    )
    await history.record_notification("notification-1", sent, ok=True)


@asynccontextmanager
async def client_on(history: HistoryStore, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app (in process) over `history`, with one API token configured and the estate stored."""
    await fill(history)
    app = create_app(
        history, settings.model_copy(update={"api_tokens": [SecretStr(TOKEN)]}), links=LINKS, clock=lambda: NOW
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://reporter", timeout=10) as client:
        yield client


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the in-memory history, for what the HTTP layer decides (dashboard, tokens, alarm views, metrics)."""
    async with client_on(InMemoryHistory(), settings) as client:
        yield client


@pytest.fixture
async def pg_client(reporter: ReporterService, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the reporter's PostgreSQL history, for what SQL decides (filters, pages, fingerprints)."""
    async with client_on(reporter.history, settings) as client:
        yield client


async def test_certificates_list_every_target_most_urgent_first(client: httpx.AsyncClient) -> None:
    """The list shows each target with its level and escaped subject, critical ones first; the overview reloads
    itself."""
    response = await client.get("/certificates", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    order = [page.index(f"{host}:443") for host in ("soon.example", "month.example", "fine.example")]
    assert order == sorted(order)
    assert "&lt;b&gt;month&lt;/b&gt;" in page and "<b>month</b>" not in page
    assert 'http-equiv="refresh"' in (await client.get("/", headers=AUTH)).text


async def test_tokens_are_required_for_dashboard_and_api(client: httpx.AsyncClient) -> None:
    """Without a token, or with a wrong one, the API answers 401 and the dashboard sends to the sign-in page; health
    and metrics do not ask."""
    missing_page = await client.get("/")
    assert (missing_page.status_code, missing_page.headers["location"]) == (303, "/login?next=%2F")
    assert (await client.get("/", headers=AUTH)).status_code == 200
    for path in ("/api/v1/certificates", "/api/v1/alarms", "/api/v1/reports"):
        missing = await client.get(path)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = await client.get(path, headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401
        assert (await client.get(path, headers=AUTH)).status_code == 200
    for path in ("/healthz/live", "/healthz/ready", "/metrics"):
        assert (await client.get(path)).status_code == 200


async def test_certificates_filter_by_level_and_query(pg_client: httpx.AsyncClient) -> None:
    """`level=` and `q=` narrow the latest evaluations; every item is a full evaluation object."""
    everything = (await pg_client.get("/api/v1/certificates", headers=AUTH)).json()
    assert [i["target_key"] for i in everything["items"]] == [
        "fine.example:443",
        "month.example:443",
        "soon.example:443",
    ]
    assert everything["next_cursor"] is None
    critical = (await pg_client.get("/api/v1/certificates", params={"level": "critical"}, headers=AUTH)).json()
    assert [i["target_key"] for i in critical["items"]] == ["soon.example:443"]
    assert critical["items"][0]["owner"] == "shop-team"
    by_subject = (await pg_client.get("/api/v1/certificates", params={"q": "MONTH"}, headers=AUTH)).json()
    assert [i["target_key"] for i in by_subject["items"]] == ["month.example:443"]
    wildcard = (await pg_client.get("/api/v1/certificates", params={"q": "%"}, headers=AUTH)).json()
    assert wildcard["items"] == []
    bad = await pg_client.get("/api/v1/certificates", params={"level": "bogus"}, headers=AUTH)
    assert bad.status_code == 422


async def test_certificates_page_with_a_cursor(pg_client: httpx.AsyncClient) -> None:
    """A limited page returns a cursor that continues where it stopped."""
    first = (await pg_client.get("/api/v1/certificates", params={"limit": 2}, headers=AUTH)).json()
    assert len(first["items"]) == 2
    rest = (
        await pg_client.get("/api/v1/certificates", params={"limit": 2, "cursor": first["next_cursor"]}, headers=AUTH)
    ).json()
    assert [i["target_key"] for i in rest["items"]] == ["soon.example:443"]
    assert rest["next_cursor"] is None


async def test_certificate_by_fingerprint_accepts_colons_and_upper_case(pg_client: httpx.AsyncClient) -> None:
    """A fingerprint typed as `AB:CD:…` finds the certificate, where it is served, and its alarms."""
    assert SOON.certificate is not None
    fingerprint = SOON.certificate.fingerprint_sha256
    typed = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    response = await pg_client.get(f"/api/v1/certificates/{typed}", headers=AUTH)
    assert response.status_code == 200
    detail = response.json()
    assert detail["fingerprint_sha256"] == fingerprint
    assert detail["served_at"] == ["soon.example:443"]
    assert [a["alarm_id"] for a in detail["alarms"]] == ["a1"]
    assert detail["alarms"][0]["notifications"][0]["recipient"] == "shop@example.com"
    assert (await pg_client.get(f"/api/v1/certificates/{'0' * 64}", headers=AUTH)).status_code == 404
    assert (await pg_client.get("/api/v1/certificates/not-a-fingerprint", headers=AUTH)).status_code == 422


async def test_alarms_come_with_state_history_and_notifications(client: httpx.AsyncClient) -> None:
    """The alarms endpoint shows each alarm's state and history and filters by state."""
    alarms = (await client.get("/api/v1/alarms", headers=AUTH)).json()
    assert [(a["alarm_id"], a["state"], a["level"]) for a in alarms] == [("a1", "open", "critical")]
    assert [h["transition"] for h in alarms[0]["history"]] == ["raised"]
    assert (await client.get("/api/v1/alarms", params={"state": "resolved"}, headers=AUTH)).json() == []


async def test_metrics_expose_estate_gauges(client: httpx.AsyncClient) -> None:
    """`/metrics` has certificates per level, certmon's notAfter gauge and ssl_exporter's, read from the history."""
    body = (await client.get("/metrics")).text
    samples = {f.name: f.samples for f in text_string_to_metric_families(body)}
    assert {s.labels["level"]: s.value for s in samples["certmon_certificates"]} == {
        "critical": 1,
        "warning": 1,
        "info": 0,
        "ok": 1,
    }
    assert SOON.certificate is not None
    [soon] = [
        s for s in samples["certmon_cert_not_after_timestamp_seconds"] if s.labels["target"] == "soon.example:443"
    ]
    assert soon.labels == {
        "issuer_CN": "certmon Test CA",
        "serial_number": "1234",
        "subject_CN": "soon.example",
        "target": "soon.example:443",
    }
    assert soon.value == pytest.approx(SOON.certificate.not_after.timestamp())
    [ssl] = [s for s in samples["ssl_cert_not_after"] if s.labels["target"] == "soon.example:443"]
    assert (ssl.labels["cn"], ssl.labels["dnsnames"], ssl.labels["serial_no"]) == (
        "soon.example",
        ",soon.example,",
        str(0x1234),
    )


async def test_metrics_serve_the_process_or_the_estate_alone_on_request(client: httpx.AsyncClient) -> None:
    """`?only=process` leaves the estate out (a fast scrape of the process's own metrics), `?only=estate` leaves the
    process's own metrics out; together they are what `/metrics` serves, and another value is refused."""
    whole = {f.name for f in text_string_to_metric_families((await client.get("/metrics")).text)}
    process = {f.name for f in text_string_to_metric_families((await client.get("/metrics?only=process")).text)}
    estate = {f.name for f in text_string_to_metric_families((await client.get("/metrics?only=estate")).text)}
    assert "certmon_messages_consumed" in process and "certmon_certificates" not in process
    assert "certmon_certificates" in estate and "ssl_cert_not_after" in estate
    assert "certmon_messages_consumed" not in estate
    assert process | estate == whole
    assert (await client.get("/metrics?only=everything")).status_code == 422


async def test_readiness_fails_when_the_database_is_gone(settings: Settings, database_url: str) -> None:
    """`/healthz/ready` answers 503 once the pool cannot reach PostgreSQL; liveness stays 200."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    assert pool is not None
    app = create_app(History(pool), settings, links=LINKS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://reporter") as client:
        assert (await client.get("/healthz/ready")).status_code == 200
        await pool.close()
        assert (await client.get("/healthz/ready")).status_code == 503
        assert (await client.get("/healthz/live")).status_code == 200


async def test_real_server_answers_over_tcp(settings: Settings, bus: InMemoryBus, pg_pool: asyncpg.Pool) -> None:
    """The service's uvicorn server binds 127.0.0.1 on an ephemeral port and serves `/healthz/live`."""
    reporter = bootstrap(settings, CertmonConfig(), bus=bus, pool=pg_pool, clock=lambda: NOW)
    await reporter.start()
    try:
        port = reporter.http_port
        assert port > 0
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            response = await client.get("/healthz/live")
            assert response.status_code == 200
            assert response.json() == {"status": "ok"}
            assert (await client.get("/")).status_code == 200
    finally:
        await reporter.stop()


async def test_a_taken_port_fails_start_cleanly(settings: Settings, bus: InMemoryBus, pg_pool: asyncpg.Pool) -> None:
    """Starting on a port another server holds raises OSError and leaves nothing running."""
    first = bootstrap(settings, CertmonConfig(), bus=bus, pool=pg_pool, clock=lambda: NOW)
    await first.start()
    try:
        taken = settings.model_copy(update={"http_port": first.http_port})
        second = bootstrap(taken, CertmonConfig(), bus=bus, pool=pg_pool, clock=lambda: NOW)
        with pytest.raises(OSError):
            await second.start()
        with pytest.raises(RuntimeError):
            _ = second.http_port
    finally:
        await first.stop()


async def test_start_says_when_the_api_is_open(settings: Settings, bus: InMemoryBus, pg_pool: asyncpg.Pool) -> None:
    """With no token of either kind the reporter warns at start that anyone may read and acknowledge; with a write
    token alone it does not."""
    for write_tokens, warned in (([], True), ([SecretStr(TOKEN)], False)):
        configured = settings.model_copy(update={"api_tokens": [], "api_write_tokens": write_tokens})
        reporter = bootstrap(configured, CertmonConfig(), bus=bus, pool=pg_pool, clock=lambda: NOW, serve_http=False)
        with capture_logs() as logs:
            await reporter.start()
        await reporter.stop()
        assert ("api_open_without_tokens" in [entry["event"] for entry in logs]) is warned
