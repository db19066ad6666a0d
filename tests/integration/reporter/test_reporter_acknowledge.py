"""Acknowledging through the reporter on PostgreSQL: the request leaves through the outbox, and the alarmer's
answer, consumed from the bus, is what the API returns (the outcomes' rules are in tests/unit/reporter)."""

import asyncio
from datetime import timedelta

import asyncpg
import httpx

from services.reporter.bootstrap import ReporterService
from shared.broker import InMemoryBus
from shared.events import Acknowledgement, AcknowledgementRequested, CloudEvent, make_event
from tests.unit.reporter.reporter_factories import NOW, alarm

#: A queue where the alarmer would take acknowledge requests.
REQUESTS = "test.reporter.ack-requests"
SOURCE = "certmon/test"


async def play_the_alarmer(bus: InMemoryBus) -> AcknowledgementRequested:
    """Wait for the relayed request, then publish the `alarm.acknowledged.v1` the alarmer would."""
    async with asyncio.timeout(5):
        while not bus.pending(REQUESTS):
            await asyncio.sleep(0.02)
    [command] = bus.pending(REQUESTS)
    request = AcknowledgementRequested.model_validate(command.data)
    ack = Acknowledgement(by=request.by, at=NOW, comment=request.comment, via=request.via)
    acknowledged = alarm(request.alarm_id, "acknowledged", "critical", NOW, acknowledgement=ack, cause=request.by)
    await bus.publish(make_event("alarm.acknowledged.v1", acknowledged, source=SOURCE))
    return request


async def test_an_acknowledge_request_is_written_to_the_outbox_and_answered(
    reporter: ReporterService, bus: InMemoryBus, pg_pool: asyncpg.Pool
) -> None:
    """POST ack writes one outbox row, the relay publishes it, and the alarmer's answer makes the response 200."""
    bus.declare(REQUESTS, ["acknowledgement.requested.v1"])
    raised = alarm("a1", "raised", "critical", NOW - timedelta(hours=1))
    await bus.publish(make_event("alarm.raised.v1", raised, source=SOURCE))
    await bus.drain(10)
    alarmer = asyncio.create_task(play_the_alarmer(bus))
    transport = httpx.ASGITransport(app=reporter.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://reporter", timeout=10) as client:
        response = await client.post("/api/v1/alarms/a1/ack", json={"by": "jane@example.com", "comment": "on it"})
    request = await alarmer
    assert response.status_code == 200
    assert response.json()["acknowledgement"]["by"] == "jane@example.com"
    assert (request.alarm_id, request.by, request.comment, request.via) == ("a1", "jane@example.com", "on it", "api")
    rows = await pg_pool.fetch('SELECT event, published_at FROM "reporter".outbox ORDER BY seq')
    assert len(rows) == 1
    command = CloudEvent.model_validate(rows[0]["event"])
    assert command.routing_key == "acknowledgement.requested.v1"
    assert command.data["alarm_id"] == "a1"
    assert rows[0]["published_at"] is not None
