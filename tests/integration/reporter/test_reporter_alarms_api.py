"""`GET /api/v1/alarms` a page at a time, on the in-memory history and on PostgreSQL alike: `limit`, the cursor in
the `Link` header (RFC 8288), every alarm once in order, a bad cursor and a too large limit refused."""

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr

from services.reporter.adapters.http import ALARMS_PAGE, MAX_ALARMS_PAGE, create_app
from services.reporter.ports import HistoryStore
from shared.action_links import ActionLinkSigner
from shared.events import NotificationResult
from shared.settings import Settings
from tests.integration.reporter import test_history_contract as contract
from tests.integration.reporter.test_history_contract import StoreUnderTest
from tests.unit.reporter.reporter_factories import NOW, alarm

TOKEN = "read-token-for-the-alarm-pages"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


# The history contract's fixtures: each case runs once on the in-memory history and once on PostgreSQL.
pool_or_none = contract.pool_or_none
under_test = contract.under_test


@pytest.fixture
def history(under_test: StoreUnderTest) -> HistoryStore:
    """The history under test."""
    return under_test.history


@pytest.fixture
async def client(history: HistoryStore) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client on the app over `history`, with one read token."""
    settings = Settings(api_tokens=[SecretStr(TOKEN)], api_write_tokens=[])
    app = create_app(history, settings, links=ActionLinkSigner(b"link-key-for-alarm-pages"), clock=lambda: NOW)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://reporter", timeout=10) as client:
        yield client


async def store(history: HistoryStore, count: int) -> list[str]:
    """`count` alarms, `alarm-00`.. each raised a minute apart, every third resolved later, `alarm-01` and
    `alarm-02` changed at the same moment (a tie), each raise mailed once; answers their ids in the API's order:
    latest change first, a tie by the larger id first."""
    changed: dict[str, object] = {}
    for n in range(count):
        alarm_id = f"alarm-{n:02d}"
        raised_at = NOW - timedelta(hours=5, minutes=n)
        await history.record_alarm(f"{alarm_id}-e1", alarm(alarm_id, "raised", "warning", raised_at, host=f"h{n}"))
        sent = NotificationResult(
            alarm_id=alarm_id,
            alarm_event_id=f"{alarm_id}-e1",
            channel="email",
            recipient="ops@example.com",
            attempt=1,
            at=raised_at + timedelta(seconds=5),
        )
        await history.record_notification(f"{alarm_id}-n1", sent, ok=True)
        updated_at = raised_at
        if n in (1, 2):
            updated_at = NOW - timedelta(hours=1)
            await history.record_alarm(
                f"{alarm_id}-e2", alarm(alarm_id, "changed", "critical", updated_at, host=f"h{n}")
            )
        elif n % 3 == 0:
            updated_at = raised_at + timedelta(hours=3)
            await history.record_alarm(f"{alarm_id}-e2", alarm(alarm_id, "resolved", "ok", updated_at, host=f"h{n}"))
        changed[alarm_id] = updated_at
    return sorted(changed, key=lambda alarm_id: (changed[alarm_id], alarm_id), reverse=True)


async def walk(client: httpx.AsyncClient, url: str) -> list[list[dict[str, object]]]:
    """Every page from `url` on, following the `Link` header's `rel="next"` until a page has none."""
    pages = []
    next_url: str | None = url
    while next_url is not None:
        response = await client.get(next_url, headers=AUTH)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        next_url = response.links.get("next", {}).get("url")
        assert len(pages) < 100, "the pages never end"
    return pages


async def test_a_walk_by_link_sees_every_alarm_once_in_order(history: HistoryStore, client: httpx.AsyncClient) -> None:
    """Pages of `limit` alarms, latest change first (the tie by id), followed by `Link`, end with a page without
    one, and list every alarm exactly once, each with its history and notifications."""
    expected = await store(history, 11)
    pages = await walk(client, "/api/v1/alarms?limit=3")
    assert [len(page) for page in pages] == [3, 3, 3, 2]
    seen = [a["alarm_id"] for page in pages for a in page]
    assert seen == expected
    assert seen[:2] == ["alarm-02", "alarm-01"]
    first = pages[0][0]
    assert [h["transition"] for h in first["history"]] == ["raised", "changed"]
    assert [n["recipient"] for n in first["notifications"]] == ["ops@example.com"]


async def test_the_next_link_keeps_the_filters(history: HistoryStore, client: httpx.AsyncClient) -> None:
    """A filtered walk stays filtered: `state` and `limit` travel in the next page's URL with the cursor."""
    expected = await store(history, 11)
    resolved = [alarm_id for alarm_id in expected if int(alarm_id[-2:]) % 3 == 0]
    pages = await walk(client, "/api/v1/alarms?state=resolved&limit=2")
    assert [a["alarm_id"] for page in pages for a in page] == resolved
    assert all(a["state"] == "resolved" for page in pages for a in page)
    assert [len(page) for page in pages] == [2, 2]


async def test_the_default_page_is_bounded(history: HistoryStore, client: httpx.AsyncClient) -> None:
    """Without `limit` a page holds ALARMS_PAGE alarms and links to the rest; the last page has no `Link`."""
    await store(history, ALARMS_PAGE + 1)
    first = await client.get("/api/v1/alarms", headers=AUTH)
    assert len(first.json()) == ALARMS_PAGE
    rest = await client.get(first.links["next"]["url"], headers=AUTH)
    assert len(rest.json()) == 1
    assert "link" not in rest.headers


async def test_a_cursor_not_from_this_list_is_a_400(history: HistoryStore, client: httpx.AsyncClient) -> None:
    """A cursor that does not decode, or decodes to no alarm key, is refused with a reason that names it."""
    await store(history, 3)
    for cursor in ("not-a-cursor", "WyJvayJd", "WzEsMiwzXQ"):
        response = await client.get("/api/v1/alarms", params={"cursor": cursor}, headers=AUTH)
        assert response.status_code == 400, cursor
        assert "cursor" in response.json()["detail"]


async def test_a_limit_out_of_range_is_a_422(history: HistoryStore, client: httpx.AsyncClient) -> None:
    """`limit` is 1 to MAX_ALARMS_PAGE: 0 and one more than the most are refused, the most is served."""
    await store(history, 3)
    for limit, status in ((0, 422), (MAX_ALARMS_PAGE + 1, 422), (MAX_ALARMS_PAGE, 200)):
        response = await client.get("/api/v1/alarms", params={"limit": limit}, headers=AUTH)
        assert response.status_code == status, limit


async def test_openapi_documents_the_paging(client: httpx.AsyncClient) -> None:
    """The OpenAPI document lists `limit` (with its bounds), `cursor` and the `Link` header of the alarms list."""
    operation = (await client.get("/openapi.json")).json()["paths"]["/api/v1/alarms"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert {"state", "level", "cursor", "limit"} <= set(parameters)
    assert parameters["limit"]["schema"]["maximum"] == MAX_ALARMS_PAGE
    assert "Link" in operation["responses"]["200"]["headers"]
    assert "400" in operation["responses"]
