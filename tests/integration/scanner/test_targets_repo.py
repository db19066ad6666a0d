"""`TargetsRepository` on real PostgreSQL only: its migrations, and `FOR UPDATE SKIP LOCKED` in `claim_due`.

What every `TargetStore` promises is in `test_target_store_contract.py`, run against this repository and its twin.
"""

import asyncio
import datetime as dt

import asyncpg

from services.scanner.adapters.targets_repo import TargetsRepository
from shared.events import Target

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)


async def test_migrate_applies_each_file_once(pg_pool: asyncpg.Pool) -> None:
    """The first migrate applies the common tables and the scanner's files in order; a second applies nothing."""
    repo = TargetsRepository(pg_pool)
    assert await repo.migrate() == ["000_common.sql", "000_retention.sql", "001_init.sql", "002_discovery.sql"]
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
            assert await repo.claim_due(NOW, 10) == [free]
    assert await repo.claim_due(NOW, 10) == [held]
    assert await pg_pool.fetchval("SELECT count(*) FROM scanner.outbox") == 2
