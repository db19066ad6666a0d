"""Reminders and acknowledgements on real PostgreSQL: sweeps of replicas sharing one database send each reminder
once, the schedule survives a restart, and acknowledgement requests arrive through the bus."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from services.alarmer.adapters.repository import SCHEMA, PostgresAlarmStore
from services.alarmer.bootstrap import AlarmerService, bootstrap
from services.alarmer.service_layer.reminders import ReminderSweep
from shared.broker import InMemoryBus
from shared.config import parse_config
from shared.db import create_pool
from shared.events import CloudEvent, make_event
from shared.outbox import OutboxRelay
from shared.settings import Settings
from tests.support.alarms import (
    ALARMER_CONFIG,
    NOW,
    WITHIN_7,
    ManualClock,
    acknowledgement_request,
    build_alarm,
    evaluation,
    payloads,
)

pytestmark = pytest.mark.integration

ALARMS_QUEUE = "test.alarmer.alarms"
#: Critical alarms are reminded every 5 seconds: the shortest cadence the sweep must keep.
FAST = parse_config(
    {**ALARMER_CONFIG.model_dump(mode="json", exclude_defaults=True), "defaults": {"reminders": {"critical": "5s"}}}
)


async def seed_due_alarms(pool: asyncpg.Pool, count: int) -> None:
    """`count` open critical alarms on as many targets, each with a reminder due at NOW."""
    store = PostgresAlarmStore(pool, OutboxRelay(pool, SCHEMA, InMemoryBus()))
    await store.migrate()
    async with store.unit_of_work() as uow:
        for i in range(count):
            event = build_alarm(
                alarm_id=f"00000000-0000-0000-0000-{i:012d}",
                key=build_alarm().key.model_copy(update={"target_key": f"h{i}.example.com:443"}),
                evaluation_id=f"ev-{i}",
                next_reminder_at=NOW,
            )
            await uow.record_transition(event, at=NOW - timedelta(days=1), cause="c")


async def test_two_replicas_sweeping_one_database_send_each_reminder_once(database_url: str) -> None:
    """Two stores on their own pools sweep the same due alarms at once, in small batches: each is reminded once."""
    pools = [await create_pool(database_url, max_size=3) for _ in range(2)]
    try:
        await seed_due_alarms(pools[0], 200)
        sweeps = [
            ReminderSweep(
                PostgresAlarmStore(pool, OutboxRelay(pool, SCHEMA, InMemoryBus())),
                FAST,
                lambda: NOW,
                batch_size=7,
            )
            for pool in pools
        ]
        sent = await asyncio.gather(*(sweep.sweep() for sweep in sweeps))
        rows = await pools[0].fetch(
            f"SELECT event->>'subject' AS alarm_id, count(*) AS n FROM {SCHEMA}.outbox "
            "WHERE event->>'type' = 'io.certmon.alarm.reminded.v1' GROUP BY 1"
        )
        history = await pools[0].fetchval(f"SELECT count(*) FROM {SCHEMA}.alarm_history WHERE transition = 'reminded'")
    finally:
        for pool in pools:
            await pool.close()
    assert sum(sent) == 200 and all(sent), sent  # both replicas took part
    assert len(rows) == 200 and {row["n"] for row in rows} == {1}
    assert history == 200


async def start(pool: asyncpg.Pool, bus: InMemoryBus, clock: ManualClock) -> AlarmerService:
    """The alarmer wired by its bootstrap, reminders every 5 s for critical alarms, its loops checking often."""
    service = bootstrap(
        Settings.model_construct(),
        FAST,
        bus=bus,
        pool=pool,
        clock=clock,
        outbox_poll_seconds=0.05,
        reminder_min_delay=0.05,
        reminder_max_delay=0.2,
    )
    await service.start()
    return service


@pytest.fixture
async def bus() -> AsyncIterator[InMemoryBus]:
    """An in-memory bus with a queue catching every alarm event."""
    bus = InMemoryBus()
    await bus.start()
    bus.declare(ALARMS_QUEUE, ["alarm.#"])
    yield bus
    await bus.close()


async def published(bus: InMemoryBus, count: int) -> list[CloudEvent]:
    """Wait until `count` alarm events were published, then return them."""
    for _ in range(300):
        events = bus.pending(ALARMS_QUEUE)
        if len(events) >= count:
            return events
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(bus.pending(ALARMS_QUEUE))} alarm events published, expected {count}")


async def test_reminders_survive_a_restart_and_an_acknowledgement_silences_them(
    pg_pool: asyncpg.Pool, bus: InMemoryBus
) -> None:
    """Raised, then (after a restart) reminded at its 5 s cadence, then acknowledged through the bus: no more."""
    clock = ManualClock()
    service = await start(pg_pool, bus, clock)
    await bus.publish(
        make_event("certificate.evaluated.v1", evaluation("blog.example.com", "a" * 64, WITHIN_7), source="t")
    )
    await bus.drain()
    [raised] = payloads(await published(bus, 1))
    assert raised.next_reminder_at == NOW + timedelta(seconds=5)
    await service.stop()

    clock.advance(seconds=5)
    service = await start(pg_pool, bus, clock)  # only PostgreSQL remembers the due time
    try:
        reminder = payloads(await published(bus, 2))[1]
        assert (reminder.transition, reminder.reminders_sent) == ("reminded", 1)

        await bus.publish(acknowledgement_request(raised.alarm_id, comment="on it"))
        await bus.drain()
        acked = payloads(await published(bus, 3))[2]
        assert (acked.transition, acked.state, acked.cause) == (
            "acknowledged",
            "acknowledged",
            "acknowledged by alice@example.com via api: on it",
        )
        clock.advance(seconds=60)
        await asyncio.sleep(0.5)  # several sweeps
        assert len(bus.pending(ALARMS_QUEUE)) == 3
    finally:
        await service.stop()
    state = await pg_pool.fetchrow("SELECT state, next_reminder_at FROM alarmer.alarms WHERE id = $1", raised.alarm_id)
    assert dict(state) == {"state": "acknowledged", "next_reminder_at": None}
