"""`/metrics` on PostgreSQL reads the latest evaluations a page at a time and streams its text, and serves exactly
what one rendering of all of them at once gives."""

from datetime import timedelta

import asyncpg
import httpx
import pytest

from services.reporter.adapters.history import History
from services.reporter.adapters.http import create_app
from services.reporter.adapters.metric_source import PostgresLatest
from services.reporter.adapters.metrics import exposition
from services.reporter.ports import HistoryStore
from shared.events import make_event
from shared.settings import Settings
from tests.integration.reporter.test_reporter_http import LINKS
from tests.unit.reporter.reporter_factories import NOW, evaluation
from tests.unit.reporter.test_exporter_metrics import DOWN, FILE, OLD, SHOP

#: Twelve targets: endpoints with a chain, OCSP and TLS facts, a file, an unreachable one, escaped subjects.
ESTATE = [
    SHOP,
    OLD,
    FILE,
    DOWN,
    *(
        evaluation(f"h{n}.example", days=n * 11 - 30, level=("ok", "info", "warning", "critical")[n % 4])
        for n in range(7)
    ),
    evaluation("quote.example", days=3, subject='CN=quote "q" \\ back,O=Odd\nLine'),
]


async def fill(history: HistoryStore) -> None:
    """Record the estate through the history, as the reporter's handler does, each target seen twice: its days
    left as of the second sighting are what both renderings must show."""
    for e in ESTATE:
        await history.record_evaluation(make_event("certificate.evaluated.v1", e, source="t").id, e)
    for e in ESTATE:
        later = e.evaluated_at + timedelta(hours=1)
        expiry = e.expiry.model_copy(update={"days_remaining": e.expiry.days_remaining - 1 / 24}) if e.expiry else None
        again = e.model_copy(update={"evaluated_at": later, "observed_at": later, "expiry": expiry})
        await history.record_evaluation(make_event("certificate.evaluated.v1", again, source="t").id, again)


@pytest.mark.parametrize("page_size", [5, 6])
async def test_metrics_over_several_pages_serve_the_one_shot_rendering(
    pg_pool: asyncpg.Pool, settings: Settings, page_size: int
) -> None:
    """Pages of five (the last one short) and of six (every page full, then an empty one) give, after the process's
    own metrics, the text of all latest evaluations rendered at once, byte for byte."""
    history = History(pg_pool)
    await history.migrate()
    await fill(history)
    app = create_app(
        history, settings, links=LINKS, clock=lambda: NOW, estate=PostgresLatest(pg_pool, page_size=page_size)
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://reporter") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    body = response.content
    estate = body[body.index(b"# HELP certmon_certificates ") :]
    latest = await history.latest()
    assert len(latest) == len(ESTATE)
    assert await pg_pool.fetchval("SELECT max(seen_count) FROM reporter.evaluations") == 2
    assert estate == exposition(latest, now=NOW)
