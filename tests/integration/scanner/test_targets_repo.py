"""`TargetsRepository` on real PostgreSQL only: its migrations, `FOR UPDATE SKIP LOCKED` in `claim_due`, the
statements a claim and recorded observations take, and the scheduler's lateness on it.

What every `TargetStore` promises is in `test_target_store_contract.py`, run against this repository and its twin.
"""

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from services.scanner.adapters.targets_repo import TargetsRepository
from services.scanner.domain.schedule import next_due
from services.scanner.ports import ScanRecord
from services.scanner.service_layer.scheduler import Scheduler
from shared.db import create_pool
from shared.events import Observation, Target, make_event

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)


async def test_migrate_applies_each_file_once(pg_pool: asyncpg.Pool) -> None:
    """The first migrate applies the common tables and the scanner's files in order; a second applies nothing."""
    repo = TargetsRepository(pg_pool)
    assert await repo.migrate() == [
        "000_common.sql",
        "000_retention.sql",
        "001_init.sql",
        "002_discovery.sql",
        "003_pending_requests.sql",
    ]
    assert await repo.migrate() == []


async def test_a_claim_skips_rows_another_transaction_holds_instead_of_waiting(pg_pool: asyncpg.Pool) -> None:
    """While another replica's transaction locks a due target, a claim returns the others at once; that one later."""
    repo = TargetsRepository(pg_pool)
    await repo.migrate()
    held, free = Target(host="held.example.test"), Target(host="free.example.test")
    await repo.sync([held, free], now=NOW)
    async with pg_pool.acquire() as other, other.transaction():
        await other.execute("SELECT 1 FROM scanner.targets WHERE key = $1 FOR UPDATE", held.key)
        async with asyncio.timeout(5):
            assert [r.target for r in await repo.claim_due(NOW, 10)] == [free]
    assert [r.target for r in await repo.claim_due(NOW, 10)] == [held]
    assert await pg_pool.fetchval("SELECT count(*) FROM scanner.outbox") == 2


def hosts(n: int) -> list[Target]:
    """`n` endpoint targets scanned hourly."""
    return [Target(host=f"host-{i}.example.test", port=443, interval_seconds=3600) for i in range(n)]


@pytest.fixture
async def one_connection(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A migrated fresh database behind a pool of a single connection, so every statement is seen on it."""
    pool = await create_pool(database_url, min_size=1, max_size=1)
    await TargetsRepository(pool).migrate()
    try:
        yield pool
    finally:
        await pool.close()


async def statements(pool: asyncpg.Pool, call: Callable[[], Awaitable[object]]) -> list[str]:
    """The first word of each statement `call` sends through `pool`'s one connection (the pool's own reset on
    release left out)."""
    sent: list[str] = []
    async with pool.acquire() as conn:
        reset = conn.get_reset_query()
        conn.add_query_logger(lambda record: sent.append(record.query))
    await call()
    await asyncio.sleep(0)  # the loggers are called soon after each statement
    return [q.split()[0] for q in sent if q != reset]


async def test_a_claim_takes_two_statements_whatever_its_size(one_connection: asyncpg.Pool) -> None:
    """Claiming 300 targets is one claim and one outbox insert in a transaction, as claiming 3 is."""
    repo = TargetsRepository(one_connection)
    await repo.sync(hosts(306), now=NOW)
    await repo.claim_due(NOW, 3)  # asyncpg looks up the types of a statement's first use
    small = await statements(one_connection, lambda: repo.claim_due(NOW, 3))
    large = await statements(one_connection, lambda: repo.claim_due(NOW, 300))
    assert small == large == ["BEGIN;", "WITH", "INSERT", "COMMIT;"]
    assert await one_connection.fetchval("SELECT count(*) FROM scanner.outbox") == 306


async def test_recording_an_observation_takes_one_statement_and_the_outbox_insert(
    one_connection: asyncpg.Pool,
) -> None:
    """A first record is one statement plus the outbox insert in a transaction; a redelivery stops after one."""
    repo, (target,) = TargetsRepository(one_connection), hosts(1)
    await repo.sync([target], now=NOW)
    observation = Observation(target=target, observed_at=NOW)
    outgoing = make_event("certificate.observed.v1", observation, source="test", subject=target.key)

    async def record() -> bool:
        return await repo.record_observation("test", "request-1", observation, outgoing, due_at=NOW)

    await repo.record_observation("test", "request-0", observation, outgoing, due_at=NOW)  # types looked up
    assert await statements(one_connection, record) == ["BEGIN;", "WITH", "INSERT", "COMMIT;"]
    assert await statements(one_connection, record) == ["BEGIN;", "WITH", "COMMIT;"]
    assert await one_connection.fetchval("SELECT count(*) FROM scanner.outbox") == 1


async def test_recording_a_hundred_observations_takes_the_statements_of_one(one_connection: asyncpg.Pool) -> None:
    """A batch of 100 first records is one statement plus the outbox insert in a transaction, as one record is."""
    repo, targets = TargetsRepository(one_connection), hosts(100)
    await repo.sync(targets, now=NOW)

    def batch(name: str) -> list[ScanRecord]:
        records = []
        for i, target in enumerate(targets):
            observation = Observation(target=target, observed_at=NOW)
            outgoing = make_event("certificate.observed.v1", observation, source="test", subject=target.key)
            records.append(ScanRecord(f"{name}-{i}", NOW, observation, outgoing))
        return records

    await repo.record_observations("test", batch("warm-up"))  # types looked up
    recorded = batch("request")
    assert await statements(one_connection, lambda: repo.record_observations("test", recorded)) == [
        "BEGIN;",
        "WITH",
        "INSERT",
        "COMMIT;",
    ]
    assert await one_connection.fetchval("SELECT count(*) FROM scanner.outbox") == 200


async def test_two_claimers_split_two_thousand_targets_each_claimed_once(pg_pool: asyncpg.Pool) -> None:
    """Two replicas claiming batches of 100 at once claim every due target once, one pending request each."""
    targets = hosts(2000)
    await TargetsRepository(pg_pool).migrate()
    await TargetsRepository(pg_pool).sync(targets, now=NOW)

    async def claim_all() -> list[str]:
        repo, keys = TargetsRepository(pg_pool), []
        while batch := await repo.claim_due(NOW, 100):
            keys += [r.target.key for r in batch]
        return keys

    first, second = await asyncio.gather(claim_all(), claim_all())
    assert first and second
    assert sorted(first + second) == sorted(t.key for t in targets)
    assert await pg_pool.fetchval("SELECT count(DISTINCT event_id) FROM scanner.outbox") == 2000
    assert await pg_pool.fetchval("SELECT count(*) FROM scanner.targets WHERE pending_due_at = $1", NOW) == 2000


async def test_the_scheduler_records_how_late_it_claimed_each_target(pg_pool: asyncpg.Pool) -> None:
    """Targets due at NOW claimed 45 s later: each counts 45 s in the lateness histogram, and the tick logs it."""
    repo = TargetsRepository(pg_pool)
    await repo.migrate()
    await repo.sync(hosts(3), now=NOW)
    late = NOW + dt.timedelta(seconds=45)
    scheduler = Scheduler(repo, on_enqueued=lambda: None, clock=lambda: late, tick_seconds=60)
    count = REGISTRY.get_sample_value("certmon_schedule_lateness_seconds_count") or 0.0
    total = REGISTRY.get_sample_value("certmon_schedule_lateness_seconds_sum") or 0.0
    with capture_logs() as logs:
        assert await scheduler.tick() == 3
    assert REGISTRY.get_sample_value("certmon_schedule_lateness_seconds_count") == count + 3
    assert REGISTRY.get_sample_value("certmon_schedule_lateness_seconds_sum") == pytest.approx(total + 135)
    assert [(e["event"], e["count"], e["worst_lateness_seconds"]) for e in logs] == [("scans_scheduled", 3, 45.0)]


async def test_the_claim_reschedules_each_target_exactly_as_the_domain_does(pg_pool: asyncpg.Pool) -> None:
    """The due time the claim computes in SQL is `domain.schedule.next_due` to the microsecond, for intervals
    whose jitter is a share of the interval and for those capped at 10 minutes."""
    repo = TargetsRepository(pg_pool)
    await repo.migrate()
    targets = [Target(host=f"h{i}.example.test", interval_seconds=(60, 3600, 86400, 7)[i % 4]) for i in range(200)]
    await repo.sync(targets, now=NOW)
    claimed_at = NOW + dt.timedelta(seconds=1, microseconds=123457)
    assert len(await repo.claim_due(claimed_at, 500)) == 200
    rows = await pg_pool.fetch("SELECT key, next_due FROM scanner.targets")
    assert {r["key"]: r["next_due"] for r in rows} == {
        t.key: next_due(t.key, t.interval_seconds, claimed_at) for t in targets
    }
