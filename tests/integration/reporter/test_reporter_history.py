"""Consuming events into the PostgreSQL history through the bus: each stored once, redeliveries ignored, malformed
events dead-lettered (the handlers' rules are in tests/unit/reporter, the history's in test_history_contract)."""

from datetime import timedelta

import asyncpg

from services.reporter.bootstrap import ReporterService
from services.reporter.handlers import QUEUE
from shared.broker import InMemoryBus
from shared.events import CloudEvent, NotificationResult, make_event
from tests.unit.reporter.reporter_factories import NOW, alarm, evaluation

SOURCE = "certmon/test"


async def count(pool: asyncpg.Pool, table: str) -> int:
    """Rows in one of the reporter's tables."""
    value: int = await pool.fetchval(f'SELECT count(*) FROM "reporter".{table}')
    return value


async def deliver(bus: InMemoryBus, *events: CloudEvent) -> None:
    """Publish events and wait until the reporter has handled them."""
    for event in events:
        await bus.publish(event)
    await bus.drain(10)


async def test_evaluation_redelivered_is_stored_once(
    reporter: ReporterService, bus: InMemoryBus, pg_pool: asyncpg.Pool
) -> None:
    """The same `certificate.evaluated.v1` delivered three times leaves one evaluation row."""
    event = make_event("certificate.evaluated.v1", evaluation("a.example", days=10), source=SOURCE)
    await deliver(bus, event, event, event)
    assert await count(pg_pool, "evaluations") == 1
    assert [e.target_key for e in await reporter.history.latest()] == ["a.example:443"]
    assert bus.dead_letters == []


async def test_alarm_and_notification_events_are_stored_once(
    reporter: ReporterService, bus: InMemoryBus, pg_pool: asyncpg.Pool
) -> None:
    """Alarm transitions and delivery outcomes are kept once each, with the delivery's success flag."""
    raised = make_event("alarm.raised.v1", alarm("a1", "raised", "warning", NOW), source=SOURCE)
    resolved = make_event("alarm.resolved.v1", alarm("a1", "resolved", "ok", NOW + timedelta(hours=1)), source=SOURCE)
    sent = NotificationResult(
        alarm_id="a1", alarm_event_id=raised.id, channel="email", recipient="ops@example.com", attempt=1, at=NOW
    )
    failed = sent.model_copy(update={"channel": "snmp", "recipient": "noc", "error": "timeout"})
    await deliver(
        bus,
        raised,
        raised,
        resolved,
        make_event("notification.sent.v1", sent, source=SOURCE),
        make_event("notification.failed.v1", failed, source=SOURCE),
    )
    assert await count(pg_pool, "alarm_events") == 2
    assert sorted((n.channel, n.ok) for n in await reporter.history.notifications(["a1"])) == [
        ("email", True),
        ("snmp", False),
    ]


async def test_malformed_event_is_dead_lettered_not_stored(
    reporter: ReporterService, bus: InMemoryBus, pg_pool: asyncpg.Pool
) -> None:
    """An evaluated event whose data is not an evaluation is rejected until it is dead-lettered."""
    good = make_event("certificate.evaluated.v1", evaluation("a.example", days=1), source=SOURCE)
    bad = CloudEvent.model_validate({**good.model_dump(), "id": "broken", "data": {"target_key": 42}})
    await deliver(bus, bad)
    assert [(queue, e.id) for queue, e in bus.dead_letters] == [(QUEUE, "broken")]
    assert await count(pg_pool, "evaluations") == 0
