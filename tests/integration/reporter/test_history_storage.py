"""What the PostgreSQL history stores: a row per change, not per evaluation; sightings counted under concurrency;
a batch's locks taken in target key order; the SQL sighting arithmetic equal to the domain's; the reporter's
retention loop on its injected clock."""

import asyncio
import random
from datetime import timedelta

import asyncpg

from services.reporter.adapters.history import History
from services.reporter.bootstrap import bootstrap
from services.reporter.domain.sightings import Run
from shared.broker import InMemoryBus
from shared.config import CertmonConfig
from shared.settings import Settings
from tests.integration.reporter.test_history_batch_contract import of_host
from tests.integration.reporter.test_history_runs_contract import DAY, HOUR, seen
from tests.unit.reporter.reporter_factories import NOW, evaluation


async def rows(pool: asyncpg.Pool) -> list[tuple[str, int]]:
    """`(event_id, seen_count)` of every row of `evaluations`, oldest first."""
    found = await pool.fetch('SELECT event_id, seen_count FROM "reporter".evaluations ORDER BY evaluated_at')
    return [(r["event_id"], r["seen_count"]) for r in found]


async def migrated(pool: asyncpg.Pool) -> History:
    """The history on `pool`, migrated."""
    history = History(pool)
    await history.migrate()
    return history


async def test_unchanged_evaluations_take_one_row_and_a_change_another(pg_pool: asyncpg.Pool) -> None:
    """24 hourly evaluations are one row seen 24 times; a new address (anything but the timestamps) is a new row."""
    history = await migrated(pg_pool)
    for hour in range(24):
        await history.record_evaluation(f"e{hour}", seen(DAY + hour * HOUR))
    moved = seen(DAY + 24 * HOUR).model_copy(update={"address": "192.0.2.7"})
    await history.record_evaluation("moved", moved)
    assert await rows(pg_pool) == [("e0", 24), ("moved", 1)]


async def test_concurrent_sightings_are_all_counted(pg_pool: asyncpg.Pool) -> None:
    """Ten consumers recording sightings of one run at once: the run counts all of them, in one row."""
    history = await migrated(pg_pool)
    await history.record_evaluation("first", seen(DAY))
    await asyncio.gather(*(history.record_evaluation(f"e{n}", seen(DAY + n * HOUR)) for n in range(1, 11)))
    assert await rows(pg_pool) == [("first", 11)]
    [latest] = await history.latest()
    assert latest.evaluated_at == DAY + 10 * HOUR


async def test_a_batch_locks_the_runs_in_target_key_order(pg_pool: asyncpg.Pool) -> None:
    """A batch listing its targets backwards still locks their runs from the first target key on: held up at the
    sixth target, it holds the five before it and none after, so two batches never wait on each other in a cycle."""
    history = await migrated(pg_pool)
    hosts = [f"t{n}.example" for n in range(10)]
    await history.record_evaluations([(f"{host}-0", of_host(host, 0)) for host in hosts])
    runs = 'SELECT target_key FROM "reporter".evaluations'
    async with pg_pool.acquire() as holder, pg_pool.acquire() as prober, holder.transaction():
        await holder.execute(f"{runs} WHERE target_key = 't5.example:443' FOR UPDATE")
        batch = asyncio.create_task(history.record_evaluations([(f"{h}-1", of_host(h, 1)) for h in reversed(hosts)]))
        await asyncio.wait_for(waiting_on_a_lock(prober), timeout=5)
        async with prober.transaction():
            free = [r["target_key"] for r in await prober.fetch(f"{runs} ORDER BY 1 FOR UPDATE SKIP LOCKED")]
    assert free == [f"{host}:443" for host in hosts[6:]]
    assert await batch == [True] * 10


async def waiting_on_a_lock(conn: asyncpg.Connection) -> None:
    """Return once a session on `conn`'s database waits for a lock."""
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    while not await conn.fetchval(waiting):
        await asyncio.sleep(0.01)


async def test_a_row_from_before_the_runs_is_never_extended(pg_pool: asyncpg.Pool) -> None:
    """A row without a content hash (written before migration 005) is followed by a new row, not a sighting."""
    history = await migrated(pg_pool)
    await history.record_evaluation("old", seen(DAY))
    await pg_pool.execute('UPDATE "reporter".evaluations SET content_hash = NULL')
    await history.record_evaluation("new", seen(DAY + HOUR))
    assert await rows(pg_pool) == [("old", 1), ("new", 1)]


async def test_the_sql_sighting_arithmetic_is_the_domains(pg_pool: asyncpg.Pool) -> None:
    """`reporter.sighting_before` answers what `Run.sighting_before` does, on runs of regular sightings."""
    await migrated(pg_pool)
    rng = random.Random(5)
    for _ in range(200):
        step = timedelta(minutes=rng.choice((15, 60, 360, 1440)))
        count = rng.randint(1, 50)
        run = Run(DAY, DAY + step * (count - 1), count)
        moment = DAY + timedelta(minutes=rng.randint(-60, 50 * 1440))
        found = await pg_pool.fetchval(
            'SELECT "reporter".sighting_before($1, $2, $3, $4)',
            run.first,
            run.last if count > 1 else None,
            count,
            moment,
        )
        assert found == run.sighting_before(moment), (run, moment)


async def test_the_reporter_prunes_by_its_clock_and_configured_retention(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    """`history.retention` is what the reporter's retention loop keeps: at NOW + 100 days with 90 days, a target
    last seen at NOW goes, with the ids it claimed (older than the dedup window)."""
    config = CertmonConfig.model_validate({"history": {"retention": "90d"}})
    clock = [NOW]
    service = bootstrap(settings, config, bus=InMemoryBus(), pool=pg_pool, clock=lambda: clock[0], serve_http=False)
    await service.history.migrate()
    await service.history.record_evaluation("e1", evaluation("a.example", days=10, evaluated_at=NOW))
    assert await service.retention.run_once() == 0
    clock[0] = NOW + timedelta(days=100)
    assert await service.retention.run_once() == 3  # the latest row, the run and the claimed id
    assert await service.history.latest() == []
    assert await pg_pool.fetchval('SELECT count(*) FROM "reporter".processed_events') == 0
