"""The alarm history page: filters, pages, each alarm's transitions, notifications and acknowledgements; and the
acknowledge form on an alarm's page."""

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from services.reporter.adapters.http import create_app
from services.reporter.adapters.memory import InMemoryHistory
from services.reporter.service_layer.acknowledging import Acknowledger
from services.reporter.service_layer.dashboard import PAGE_SIZE
from shared.events import NotificationResult, OwnerRef
from shared.settings import Settings
from tests.unit.reporter.html_tables import links, text_of
from tests.unit.reporter.reporter_app import (
    JANE,
    LINKS,
    RAISED_AT,
    READ,
    WAIT_SECONDS,
    WRITE,
    answer_requests,
    client_on,
    requests,
    store_alarms,
)
from tests.unit.reporter.reporter_factories import NOW, alarm
from tests.unit.reporter.test_reporter_pages import assert_self_contained


@pytest.fixture
async def history() -> InMemoryHistory:
    """`open1` (critical, owned by the shop team, its mail failed once), `acked1` (acknowledged by Jane),
    `gone1` (resolved an hour ago)."""
    history = InMemoryHistory()
    await store_alarms(history)
    owned = alarm("open1", "changed", "critical", RAISED_AT + timedelta(minutes=1), host="open.example")
    await history.record_alarm("open1-e2", owned.model_copy(update={"owners": [OwnerRef(name="shop", rule="default")]}))
    failed = NotificationResult(
        alarm_id="open1",
        alarm_event_id="open1-e1",
        channel="snmp",
        recipient="nms.example",
        attempt=2,
        error="timeout",
        at=RAISED_AT,
    )
    await history.record_notification("n1", failed, ok=False)
    return history


def shown(page: str) -> list[str]:
    """The ids of the alarms the page shows, in order."""
    return re.findall(r'<article class="alarm" id="alarm-([^"]+)"', page)


async def test_every_alarm_with_its_transitions_notifications_and_acknowledgements(client: httpx.AsyncClient) -> None:
    """Latest change first; each alarm lists its steps, deliveries with their result, and who acknowledged it,
    when and why."""
    response = await client.get("/alarms", headers=READ)
    assert response.status_code == 200
    assert_self_contained(response)
    page = response.text
    assert shown(page) == ["acked1", "gone1", "open1"]
    acked = text_of(page, "alarm-acked1")
    assert f"acknowledged by {JANE.by} at 2026-11-27 06:20 UTC" in acked
    assert "renewal ordered" in acked and "dashboard or API" in acked
    opened = text_of(page, "alarm-open1")
    assert "snmp nms.example 2 failed : timeout" in opened and "owners shop" in opened
    assert "raised" in text_of(page, "alarm-gone1") and "resolved" in text_of(page, "alarm-gone1")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("state=open", ["open1"]),
        ("state=acknowledged", ["acked1"]),
        ("state=resolved", ["gone1"]),
        ("level=warning", ["acked1"]),
        ("owner=shop", ["open1"]),
        ("since=2026-11-27&until=2026-11-27", ["acked1", "gone1", "open1"]),
        ("until=2026-11-26", []),
        ("state=&level=&owner=&since=&until=", ["acked1", "gone1", "open1"]),
    ],
)
async def test_filters_narrow_the_alarms(client: httpx.AsyncClient, query: str, expected: list[str]) -> None:
    """State, level, owner and the days an alarm was alive narrow the list; empty fields mean any."""
    response = await client.get(f"/alarms?{query}", headers=READ)
    assert response.status_code == 200
    assert shown(response.text) == expected
    assert text_of(response.text, "match-count").startswith(f"{len(expected)} alarm")


async def test_a_resolved_alarm_is_not_alive_after_it_was_resolved() -> None:
    """Alarms alive from a day on: the one resolved the day before is not among them."""
    history = InMemoryHistory()
    await history.record_alarm("g1", alarm("gone", "raised", "info", NOW - timedelta(days=3)))
    await history.record_alarm("g2", alarm("gone", "resolved", "ok", NOW - timedelta(days=2)))
    await history.record_alarm("o1", alarm("open", "raised", "critical", NOW - timedelta(days=3), host="b.example"))
    async with client_on(history) as client:
        page = (await client.get("/alarms?since=2026-11-26", headers=READ)).text
    assert shown(page) == ["open"]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("state=closed", "state: Input should be &#39;open&#39;, &#39;acknowledged&#39; or &#39;resolved&#39;"),
        ("since=yesterday", "since: Input should be a valid date"),
        ("since=2026-11-28&until=2026-11-01", "since is after until"),
        ("cursor=%%%", "cursor: not a page of this list"),
    ],
)
async def test_a_bad_filter_value_is_a_400_page(client: httpx.AsyncClient, query: str, reason: str) -> None:
    """A value the history cannot use answers 400 with the reason."""
    response = await client.get(f"/alarms?{query}", headers=READ)
    assert response.status_code == 400
    assert reason in response.text


async def test_the_next_links_walk_every_alarm_once() -> None:
    """Alarms beyond one page continue on the next, none twice, and the first-page link comes back."""
    history = InMemoryHistory()
    for n in range(PAGE_SIZE + 5):
        at = NOW - timedelta(minutes=n // 2)  # pairs share a moment: the alarm id breaks the tie
        await history.record_alarm(f"e{n}", alarm(f"a{n:03d}", "raised", "warning", at, host=f"h{n}.example"))
    async with client_on(history) as client:
        first = (await client.get("/alarms?level=warning", headers=READ)).text
        following = _link(first, "Next page")
        assert parse_qs(urlsplit(following).query)["level"] == ["warning"]
        second = (await client.get(following, headers=READ)).text
    ids = shown(first) + shown(second)
    assert len(shown(first)) == PAGE_SIZE and len(ids) == len(set(ids)) == PAGE_SIZE + 5
    assert _link(second, "First page") == "/alarms?level=warning"


def _link(page: str, label: str) -> str:
    """The address of the link labelled `label`."""
    return next(address for address, text in links(page) if text == label)


async def test_the_alarm_page_acknowledges_through_its_form(
    client: httpx.AsyncClient, history: InMemoryHistory
) -> None:
    """A write sign-in sees the form on an open alarm; posting it acknowledges and comes back with the outcome."""
    assert 'action="/alarms/open1/ack"' not in (await client.get("/alarms/open1", headers=READ)).text
    page = (await client.get("/alarms/open1", headers=WRITE)).text
    assert 'action="/alarms/open1/ack"' in page
    assert 'action="/alarms/' not in (await client.get("/alarms/acked1", headers=WRITE)).text
    alarmer = answer_requests(history)
    response = await client.post("/alarms/open1/ack", data={"comment": "  renewing  "}, headers=WRITE)
    await alarmer
    assert (response.status_code, response.headers["location"]) == (303, "/alarms/open1?ack=acknowledged")
    [request] = requests(history)
    assert (request.by, request.comment) == ("dashboard", "renewing")
    after = (await client.get(response.headers["location"], headers=WRITE)).text
    assert "Acknowledged: reminders stop until its level changes." in text_of(after, "ack-outcome")


async def test_acknowledging_refusals_are_pages(client: httpx.AsyncClient, history: InMemoryHistory) -> None:
    """A read sign-in is refused; an unknown alarm is 404; a resolved one goes back saying so; a comment too long
    is 422, a body that is no form 400; nothing is sent for any of them."""
    assert (await client.post("/alarms/open1/ack", data={"comment": "x"}, headers=READ)).status_code == 403
    assert (await client.post("/alarms/nope/ack", data={"comment": ""}, headers=WRITE)).status_code == 404
    resolved = await client.post("/alarms/gone1/ack", data={"comment": ""}, headers=WRITE)
    assert resolved.headers["location"] == "/alarms/gone1?ack=resolved"
    too_long = await client.post("/alarms/open1/ack", data={"comment": "x" * 2001}, headers=WRITE)
    assert too_long.status_code == 422 and "at most 2000 characters" in too_long.text
    not_a_form = await client.post("/alarms/open1/ack", json={"comment": "x"}, headers=WRITE)
    assert not_a_form.status_code == 400 and "not a form" in not_a_form.text
    assert requests(history) == []


async def test_a_proxy_user_acknowledges_under_their_name(history: InMemoryHistory) -> None:
    """Behind an authenticating proxy allowed to write, the acknowledgement is by the proxy's user."""
    configured = Settings(
        api_tokens=[SecretStr("unused-read-token")],
        trusted_user_header="X-Forwarded-User",
        trusted_write_users=["jane@example.com"],
    )
    acknowledger = Acknowledger(history, clock=lambda: NOW, wait_seconds=WAIT_SECONDS, poll_seconds=0.01)
    app = create_app(history, configured, links=LINKS, acknowledger=acknowledger, clock=lambda: NOW)
    jane = {"X-Forwarded-User": "jane@example.com"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://reporter") as client:
        page = (await client.get("/alarms/open1", headers=jane)).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        alarmer = answer_requests(history)
        await client.post("/alarms/open1/ack", data={"csrf_token": token.group(1)}, headers=jane)
        await alarmer
    assert [r.by for r in requests(history)] == ["jane@example.com"]
