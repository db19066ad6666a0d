"""Signed acknowledge links: GET shows a confirmation form and changes nothing; POST acknowledges as the recipient."""

from datetime import timedelta

import httpx
import pytest

from services.reporter.adapters.memory import InMemoryHistory
from tests.unit.reporter.reporter_app import JANE, ack_token, answer_requests, requests


def assert_guarded(response: httpx.Response) -> None:
    """A link page is HTML that loads and runs nothing, is not cached, and sends no Referer onwards."""
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "form-action 'self'" in csp
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    for external in ("<script", "<link", "src=", "url(", "@import"):
        assert external not in response.text


async def test_a_valid_link_shows_the_alarm_and_a_form_and_sends_nothing(
    client: httpx.AsyncClient, history: InMemoryHistory
) -> None:
    """GET (what a mail scanner does) shows target, level, trigger, state and certificate, and a form posting back."""
    response = await client.get(f"/ack/{ack_token('open1')}")
    assert response.status_code == 200
    assert_guarded(response)
    page = response.text
    for fact in ("open.example:443", "critical", "expiry", "open", "ab" * 32, "ops@example.com"):
        assert fact in page
    assert '<form class="ack" method="post">' in page and "action=" not in page
    assert 'name="comment"' in page and ">Acknowledge</button>" in page
    assert requests(history) == []


async def test_posting_the_form_acknowledges_as_the_recipient(
    client: httpx.AsyncClient, history: InMemoryHistory
) -> None:
    """POST sends one request by the link's recipient via the link, with the comment, and shows the outcome."""
    alarmer = answer_requests(history)
    response = await client.post(f"/ack/{ack_token('open1')}", data={"comment": "  renewing today "})
    await alarmer
    assert response.status_code == 200
    assert_guarded(response)
    assert "Alarm acknowledged" in response.text
    [request] = requests(history)
    assert (request.alarm_id, request.by, request.comment, request.via) == (
        "open1",
        "ops@example.com",
        "renewing today",
        "link",
    )


async def test_an_unanswered_post_is_202_and_a_repeat_sends_nothing_more(
    client: httpx.AsyncClient, history: InMemoryHistory
) -> None:
    """Without the alarmer's answer the page says the acknowledgement was sent; submitting again adds no request."""
    token = ack_token("open1")
    for _ in range(2):
        response = await client.post(f"/ack/{token}", data={})
        assert response.status_code == 202
        assert "Acknowledgement sent" in response.text
    [request] = requests(history)
    assert request.comment is None


@pytest.mark.parametrize(
    ("alarm_id", "status", "says"),
    [
        ("gone1", 409, "already resolved, nothing to acknowledge"),
        ("nope", 404, "knows no such alarm"),
        ("acked1", 200, f"already acknowledged by {JANE.by} at 2026-11-27 06:20 UTC"),
    ],
)
async def test_links_to_alarms_that_cannot_be_acknowledged_change_nothing(
    client: httpx.AsyncClient, history: InMemoryHistory, alarm_id: str, status: int, says: str
) -> None:
    """Resolved, unknown and already acknowledged alarms answer a clear page on GET and POST, and send nothing."""
    token = ack_token(alarm_id)
    for response in (await client.get(f"/ack/{token}"), await client.post(f"/ack/{token}", data={"comment": "x"})):
        assert response.status_code == status
        assert_guarded(response)
        assert says in response.text
        assert "<form" not in response.text
    assert requests(history) == []


async def test_altered_malformed_and_expired_links_change_nothing(
    client: httpx.AsyncClient, history: InMemoryHistory
) -> None:
    """A token changed by one character or not a token at all is 400, an expired one 410, on GET and POST."""
    token = ack_token("open1")
    altered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    expired = ack_token("open1", expires_in=-timedelta(seconds=1))
    cases = [(altered, 400, "altered"), ("x" * 5000, 400, "not an acknowledge link"), (expired, 410, "expired on")]
    for bad, status, says in cases:
        for response in (await client.get(f"/ack/{bad}"), await client.post(f"/ack/{bad}", data={})):
            assert response.status_code == status
            assert_guarded(response)
            assert says in response.text
            assert "<form" not in response.text
    assert requests(history) == []


async def test_an_overlong_comment_is_refused(client: httpx.AsyncClient, history: InMemoryHistory) -> None:
    """A comment past the limit is 422, a body past the form limit 413; neither sends anything."""
    token = ack_token("open1")
    assert (await client.post(f"/ack/{token}", data={"comment": "y" * 2001})).status_code == 422
    assert (await client.post(f"/ack/{token}", data={"comment": "y" * 30000})).status_code == 413
    assert requests(history) == []
