"""The alarmer end to end on real PostgreSQL and the in-memory bus: evaluated events in, alarm events out
through the outbox and its relay. (The handler's decisions are specified in `tests/unit/alarmer`, the store's
behaviour in `test_alarm_store_contract.py`.)"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import pytest

from services.alarmer.bootstrap import AlarmerService, bootstrap
from shared.broker import InMemoryBus
from shared.events import CloudEvent, Evaluation, make_event
from shared.settings import Settings
from tests.support.alarms import ALARMER_CONFIG, NOW, WITHIN_7, WITHIN_30, evaluation, payloads

pytestmark = pytest.mark.integration

ALARMS_QUEUE = "test.alarmer.alarms"


@dataclass
class Alarmer:
    """A running alarmer with the bus it listens on and a queue catching what it publishes."""

    bus: InMemoryBus
    service: AlarmerService
    pool: asyncpg.Pool

    async def feed(self, *evaluations: Evaluation | CloudEvent) -> list[CloudEvent]:
        """Publish evaluated events, wait until handled and relayed, and return the alarm events published."""
        before = len(self.bus.pending(ALARMS_QUEUE))
        for item in evaluations:
            event = (
                item
                if isinstance(item, CloudEvent)
                else make_event("certificate.evaluated.v1", item, source="certmon/evaluator")
            )
            await self.bus.publish(event)
        await self.bus.drain()
        await self.settle()
        return self.bus.pending(ALARMS_QUEUE)[before:]

    async def settle(self) -> None:
        """Wait until the outbox relay has published every committed row (woken by the commit: its poll is
        too slow to do it in time)."""
        async with self.pool.acquire() as conn:
            for _ in range(500):
                if not await conn.fetchval("SELECT count(*) FROM alarmer.outbox WHERE published_at IS NULL"):
                    return
                await asyncio.sleep(0.01)
        raise AssertionError("the outbox was not relayed")


@pytest.fixture
async def alarmer(pg_pool: asyncpg.Pool) -> AsyncIterator[Alarmer]:
    """The alarmer wired by its bootstrap on a fresh database and an in-memory bus."""
    bus = InMemoryBus(delivery_limit=2)  # a poison event is dead-lettered quickly
    await bus.start()
    bus.declare(ALARMS_QUEUE, ["alarm.#"])
    # Settings() warns under the installed pydantic-settings (secrets_dir_missing); the alarmer reads none of it.
    service = bootstrap(
        Settings.model_construct(), ALARMER_CONFIG, bus=bus, pool=pg_pool, clock=lambda: NOW, outbox_poll_seconds=60
    )
    await service.start()
    try:
        yield Alarmer(bus, service, pg_pool)
    finally:
        await service.stop()
        await bus.close()


async def test_alarm_lifecycle_is_published_and_kept_as_history(alarmer: Alarmer) -> None:
    """Warning raises, critical changes, ok resolves; each transition is relayed and kept in PostgreSQL."""
    host = "blog.example.com"
    warning, critical, ok = (
        evaluation(host, "a" * 64, WITHIN_30),
        evaluation(host, "a" * 64, WITHIN_7),
        evaluation(host),
    )
    events = [*await alarmer.feed(warning), *await alarmer.feed(critical), *await alarmer.feed(ok)]

    assert [e.type for e in events] == [
        "io.certmon.alarm.raised.v1",
        "io.certmon.alarm.changed.v1",
        "io.certmon.alarm.resolved.v1",
    ]
    raised, changed, resolved = payloads(events)
    assert raised.alarm_id == changed.alarm_id == resolved.alarm_id

    async with alarmer.service.store.unit_of_work() as uow:
        kept = await uow.history(raised.alarm_id)
    state = await alarmer.pool.fetchrow(
        "SELECT state, level, resolved_at FROM alarmer.alarms WHERE id = $1", raised.alarm_id
    )
    assert [(h.transition, h.from_level, h.to_level) for h in kept] == [
        ("raised", None, "warning"),
        ("changed", "warning", "critical"),
        ("resolved", "critical", "ok"),
    ]
    assert [h.evaluation_id for h in kept] == [p.evaluation_id for p in (raised, changed, resolved)]
    assert dict(state) == {"state": "resolved", "level": "ok", "resolved_at": NOW}


async def test_redelivered_evaluation_publishes_nothing_twice(alarmer: Alarmer) -> None:
    """The same evaluated event delivered twice (same id) yields one alarm event, one history row, one outbox row."""
    event = make_event(
        "certificate.evaluated.v1", evaluation("blog.example.com", "a" * 64, WITHIN_30), source="certmon/evaluator"
    )
    first = await alarmer.feed(event, event)
    again = await alarmer.feed(event)

    assert [e.type for e in first] == ["io.certmon.alarm.raised.v1"]
    assert again == []
    async with alarmer.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM alarmer.alarm_history") == 1
        assert await conn.fetchval("SELECT count(*) FROM alarmer.outbox") == 1


async def test_event_that_is_not_an_evaluation_is_dead_lettered(alarmer: Alarmer) -> None:
    """Data that is not an evaluation is rejected until the delivery limit, then dead-lettered, with no effect."""
    bad = CloudEvent(source="certmon/evaluator", type="io.certmon.certificate.evaluated.v1", data={"target": 1})
    assert await alarmer.feed(bad) == []
    assert [event.id for _, event in alarmer.bus.dead_letters] == [bad.id]


def test_bootstrap_requires_a_pool() -> None:
    """Alarm state lives in PostgreSQL, so an alarmer without a pool is refused at wiring time."""
    with pytest.raises(ValueError, match="pool"):
        bootstrap(Settings.model_construct(), ALARMER_CONFIG, bus=InMemoryBus(), pool=None)


async def test_the_alarmer_prunes_its_processed_ids_and_published_outbox_rows(alarmer: Alarmer) -> None:
    """The alarmer's retention deletes, by its clock, from its own schema the processed ids older than a week and
    the outbox rows published over a quarter of an hour ago; it keeps younger ids and unpublished rows."""
    await alarmer.service.retention.stop()  # the service's own loop would race this test's run
    for name, age in (("old", timedelta(days=8)), ("young", timedelta(days=6)), ("just", timedelta(minutes=5))):
        await alarmer.pool.execute(
            "INSERT INTO alarmer.processed_events(consumer, event_id, processed_at) VALUES ('t', $1, $2)",
            name,
            NOW - age,
        )
        await alarmer.pool.execute(
            "INSERT INTO alarmer.outbox(event_id, event, published_at) VALUES ($1, '{}', $2)", name, NOW - age
        )
    await alarmer.pool.execute("INSERT INTO alarmer.outbox(event_id, event) VALUES ('unpublished', '{}')")
    assert await alarmer.service.retention.run_once() == 3
    processed = await alarmer.pool.fetch(
        "SELECT event_id FROM alarmer.processed_events WHERE consumer = 't' ORDER BY 1"
    )
    outbox = await alarmer.pool.fetch(
        "SELECT event_id FROM alarmer.outbox WHERE event_id IN ('old', 'young', 'just', 'unpublished') ORDER BY 1"
    )
    assert [r["event_id"] for r in processed] == ["just", "young"]
    assert [r["event_id"] for r in outbox] == ["just", "unpublished"]
