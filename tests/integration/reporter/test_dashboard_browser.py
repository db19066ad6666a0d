"""The dashboard in a real browser (headless Debian Chromium driven by Playwright) on a seeded PostgreSQL history:
signing in through `/login` with a token, every page, its filters, the timeline and an acknowledgement, with nothing
requested beyond 127.0.0.1 and no console error. A screenshot of each page goes to `test-artifacts/screenshots/`."""

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr

from services.reporter.bootstrap import ReporterService, bootstrap
from services.reporter.domain.periods import period_of
from shared.broker import InMemoryBus
from shared.config import CertmonConfig
from shared.events import (
    Acknowledgement,
    AcknowledgementRequested,
    AlarmTransition,
    Evaluation,
    Finding,
    NotificationResult,
    make_event,
)
from shared.settings import Settings
from tests.unit.reporter.reporter_factories import NOW, alarm, evaluation

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"
READ_TOKEN = "read-token-for-the-browser-tests"
WRITE_TOKEN = "write-token-for-the-browser-tests"
playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is a test dependency")

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Chromium is not installed (.ci/run installs Debian's chromium)"
)


def issued_by(item: Evaluation, issuer: str) -> Evaluation:
    """`item` with its certificate issued by `issuer`."""
    assert item.certificate is not None
    return item.model_copy(update={"certificate": item.certificate.model_copy(update={"issuer": issuer})})


EXPIRED = evaluation(
    "old.example",
    days=-3,
    level="critical",
    grade="F",
    owner="shop-team",
    findings=[Finding(code="expiry.expired", severity="critical", message="expired 3 days ago")],
)
SOON = evaluation(
    "soon.example",
    days=5,
    level="critical",
    grade="B",
    owner="shop-team",
    subject="CN=<b>soon</b>",
    findings=[Finding(code="expiry.within_7_days", severity="critical", message="expires in 5 days")],
)
MONTH = issued_by(evaluation("month.example", days=20, level="warning", owner="platform-team"), "CN=Other CA")
FINE = evaluation("fine.example", days=200, level="ok", grade="A+", owner="platform-team")
ESTATE = [EXPIRED, SOON, MONTH, FINE]
#: Where the alarmer would take the acknowledge requests the reporter relays.
REQUESTS = "test.dashboard.ack-requests"


def host_of(item: Evaluation) -> str:
    """The seeded target's host name."""
    assert item.target.host is not None
    return item.target.host


def fingerprint_of(item: Evaluation) -> str:
    """The seeded certificate's fingerprint."""
    assert item.certificate is not None
    return item.certificate.fingerprint_sha256


async def seed(reporter: ReporterService, bus: InMemoryBus) -> None:
    """The estate; an open alarm on SOON, mailed; one on EXPIRED that Jane acknowledged; a resolved one on MONTH;
    and the daily report of NOW's day."""
    for item in ESTATE:
        await reporter.history.record_evaluation(make_event("certificate.evaluated.v1", item, source="t").id, item)
    raised = NOW - timedelta(hours=2)

    async def record(alarm_id: str, item: Evaluation, *steps: tuple[AlarmTransition, Acknowledgement | None]) -> None:
        for n, (transition, ack) in enumerate(steps):
            event = alarm(
                alarm_id,
                transition,
                "ok" if transition == "resolved" else item.alarm.level,
                raised + timedelta(minutes=30 * n),
                host=host_of(item),
                fingerprint=fingerprint_of(item),
                acknowledgement=ack,
                cause=ack.by if ack else None,
            )
            await reporter.history.record_alarm(f"{alarm_id}-e{n}", event)

    jane = Acknowledgement(
        by="jane@example.com", at=raised + timedelta(minutes=30), comment="renewal ordered", via="api"
    )
    await record("soon1", SOON, ("raised", None))
    await record("old1", EXPIRED, ("raised", None), ("acknowledged", jane))
    await record("month1", MONTH, ("raised", None), ("resolved", None))
    mailed = NotificationResult(
        alarm_id="soon1", alarm_event_id="soon1-e0", channel="email", recipient="shop@example.com", attempt=1, at=raised
    )
    await reporter.history.record_notification("soon1-n1", mailed, ok=True)
    await reporter.publish("daily", period_of("daily", NOW), now=NOW)
    bus.declare(REQUESTS, ["acknowledgement.requested.v1"])


async def answer_acknowledgement(bus: InMemoryBus) -> AcknowledgementRequested:
    """Play the alarmer: take the relayed request and publish the `alarm.acknowledged.v1` it asks for."""
    async with asyncio.timeout(10):
        while not bus.pending(REQUESTS):
            await asyncio.sleep(0.02)
    [command] = bus.pending(REQUESTS)
    request = AcknowledgementRequested.model_validate(command.data)
    ack = Acknowledgement(by=request.by, at=NOW, comment=request.comment, via=request.via)
    event = alarm(
        request.alarm_id,
        "acknowledged",
        "critical",
        NOW,
        host=host_of(SOON),
        fingerprint=fingerprint_of(SOON),
        acknowledgement=ack,
        cause=request.by,
    )
    await bus.publish(make_event("alarm.acknowledged.v1", event, source="certmon/test"))
    return request


@dataclass
class Visit:
    """A browser page on the reporter, with every URL it requested and every error it logged."""

    page: Any
    base: str
    requested: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def open(self, path: str) -> None:
        """Go to `path` on the reporter and wait until nothing more loads."""
        await self.page.goto(self.base + path, wait_until="networkidle")

    async def click(self, selector: str) -> None:
        """Click what `selector` finds and wait for the page it leads to."""
        async with self.page.expect_navigation(wait_until="networkidle"):
            await self.page.click(selector)

    async def shot(self, name: str) -> None:
        """Keep a full-page screenshot as `test-artifacts/screenshots/<name>.png`."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    async def sign_in(self, token: str) -> None:
        """Fill the sign-in form the browser shows and submit it."""
        await self.page.fill("input[name=token]", token)
        await self.click("form button[type=submit]")

    async def text(self, selector: str = "body") -> str:
        """The visible text of the first element `selector` finds."""
        return str(await self.page.inner_text(selector))

    async def column(self, table: str, index: int) -> list[str]:
        """The cells of column `index` in the body of the table `table` (a selector)."""
        cells = await self.page.locator(f"{table} tbody tr td:nth-child({index})").all_inner_texts()
        return [cell.strip() for cell in cells]

    @property
    def path(self) -> str:
        """The page's address without the reporter's origin."""
        return str(self.page.url).removeprefix(self.base)


@pytest.fixture
async def reporter(settings: Settings, bus: InMemoryBus, pg_pool: asyncpg.Pool) -> AsyncIterator[ReporterService]:
    """A started reporter serving HTTP on 127.0.0.1, a read and a write token configured, the history seeded."""
    configured = settings.model_copy(
        update={"api_tokens": [SecretStr(READ_TOKEN)], "api_write_tokens": [SecretStr(WRITE_TOKEN)]}
    )
    service = bootstrap(configured, CertmonConfig(), bus=bus, pool=pg_pool, clock=lambda: NOW)
    await service.start()
    try:
        await seed(service, bus)
        yield service
    finally:
        await service.stop()


@pytest.fixture
async def visit(reporter: ReporterService) -> AsyncIterator[Visit]:
    """A fresh Chromium page on the reporter; afterwards, it must have requested only the reporter and logged no
    error."""
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
        )
        try:
            page = await browser.new_page()
            visit = Visit(page, f"http://127.0.0.1:{reporter.http_port}")
            page.on("request", lambda request: visit.requested.append(request.url))
            page.on("pageerror", lambda error: visit.errors.append(str(error)))
            page.on("console", lambda message: visit.errors.append(message.text) if message.type == "error" else None)
            yield visit
        finally:
            await browser.close()
    assert [url for url in visit.requested if not url.startswith(visit.base + "/")] == []
    assert visit.errors == []


async def test_signing_in_through_the_form_comes_back_to_the_page_asked_for(visit: Visit) -> None:
    """A page asked for without a session shows the sign-in form; a wrong token says so, the right one opens the
    page, and signing out ends the session."""
    await visit.open("/alarms/soon1")
    assert visit.path == "/login?next=%2Falarms%2Fsoon1"
    await visit.shot("login")
    await visit.sign_in("not-a-token")
    assert "This token is not valid" in await visit.text()
    # The refusal's 401 is the one error the console may show.
    assert visit.errors.pop() == "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    await visit.shot("login-refused")
    await visit.sign_in(READ_TOKEN)
    assert visit.path == "/alarms/soon1"
    assert "soon.example:443" in await visit.text("h1")
    await visit.click("text=Sign out")
    assert visit.path == "/login"
    await visit.open("/")
    assert visit.path == "/login?next=%2F"


async def test_every_page_shows_the_seeded_history(visit: Visit) -> None:
    """Signed in with a read token: the overview, the certificates, a certificate, the timeline, the alarms, an
    alarm, the reports and a report show the seeded history, with no acknowledge form for a reader."""
    await visit.open("/")
    await visit.sign_in(READ_TOKEN)
    assert visit.path == "/"
    await visit.shot("overview")
    counts = [await visit.text(f"{card} .n") for card in ("#level-critical", "#level-warning", "#level-ok")]
    assert (counts, await visit.text("#expired-count")) == (["2", "1", "1"], "1")
    assert await visit.column("#next-expirations", 1) == ["soon.example:443", "month.example:443", "fine.example:443"]
    assert sorted(await visit.column("#open-alarms", 1)) == ["old.example:443", "soon.example:443"]
    grades = dict(
        zip(
            await visit.page.locator("#grade-distribution tbody th").all_inner_texts(),
            await visit.column("#grade-distribution", 2),
            strict=True,
        )
    )
    assert (grades["A+"], grades["B"], grades["F"]) == ("1", "1", "1")

    await visit.click("#nav-certificates")
    await visit.shot("certificates")
    assert await visit.column("#certificates", 1) == [
        "old.example:443",
        "soon.example:443",
        "month.example:443",
        "fine.example:443",
    ]
    assert "4 targets match" in await visit.text("#match-count")

    await visit.click("#certificates a >> text=soon.example:443")
    await visit.shot("certificate")
    assert visit.path == f"/certificates/{fingerprint_of(SOON)}"
    assert "CN=<b>soon</b>" in await visit.text("h1")
    assert "expiry.within_7_days" in await visit.text("#findings")
    assert "shop@example.com" in await visit.text("#alarm-soon1")
    assert await visit.page.locator("form.ack").count() == 0

    await visit.click("#nav-timeline")
    await visit.shot("timeline")
    soon_day = (NOW + timedelta(days=5)).date().isoformat()
    assert "soon.example:443" in await visit.text(f"#day-{soon_day}")
    assert "month.example:443" in await visit.text(f"#day-{(NOW + timedelta(days=20)).date().isoformat()}")
    december = await visit.page.locator(f"#month-{(NOW + timedelta(days=5)):%Y-%m} td").all_inner_texts()
    assert [cell.strip() for cell in december[:5]] == ["2", "1", "1", "0", "0"]  # targets, then per level

    await visit.click("#nav-alarms")
    await visit.shot("alarms")
    assert "3 alarms match" in await visit.text("#match-count")
    assert "renewal ordered" in await visit.text("#alarm-old1")
    assert "jane@example.com" in await visit.text("#alarm-old1")

    await visit.click("#alarm-soon1 h3 a")
    await visit.shot("alarm")
    assert visit.path == "/alarms/soon1"
    assert "shop@example.com" in await visit.text()
    assert await visit.page.locator("form.ack").count() == 0

    await visit.click("#nav-reports")
    await visit.shot("reports")
    assert "daily" in await visit.text("#reports")
    await visit.click("#reports a >> text=HTML")
    await visit.shot("report-daily")
    assert "soon.example" in await visit.text()


async def test_filters_narrow_the_certificates_and_the_alarms(visit: Visit) -> None:
    """The certificates' level, owner, issuer and text filters, a sort by expiry, and the alarms' state filter,
    each through the page's own form and links."""
    await visit.open("/certificates")
    await visit.sign_in(READ_TOKEN)
    await visit.page.select_option("#filters select[name=level]", "critical")
    await visit.click("#filters button[type=submit]")
    assert await visit.column("#certificates", 1) == ["old.example:443", "soon.example:443"]
    assert "level=critical" in visit.path
    await visit.shot("certificates-critical")

    await visit.click("#clear-filters")
    await visit.page.fill("#filters input[name=owner]", "platform-team")
    await visit.click("#filters button[type=submit]")
    assert await visit.column("#certificates", 1) == ["month.example:443", "fine.example:443"]

    await visit.click("#clear-filters")
    await visit.page.fill("#filters input[name=issuer]", "CN=Other CA")
    await visit.click("#filters button[type=submit]")
    assert await visit.column("#certificates", 1) == ["month.example:443"]

    await visit.click("#clear-filters")
    await visit.page.fill("#filters input[name=q]", "soon")
    await visit.click("#filters button[type=submit]")
    assert await visit.column("#certificates", 1) == ["soon.example:443"]

    await visit.click("#clear-filters")
    await visit.click("#certificates thead a >> text=Not after")
    assert await visit.column("#certificates", 1) == [
        "old.example:443",
        "soon.example:443",
        "month.example:443",
        "fine.example:443",
    ]

    await visit.open("/alarms")
    await visit.page.select_option("#filters select[name=state]", "open")
    await visit.click("#filters button[type=submit]")
    await visit.shot("alarms-open")
    assert "1 alarm matches" in await visit.text("#match-count")
    assert await visit.page.locator("#alarm-history article").count() == 1
    await visit.page.select_option("#filters select[name=state]", "resolved")
    await visit.click("#filters button[type=submit]")
    assert await visit.page.locator("#alarm-month1").count() == 1


async def test_the_timeline_leads_to_the_certificates_of_a_day_and_a_month(visit: Visit) -> None:
    """A calendar entry opens its certificate; a month of the month-by-month view lists that month's expirations."""
    await visit.open("/timeline")
    await visit.sign_in(READ_TOKEN)
    soon_day = (NOW + timedelta(days=5)).date().isoformat()
    await visit.click(f"#day-{soon_day} a.entry")
    assert visit.path == f"/certificates/{fingerprint_of(SOON)}"
    await visit.open("/timeline")
    fine_month = (NOW + timedelta(days=200)).strftime("%Y-%m")
    await visit.click(f"#month-{fine_month} th a")
    assert await visit.column("#certificates", 1) == ["fine.example:443"]
    await visit.shot("timeline-month")


async def test_acknowledging_from_the_certificate_page(visit: Visit, bus: InMemoryBus) -> None:
    """Signed in with a write token, the certificate page's form acknowledges the open alarm with a comment: the
    request reaches the alarmer, and the alarm's page shows who acknowledged it and what they said."""
    await visit.open(f"/certificates/{fingerprint_of(SOON)}")
    await visit.sign_in(WRITE_TOKEN)
    await visit.page.fill("#ack-soon1 textarea[name=comment]", "certificate ordered")
    alarmer = asyncio.create_task(answer_acknowledgement(bus))
    await visit.click("#ack-soon1 button[type=submit]")
    request = await alarmer
    assert (request.alarm_id, request.comment) == ("soon1", "certificate ordered")
    assert visit.path == "/alarms/soon1?ack=acknowledged"
    await visit.shot("alarm-acknowledged")
    assert "Acknowledged" in await visit.text("#ack-outcome")
    assert "certificate ordered" in await visit.text()
    assert await visit.page.locator("form.ack").count() == 0
