"""The API's token scopes, one alarm by id, and acknowledging through `POST /api/v1/alarms/{alarm_id}/ack`."""

from datetime import timedelta

import httpx
from structlog.testing import capture_logs

from services.reporter.adapters.memory import InMemoryHistory
from tests.unit.reporter.reporter_app import (
    JANE,
    READ,
    WRITE,
    answer_requests,
    client_on,
    requests,
)
from tests.unit.reporter.reporter_factories import NOW, alarm

ACK = {"by": "sam@example.com", "comment": "on it"}


async def test_reading_takes_a_read_or_a_write_token(client: httpx.AsyncClient) -> None:
    """GETs answer 401 (the API) or go to the sign-in page (the dashboard) without a token or with an unknown one,
    and 200 with either kind."""
    for path in ("/", "/api/v1/alarms", "/api/v1/alarms/open1", "/api/v1/reports", "/alarms/open1"):
        refused = 401 if path.startswith("/api/") else 303
        assert (await client.get(path)).status_code == refused
        assert (await client.get(path, headers={"Authorization": "Bearer nope"})).status_code == refused
        assert (await client.get(path, headers=READ)).status_code == 200
        assert (await client.get(path, headers=WRITE)).status_code == 200


async def test_acknowledging_takes_a_write_token(client: httpx.AsyncClient, history: InMemoryHistory) -> None:
    """A POST without a token is 401, with a read token 403; neither sends a request."""
    missing = await client.post("/api/v1/alarms/open1/ack", json=ACK)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert (await client.post("/api/v1/alarms/open1/ack", json=ACK, headers=READ)).status_code == 403
    assert requests(history) == []


async def test_without_any_token_configured_everything_is_open(history: InMemoryHistory) -> None:
    """No read and no write token: reading and acknowledging need no token (a local `certmon run`)."""
    async with client_on(history, tokens=False) as client:
        assert (await client.get("/api/v1/alarms")).status_code == 200
        assert (await client.post("/api/v1/alarms/acked1/ack", json=ACK)).status_code == 200


async def test_openapi_shows_which_routes_need_a_write_token(client: httpx.AsyncClient) -> None:
    """The OpenAPI document lists the alarm routes, the ack route secured by the write scheme, reads by the read one."""
    document = (await client.get("/openapi.json")).json()
    ack = document["paths"]["/api/v1/alarms/{alarm_id}/ack"]["post"]
    assert ack["security"] == [{"writeToken": []}]
    assert set(ack["responses"]) >= {"200", "202", "404", "409", "422"}
    assert document["paths"]["/api/v1/alarms/{alarm_id}"]["get"]["security"] == [{"readToken": []}]
    assert set(document["components"]["securitySchemes"]) == {"readToken", "writeToken"}
    assert "/ack/{token}" not in document["paths"]


async def test_one_alarm_by_id_or_404(client: httpx.AsyncClient) -> None:
    """An alarm's view carries its state and acknowledgement; an unknown id is 404."""
    view = (await client.get("/api/v1/alarms/acked1", headers=READ)).json()
    assert view["state"] == "acknowledged"
    assert view["acknowledgement"]["by"] == JANE.by
    assert [(h["transition"], h["cause"]) for h in view["history"]] == [("raised", None), ("acknowledged", JANE.by)]
    assert (await client.get("/api/v1/alarms/nope", headers=READ)).status_code == 404


async def test_alarms_filter_by_acknowledged_state(client: httpx.AsyncClient) -> None:
    """`state=` selects open, acknowledged or resolved alarms."""
    for state, expected in (("open", ["open1"]), ("acknowledged", ["acked1"]), ("resolved", ["gone1"])):
        alarms = (await client.get("/api/v1/alarms", params={"state": state}, headers=READ)).json()
        assert [a["alarm_id"] for a in alarms] == expected


async def test_acknowledging_an_unknown_alarm_is_404(client: httpx.AsyncClient, history: InMemoryHistory) -> None:
    """An alarm the history never saw cannot be acknowledged, and nothing is sent."""
    assert (await client.post("/api/v1/alarms/nope/ack", json=ACK, headers=WRITE)).status_code == 404
    assert requests(history) == []


async def test_acknowledging_a_resolved_alarm_is_409(client: httpx.AsyncClient, history: InMemoryHistory) -> None:
    """A resolved alarm has nothing to acknowledge: 409 says so, and nothing is sent."""
    response = await client.post("/api/v1/alarms/gone1/ack", json=ACK, headers=WRITE)
    assert response.status_code == 409
    assert "resolved" in response.json()["detail"]
    assert requests(history) == []


async def test_acknowledging_twice_is_200_and_sends_nothing(
    client: httpx.AsyncClient, history: InMemoryHistory
) -> None:
    """An alarm acknowledged already answers 200 with its view, Jane still the one who acknowledged it."""
    response = await client.post("/api/v1/alarms/acked1/ack", json=ACK, headers=WRITE)
    assert response.status_code == 200
    assert response.json()["acknowledgement"]["by"] == JANE.by
    assert requests(history) == []


async def test_who_acknowledges_is_required(client: httpx.AsyncClient, history: InMemoryHistory) -> None:
    """A body without `by`, or with an empty one, is 422 and sends nothing."""
    for body in ({"comment": "no name"}, {"by": ""}):
        assert (await client.post("/api/v1/alarms/open1/ack", json=body, headers=WRITE)).status_code == 422
    assert requests(history) == []


async def test_an_unanswered_request_is_202_accepted(client: httpx.AsyncClient, history: InMemoryHistory) -> None:
    """An open alarm's request goes to the outbox; with no answer within the wait, 202 says it was accepted."""
    with capture_logs() as logs:
        response = await client.post("/api/v1/alarms/open1/ack", json=ACK, headers=WRITE)
    assert response.status_code == 202
    assert response.json() == {"alarm_id": "open1", "status": "accepted"}
    [request] = requests(history)
    assert (request.alarm_id, request.by, request.comment, request.via) == ("open1", *ACK.values(), "api")
    assert request.requested_at == NOW
    assert [e["event"] for e in logs if e["event"] == "acknowledgement_requested"] == ["acknowledgement_requested"]


async def test_a_double_click_sends_one_request(client: httpx.AsyncClient, history: InMemoryHistory) -> None:
    """The same person acknowledging with the same words twice makes one request (one event id)."""
    for _ in range(2):
        assert (await client.post("/api/v1/alarms/open1/ack", json=ACK, headers=WRITE)).status_code == 202
    assert len(requests(history)) == 1


async def test_an_answered_request_is_200_with_the_acknowledged_alarm(
    client: httpx.AsyncClient, history: InMemoryHistory
) -> None:
    """When the alarmer's `acknowledged` transition arrives within the wait, the answer is the acknowledged alarm."""
    alarmer = answer_requests(history)
    response = await client.post("/api/v1/alarms/open1/ack", json=ACK, headers=WRITE)
    await alarmer
    assert response.status_code == 200
    view = response.json()
    assert view["state"] == "acknowledged"
    assert (view["acknowledgement"]["by"], view["acknowledgement"]["via"]) == ("sam@example.com", "api")


async def test_a_reopened_alarm_can_be_acknowledged_again(client: httpx.AsyncClient, history: InMemoryHistory) -> None:
    """Once a worse level re-opens an acknowledged alarm, the same words from the same person are a new request."""
    alarmer = answer_requests(history)
    assert (await client.post("/api/v1/alarms/open1/ack", json=ACK, headers=WRITE)).status_code == 200
    await alarmer
    reopened = alarm("open1", "changed", "critical", NOW + timedelta(minutes=1), host="open.example")
    await history.record_alarm("open1-reopened", reopened)
    assert (await client.post("/api/v1/alarms/open1/ack", json=ACK, headers=WRITE)).status_code == 202
    assert [r.alarm_id for r in requests(history)] == ["open1", "open1"]
    assert len({e.id for e in history.outbox}) == 2
