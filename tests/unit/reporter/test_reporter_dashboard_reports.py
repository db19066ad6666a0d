"""The reports page: the published reports with a link to each object, served from the bucket by the reporter."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from services.reporter.adapters.bucket import LocalFolderBucket
from services.reporter.adapters.memory import InMemoryHistory
from shared.events import ReportPublished, make_event
from tests.unit.reporter.html_tables import body_rows, links
from tests.unit.reporter.reporter_app import READ, client_on
from tests.unit.reporter.test_reporter_pages import assert_self_contained

DAY = datetime(2026, 11, 27, tzinfo=UTC)
HTML = b"<!DOCTYPE html><html><head><style>body{}</style></head><body><h1>daily</h1></body></html>"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A daily report of DAY in HTML, JSON and CSV in a folder bucket, recorded as published, and a weekly one
    whose objects are gone."""
    bucket = LocalFolderBucket(tmp_path / "reports")
    keys = [
        await bucket.put("daily/2026-11-27/status.html", HTML, "text/html"),
        await bucket.put("daily/2026-11-27/status.json", b'{"kind": "daily"}', "application/json"),
        await bucket.put("daily/2026-11-27/status.csv", b"target,level\r\n", "text/csv"),
    ]
    history = InMemoryHistory()
    reports = [
        ReportPublished(
            kind="daily",
            period_start=DAY,
            period_end=DAY + timedelta(days=1),
            keys=keys,
            location="",
            period="2026-11-27",
        ),
        ReportPublished(
            kind="weekly",
            period_start=DAY - timedelta(days=4),
            period_end=DAY + timedelta(days=3),
            keys=["weekly/2026-W48/trends.html"],
            location="",
            period="2026-W48",
        ),
    ]
    for report in reports:
        event = make_event("report.published.v1", report, source="t")
        await history.record_report(report.keys[0], report, event)
    async with client_on(history, bucket=bucket) as client:
        yield client


async def test_the_reports_page_links_every_format_newest_first(client: httpx.AsyncClient) -> None:
    """One row per report, newest period first, with a link per object through the reporter."""
    response = await client.get("/reports", headers=READ)
    assert_self_contained(response)
    rows = body_rows(response.text, "reports")
    assert [(row[0], row[1]) for row in rows] == [("daily", "2026-11-27"), ("weekly", "2026-W48")]
    assert ("/reports/daily/2026-11-27/status.html", "HTML") in links(response.text)
    assert rows[0][4] == "HTML · JSON · CSV"


async def test_a_report_object_is_served_with_its_content_type(client: httpx.AsyncClient) -> None:
    """HTML comes under the strict CSP, inline; JSON and CSV with their types, as downloads; none is sniffed."""
    html = await client.get("/reports/daily/2026-11-27/status.html", headers=READ)
    assert (html.status_code, html.content) == (200, HTML)
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in html.headers["content-security-policy"]
    assert "content-disposition" not in html.headers
    as_json = await client.get("/reports/daily/2026-11-27/status.json", headers=READ)
    assert as_json.headers["content-type"] == "application/json" and as_json.json() == {"kind": "daily"}
    csv = await client.get("/reports/daily/2026-11-27/status.csv", headers=READ)
    assert csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert csv.headers["content-disposition"] == "attachment; filename*=UTF-8''status.csv"
    for response in (html, as_json, csv):
        assert response.headers["x-content-type-options"] == "nosniff"


async def test_missing_or_escaping_objects_are_not_found(client: httpx.AsyncClient) -> None:
    """A key with no object, or one climbing out of the bucket, answers a 404 page; so does no sign-in at all."""
    for key in ("weekly/2026-W48/trends.html", "daily/%2E%2E/%2E%2E/etc/passwd", "..%2Fsecret"):
        response = await client.get(f"/reports/{key}", headers=READ)
        assert response.status_code in (400, 404), key
        assert "root:" not in response.text
    assert (await client.get("/reports/daily/2026-11-27/status.html")).status_code == 303
