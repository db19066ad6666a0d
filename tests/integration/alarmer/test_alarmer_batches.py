"""The evaluation handler's batches on PostgreSQL: a batch has the effect of its messages one by one, and
replicas handling batches over the same targets at once never deadlock. (The same cases on the in-memory store:
`tests/unit/alarmer/test_alarmer_batches.py`.)"""

import asyncio

import asyncpg
import pytest

from services.alarmer.adapters.repository import SCHEMA, PostgresAlarmStore
from services.alarmer.handlers import EvaluationHandler
from services.alarmer.ports import TargetHealth
from shared.broker import InMemoryBus
from shared.events import CloudEvent
from shared.outbox import OutboxRelay
from tests.support.alarms import ALARMER_CONFIG, NOW, WITHIN_30, evaluation, payloads
from tests.unit.alarmer.batch_scenario import (
    BATCH_TRANSITIONS,
    Outcome,
    evaluated,
    in_batches,
    one_by_one,
    outcome_of,
    rounds,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(pg_pool: asyncpg.Pool) -> PostgresAlarmStore:
    """The alarm store on a fresh database (its relay never started: tests read the outbox table)."""
    store = PostgresAlarmStore(pg_pool, OutboxRelay(pg_pool, SCHEMA, InMemoryBus()))
    await store.migrate()
    return store


def handler_on(store: PostgresAlarmStore) -> EvaluationHandler:
    """The handler on `store`, the test config and a stopped clock."""
    return EvaluationHandler(store=store, config=ALARMER_CONFIG, clock=lambda: NOW)


async def outbox(pool: asyncpg.Pool) -> list[CloudEvent]:
    """The alarm events committed units of work queued, in order."""
    rows = await pool.fetch(f"SELECT event FROM {SCHEMA}.outbox ORDER BY seq")
    return [CloudEvent.model_validate(row["event"]) for row in rows]


async def test_a_batch_has_the_effect_of_its_messages_one_by_one(
    store: PostgresAlarmStore, pg_pool: asyncpg.Pool
) -> None:
    """Redelivered and repeated ids, two evaluations of one target, stale evaluations: in PostgreSQL too, the batch
    leaves the alarm events, history, open alarms, health and claims that handling each message alone does."""
    deliveries = rounds()
    await one_by_one(handler_on(store), deliveries)
    alone: Outcome = await outcome_of(store, await outbox(pg_pool), deliveries)
    await pg_pool.execute(
        f"TRUNCATE {SCHEMA}.alarm_history, {SCHEMA}.alarms, {SCHEMA}.target_health, {SCHEMA}.outbox, "
        f"{SCHEMA}.processed_events"
    )

    await in_batches(handler_on(store), deliveries[:1])
    first = len(await outbox(pg_pool))
    await in_batches(handler_on(store), deliveries[1:])
    events = await outbox(pg_pool)
    assert await outcome_of(store, events, deliveries) == alone
    assert [(p.transition, p.key.target_key, p.level) for p in payloads(events[first:])] == BATCH_TRANSITIONS


async def test_concurrent_batches_over_the_same_targets_do_not_deadlock(
    store: PostgresAlarmStore, pg_pool: asyncpg.Pool
) -> None:
    """Two replicas' batches over overlapping targets, in opposite orders, run at once, round after round (the
    targets new, then known): both finish, and each target ends as its newest evaluation left it."""
    hosts = [f"host-{n:02d}.example.com" for n in range(30)]
    alarming, shared, healthy = hosts[:10], hosts[10:20], hosts[20:]
    replicas = handler_on(store), handler_on(store)
    for _ in range(3):
        warnings = [evaluated(evaluation(host, "a" * 64, WITHIN_30)) for host in alarming + shared]
        oks = [evaluated(evaluation(host)) for host in (shared + healthy)[::-1]]  # observed after the warnings
        await asyncio.wait_for(asyncio.gather(replicas[0].handle_batch(warnings), replicas[1].handle_batch(oks)), 20)

    newest = {message.payload.target_key: message.payload.observed_at for message in warnings + oks}
    async with store.unit_of_work() as uow:
        health = await uow.lock_target_healths(newest)
        open_alarms = await uow.open_alarms_by_target(newest)
    assert health == {key: TargetHealth(0, observed_at) for key, observed_at in newest.items()}
    assert {key for key, alarms in open_alarms.items() if alarms} == {f"{host}:443" for host in alarming}
    assert await pg_pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.processed_events") == 3 * 40
