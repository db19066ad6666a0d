"""Consuming events into history: each stored once, redeliveries ignored, the newest evaluation per target kept."""

import asyncio
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


async def test_latest_is_the_newest_evaluation_whatever_the_arrival_order(
    reporter: ReporterService, bus: InMemoryBus
) -> None:
    """A late-arriving older evaluation does not replace the newer one as the target's latest."""
    newer = evaluation("a.example", days=10, level="warning", evaluated_at=NOW)
    older = evaluation("a.example", days=11, level="ok", evaluated_at=NOW - timedelta(hours=1))
    other = evaluation("b.example", days=50, level="info")
    await deliver(
        bus,
        make_event("certificate.evaluated.v1", newer, source=SOURCE),
        make_event("certificate.evaluated.v1", other, source=SOURCE),
    )
    await deliver(bus, make_event("certificate.evaluated.v1", older, source=SOURCE))
    latest = {e.target_key: e.alarm.level for e in await reporter.history.latest()}
    assert latest == {"a.example:443": "warning", "b.example:443": "info"}
    assert newer.certificate is not None
    assert len(await reporter.history.evaluations_of(newer.certificate.fingerprint_sha256)) == 2


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


async def test_concurrent_redeliveries_store_once(
    reporter: ReporterService, bus: InMemoryBus, pg_pool: asyncpg.Pool
) -> None:
    """Competing consumers handling the same event at once still store it once."""
    event = make_event("alarm.raised.v1", alarm("a1", "raised", "critical", NOW), source=SOURCE)
    stored = await asyncio.gather(
        *(reporter.history.record_alarm(event.id, alarm("a1", "raised", "critical", NOW)) for _ in range(5))
    )
    assert sorted(stored) == [False, False, False, False, True]
    assert await count(pg_pool, "alarm_events") == 1
