"""`TargetsRepository` on real PostgreSQL only: its migrations, and `FOR UPDATE SKIP LOCKED` between replicas.

What every `TargetStore` promises is in `test_target_store_contract.py`, run against this repository and its twin.
"""

import asyncio
import datetime as dt

import asyncpg

from services.scanner.adapters.targets_repo import TargetsRepository
from shared.db import create_pool
from shared.events import Target

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)


async def test_migrate_applies_each_file_once(pg_pool: asyncpg.Pool) -> None:
    """The first migrate applies the common tables and the scanner's files in order; a second applies nothing."""
    repo = TargetsRepository(pg_pool)
    assert await repo.migrate() == ["000_common.sql", "001_init.sql", "002_discovery.sql"]
    assert await repo.migrate() == []


async def test_replicas_on_their_own_pools_never_share_a_target(pg_pool: asyncpg.Pool, database_url: str) -> None:
    """Two replicas, each with its own connection pool, claiming in parallel split the due targets, none twice."""
    repo = TargetsRepository(pg_pool)
    await repo.migrate()
    targets = [Target(host=f"host-{i}.example.test", interval_seconds=3600) for i in range(40)]
    await repo.sync(targets, now=NOW)

    async def claim_all(replica: TargetsRepository) -> list[str]:
        keys: list[str] = []
        while batch := await replica.claim_due(NOW, 5):
            keys += [t.key for t in batch]
            await asyncio.sleep(0)
        return keys

    other_pool = await create_pool(database_url, max_size=5)
    try:
        first, second = await asyncio.gather(claim_all(repo), claim_all(TargetsRepository(other_pool)))
    finally:
        await other_pool.close()
    assert set(first).isdisjoint(second)
    assert sorted(first + second) == sorted(t.key for t in targets)
    assert await pg_pool.fetchval("SELECT count(*) FROM scanner.outbox") == 40
