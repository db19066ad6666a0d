"""The dashboard in a real browser (headless Chromium driven by Playwright): it renders the estate, most urgent
first, with nothing loaded from the internet and no script errors."""

import shutil
from pathlib import Path

import asyncpg
import pytest

from services.reporter.bootstrap import bootstrap
from shared.broker import InMemoryBus
from shared.config import CertmonConfig
from shared.events.evaluation import Finding
from shared.settings import Settings
from tests.unit.reporter.reporter_factories import NOW, evaluation

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is a test dependency")

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Chromium is not installed (.ci/run installs Debian's chromium)"
)


async def test_dashboard_renders_in_chromium(
    settings: Settings, bus: InMemoryBus, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """Chromium lists every certificate, the expired one first, shows its finding on its page, and requests only
    our server."""
    reporter = bootstrap(settings, CertmonConfig(), bus=bus, pool=pg_pool, clock=lambda: NOW)
    await reporter.start()
    try:
        for event_id, item in enumerate(
            [
                evaluation("fine.example", days=200, owner="platform-team"),
                evaluation(
                    "old.example",
                    days=-3,
                    level="critical",
                    grade="F",
                    findings=[Finding(code="expiry.expired", severity="critical", message="expired 3 days ago")],
                ),
                evaluation("soon.example", days=20, level="warning"),
            ]
        ):
            await reporter.history.record_evaluation(f"e{event_id}", item)
        base = f"http://127.0.0.1:{reporter.http_port}"
        async with playwright_api.async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
            )
            try:
                page = await browser.new_page()
                requested: list[str] = []
                errors: list[str] = []
                page.on("request", lambda request: requested.append(request.url))
                page.on("pageerror", lambda error: errors.append(str(error)))
                await page.goto(base + "/certificates", wait_until="networkidle")
                rows = await page.locator("table#certificates tbody tr").all_inner_texts()
                await page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
                await page.locator("table#certificates a", has_text="old.example:443").click()
                await page.wait_for_load_state("networkidle")
                findings = await page.locator("section#findings").inner_text()
            finally:
                await browser.close()
    finally:
        await reporter.stop()
    assert [row.split()[0] for row in rows] == ["old.example:443", "soon.example:443", "fine.example:443"]
    assert "CRITICAL" in rows[0].upper() and "expiry.expired" in findings
    assert "platform-team" in rows[2]
    assert all(url.startswith(base) for url in requested), requested
    assert errors == []
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
