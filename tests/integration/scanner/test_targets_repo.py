"""`TargetsRepository` on real PostgreSQL: sync, claiming due targets once, and the scan-request outbox."""

import asyncio
import datetime as dt

import asyncpg
import pytest

from services.scanner.adapters.targets_repo import TargetsRepository
from services.scanner.domain.schedule import next_due
from shared.events import CloudEvent, ScanRequested, Target

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
async def repo(pg_pool: asyncpg.Pool) -> TargetsRepository:
    """A migrated repository on a fresh database."""
    repository = TargetsRepository(pg_pool)
    assert (await repository.migrate())[:2] == ["000_common.sql", "001_init.sql"]
    return repository


def _targets(n: int) -> list[Target]:
    return [Target(host=f"host-{i}.example.test", port=443, interval_seconds=3600) for i in range(n)]


async def _outbox(pool: asyncpg.Pool) -> list[CloudEvent]:
    rows = await pool.fetch("SELECT event FROM scanner.outbox ORDER BY seq")
    return [CloudEvent.model_validate(r["event"]) for r in rows]


async def test_sync_adds_targets_due_now(repo: TargetsRepository, pg_pool: asyncpg.Pool) -> None:
    """New targets are stored enabled and due at once."""
    summary = await repo.sync(_targets(3), now=NOW)
    assert (summary.configured, summary.disabled) == (3, 0)
    rows = await pg_pool.fetch("SELECT key, enabled, next_due FROM scanner.targets ORDER BY key")
    assert [(r["key"], r["enabled"], r["next_due"]) for r in rows] == [
        (f"host-{i}.example.test:443", True, NOW) for i in range(3)
    ]


async def test_sync_disables_targets_no_longer_configured(repo: TargetsRepository, pg_pool: asyncpg.Pool) -> None:
    """A target dropped from the config is disabled, not deleted, and re-enabled when it comes back."""
    await repo.sync(_targets(3), now=NOW)
    summary = await repo.sync(_targets(1), now=NOW)
    assert (summary.configured, summary.disabled) == (1, 2)
    rows = await pg_pool.fetch("SELECT key, enabled FROM scanner.targets ORDER BY key")
    assert [(r["key"], r["enabled"]) for r in rows] == [
        ("host-0.example.test:443", True),
        ("host-1.example.test:443", False),
        ("host-2.example.test:443", False),
    ]
    await repo.sync(_targets(2), now=NOW)
    assert await pg_pool.fetchval("SELECT count(*) FROM scanner.targets WHERE enabled") == 2
    assert await repo.claim_due(NOW, 10) == _targets(2)


async def test_sync_updates_a_changed_target_and_pulls_in_a_shorter_interval(
    repo: TargetsRepository, pg_pool: asyncpg.Pool
) -> None:
    """Changed settings are stored; a shorter interval brings the next scan forward."""
    daily = Target(host="a.example.test", interval_seconds=86400)
    await repo.sync([daily], now=NOW)
    await repo.claim_due(NOW, 10)
    later = NOW + dt.timedelta(hours=1)
    quarter = daily.model_copy(update={"interval_seconds": 900})
    await repo.sync([quarter], now=later)
    row = await pg_pool.fetchrow("SELECT target, next_due FROM scanner.targets")
    assert row is not None
    assert row["target"]["interval_seconds"] == 900
    assert row["next_due"] == next_due(daily.key, 900, later)


async def test_claim_due_returns_each_due_target_once(repo: TargetsRepository, pg_pool: asyncpg.Pool) -> None:
    """Claiming moves `next_due` on, so the same targets are not claimed again until then."""
    targets = _targets(3)
    await repo.sync(targets, now=NOW)
    assert await repo.claim_due(NOW, 10) == targets
    assert await repo.claim_due(NOW, 10) == []
    rows = await pg_pool.fetch("SELECT key, next_due FROM scanner.targets ORDER BY key")
    assert [r["next_due"] for r in rows] == [next_due(t.key, 3600, NOW) for t in targets]
    again = max(r["next_due"] for r in rows)
    assert sorted(t.key for t in await repo.claim_due(again, 10)) == [t.key for t in targets]


async def test_claim_due_skips_targets_not_yet_due_and_disabled(repo: TargetsRepository) -> None:
    """Only enabled targets whose time has come are claimed, up to the limit."""
    await repo.sync(_targets(5), now=NOW)
    assert await repo.claim_due(NOW - dt.timedelta(seconds=1), 10) == []
    await repo.sync(_targets(4), now=NOW)
    assert len(await repo.claim_due(NOW, 3)) == 3
    assert len(await repo.claim_due(NOW, 3)) == 1


async def test_each_claim_enqueues_one_scan_request(repo: TargetsRepository, pg_pool: asyncpg.Pool) -> None:
    """The outbox gets exactly one `scan.requested.v1` per claimed target, with the slot it was due in."""
    targets = _targets(2)
    await repo.sync(targets, now=NOW)
    await repo.claim_due(NOW, 10)
    events = await _outbox(pg_pool)
    assert [e.routing_key for e in events] == ["scan.requested.v1"] * 2
    assert [e.source for e in events] == ["certmon/scanner"] * 2
    requests = [ScanRequested.model_validate(e.data) for e in events]
    assert [(r.target, r.due_at) for r in requests] == [(t, NOW) for t in targets]
    assert len({e.id for e in events}) == 2


async def test_concurrent_claimers_never_share_a_target(pg_pool: asyncpg.Pool, repo: TargetsRepository) -> None:
    """Two replicas claiming in parallel split the due targets between them, none twice."""
    targets = _targets(40)
    await repo.sync(targets, now=NOW)
    other = TargetsRepository(pg_pool)

    async def claim_all(r: TargetsRepository) -> list[str]:
        keys: list[str] = []
        while batch := await r.claim_due(NOW, 5):
            keys += [t.key for t in batch]
            await asyncio.sleep(0)
        return keys

    first, second = await asyncio.gather(claim_all(repo), claim_all(other))
    assert set(first).isdisjoint(second)
    assert sorted(first + second) == sorted(t.key for t in targets)
    assert await pg_pool.fetchval("SELECT count(*) FROM scanner.outbox") == 40


async def test_make_all_due_brings_every_enabled_target_forward(repo: TargetsRepository) -> None:
    """`make_all_due` makes already-claimed enabled targets claimable again."""
    await repo.sync(_targets(3), now=NOW)
    await repo.claim_due(NOW, 10)
    later = NOW + dt.timedelta(minutes=1)
    assert await repo.make_all_due(later) == 3
    assert len(await repo.claim_due(later, 10)) == 3
