"""Database plumbing against the real PostgreSQL: migrations, event claims and the transactional outbox."""

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest
from prometheus_client import REGISTRY

from shared.broker import InMemoryBus, PublishError
from shared.db import claim_event, claim_events, create_pool, migrate
from shared.events import CloudEvent, ScanRequested, Target, make_event
from shared.outbox import BATCH, IN_FLIGHT, OutboxRelay, enqueue, enqueue_many
from shared.transient import is_transient

MIGRATIONS = [("001_things.sql", "CREATE TABLE things (id int PRIMARY KEY);")]


def scan_event(host: str) -> CloudEvent:
    """A small valid event."""
    return make_event(
        "scan.requested.v1", ScanRequested(target=Target(host=host), due_at=datetime.now(UTC)), source="t"
    )


async def test_migrate_applies_common_and_service_tables_once(pg_pool: asyncpg.Pool) -> None:
    """The first run applies the common tables and the service's own; a second run applies nothing."""
    assert await migrate(pg_pool, "svc", MIGRATIONS) == ["000_common.sql", "000_retention.sql", "001_things.sql"]
    assert await migrate(pg_pool, "svc", MIGRATIONS) == []
    tables = {
        r["table_name"]
        for r in await pg_pool.fetch("SELECT table_name FROM information_schema.tables WHERE table_schema = 'svc'")
    }
    assert {"processed_events", "outbox", "things", "schema_migrations"} <= tables


async def test_concurrent_migrations_apply_each_file_once(pg_pool: asyncpg.Pool) -> None:
    """Replicas starting together do not race: exactly one of them applies the migrations."""
    results = await asyncio.gather(*(migrate(pg_pool, "race", MIGRATIONS) for _ in range(4)))
    assert sorted(len(r) for r in results) == [0, 0, 0, 3]


async def test_a_released_connection_keeps_its_session_and_loses_its_transaction(database_url: str) -> None:
    """Release sends no reset query (a session setting survives it), and an open transaction is still rolled back."""
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("SET application_name = 'kept'")
            await conn.execute("CREATE TEMP TABLE t (x int)")
            await conn.execute("BEGIN; INSERT INTO t VALUES (1)")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW application_name") == "kept"
            assert await conn.fetchval("SELECT count(*) FROM t") == 0
    finally:
        await pool.close()


async def test_a_statement_without_an_answer_fails_after_the_command_timeout_and_the_pool_goes_on(
    database_url: str,
) -> None:
    """A statement still unanswered after the pool's command timeout raises TimeoutError (which the dispatcher
    retries as a dependency away) instead of waiting forever, and the pool serves the next statement."""
    pool = await create_pool(database_url, min_size=1, max_size=1, command_timeout=0.5)
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError):
            await pool.fetchval("SELECT pg_sleep(30)")
        assert asyncio.get_running_loop().time() - started < 5
        assert is_transient(TimeoutError())
        assert await pool.fetchval("SELECT 1") == 1
    finally:
        await pool.close()


async def test_claim_event_is_true_once_per_consumer(pg_pool: asyncpg.Pool) -> None:
    """An event id is claimed once per consumer; a redelivery is recognised."""
    await migrate(pg_pool, "svc", [])
    async with pg_pool.acquire() as conn:
        assert await claim_event(conn, "svc", "e1", "handler") is True
        assert await claim_event(conn, "svc", "e1", "handler") is False
        assert await claim_event(conn, "svc", "e1", "other-handler") is True


async def test_claim_events_answers_as_claim_event_on_each_in_order(pg_pool: asyncpg.Pool) -> None:
    """Claiming several ids at once: an id claimed before, or earlier in the list, is a redelivery; another
    consumer's claims do not count."""
    await migrate(pg_pool, "svc", [])
    async with pg_pool.acquire() as conn:
        assert await claim_event(conn, "svc", "e1", "handler") is True
        assert await claim_event(conn, "svc", "e4", "other-handler") is True
        answers = await claim_events(conn, "svc", ["e3", "e1", "e2", "e3", "e4"], "handler")
        assert answers == [True, False, True, False, True]
        assert await claim_events(conn, "svc", [], "handler") == []
        assert await claim_event(conn, "svc", "e2", "handler") is False


async def test_outbox_publishes_committed_events_in_order_and_not_rolled_back_ones(pg_pool: asyncpg.Pool) -> None:
    """Events enqueued in a committed transaction are published in order; a rolled-back one never is."""
    await migrate(pg_pool, "svc", [])
    bus = InMemoryBus()
    bus.declare("q", ["scan.requested.v1"])
    sent = [scan_event(f"h{i}.example") for i in range(3)]
    async with pg_pool.acquire() as conn:
        async with conn.transaction():
            for event in sent:
                await enqueue(conn, "svc", event)
            await enqueue(conn, "svc", sent[0])  # a duplicate id is ignored
        try:
            async with conn.transaction():
                await enqueue(conn, "svc", scan_event("rolled-back.example"))
                raise RuntimeError("abort")
        except RuntimeError:
            pass
    relay = OutboxRelay(pg_pool, "svc", bus)
    assert await relay.flush() == 3
    assert [e.id for e in bus.pending("q")] == [e.id for e in sent]
    assert await relay.flush() == 0


async def test_events_enqueued_together_are_published_in_their_order_once_per_id(pg_pool: asyncpg.Pool) -> None:
    """One statement queues many events in the order given; ids queued before or repeated among them are ignored."""
    await migrate(pg_pool, "svc", [])
    bus = InMemoryBus()
    bus.declare("q", ["scan.requested.v1"])
    sent = [scan_event(f"h{i}.example") for i in range(4)]
    async with pg_pool.acquire() as conn, conn.transaction():
        await enqueue(conn, "svc", sent[1])
        await enqueue_many(conn, "svc", [])
        await enqueue_many(conn, "svc", [sent[2], sent[1], sent[3], sent[2]])
        await enqueue_many(conn, "svc", [sent[0]])
    assert await OutboxRelay(pg_pool, "svc", bus).flush() == 4
    assert [e.id for e in bus.pending("q")] == [e.id for e in (sent[1], sent[2], sent[3], sent[0])]


async def test_outbox_keeps_events_while_the_bus_refuses_them(pg_pool: asyncpg.Pool) -> None:
    """An unroutable publish leaves the row pending; it goes out once a queue exists."""
    await migrate(pg_pool, "svc", [])
    bus = InMemoryBus()
    async with pg_pool.acquire() as conn:
        await enqueue(conn, "svc", scan_event("later.example"))
    relay = OutboxRelay(pg_pool, "svc", bus, poll_seconds=0.05)
    await relay.start()
    await asyncio.sleep(0.2)
    bus.declare("q", ["scan.requested.v1"])
    async with asyncio.timeout(5):
        while not bus.pending("q"):
            await asyncio.sleep(0.05)
    await relay.stop()
    assert await pg_pool.fetchval("SELECT count(*) FROM svc.outbox WHERE published_at IS NULL") == 0


async def _enqueued(pool: asyncpg.Pool, count: int) -> list[CloudEvent]:
    """`count` events written to a fresh `svc` outbox, each in its own transaction, in order."""
    await migrate(pool, "svc", [])
    sent = [scan_event(f"h{i}.example") for i in range(count)]
    async with pool.acquire() as conn:
        for event in sent:
            await enqueue(conn, "svc", event)
    return sent


class _FlakyBus(InMemoryBus):
    """Refuses the publishes whose number is in `refuse` (1-based), the way a broker going away does."""

    def __init__(self, refuse: set[int], error: Exception) -> None:
        super().__init__()
        self.refuse, self.error, self.calls = refuse, error, 0

    async def publish(self, event: CloudEvent) -> None:
        self.calls += 1
        if self.calls in self.refuse:
            raise self.error
        await super().publish(event)


async def test_a_publish_failing_mid_batch_keeps_what_was_confirmed(pg_pool: asyncpg.Pool) -> None:
    """When the third publish of a batch fails while the others are in flight, every confirmed row is marked (none
    is sent again), the failed one waits for the next flush, and the failure is raised after the commit."""
    bus = _FlakyBus({3}, PublishError("not confirmed"))
    bus.declare("q", ["scan.requested.v1"])
    sent = await _enqueued(pg_pool, 5)
    relay = OutboxRelay(pg_pool, "svc", bus)
    with pytest.raises(PublishError, match="not confirmed"):
        await relay.flush()
    pending = await pg_pool.fetch("SELECT event_id FROM svc.outbox WHERE published_at IS NULL")
    assert [r["event_id"] for r in pending] == [sent[2].id]
    assert REGISTRY.get_sample_value("certmon_outbox_backlog", {"schema": "svc"}) == 1
    assert await relay.flush() == 1
    assert [e.id for e in bus.pending("q")] == [e.id for e in (*sent[:2], *sent[3:], sent[2])]
    assert REGISTRY.get_sample_value("certmon_outbox_backlog", {"schema": "svc"}) == 0


async def test_after_a_failed_publish_the_rest_of_the_batch_is_not_started(pg_pool: asyncpg.Pool) -> None:
    """Once a publish fails, the relay starts no more of its batch: only the window already in flight is
    confirmed, and the rows after it go out in order at the next flush."""
    bus = _FlakyBus({3}, PublishError("not confirmed"))
    bus.declare("q", ["scan.requested.v1"])
    sent = await _enqueued(pg_pool, IN_FLIGHT + 50)
    relay = OutboxRelay(pg_pool, "svc", bus)
    with pytest.raises(PublishError):
        await relay.flush()
    assert bus.calls == IN_FLIGHT
    assert await relay.flush() == 51
    expected = [*sent[:2], *sent[3:IN_FLIGHT], sent[2], *sent[IN_FLIGHT:]]
    assert [e.id for e in bus.pending("q")] == [e.id for e in expected]


async def test_the_relay_outlives_any_error_of_the_client(pg_pool: asyncpg.Pool) -> None:
    """A client error that is not a bus error (aio-pika raises RuntimeError on a channel closed while it
    reconnects) does not end the relay: it retries and publishes once the bus takes events again."""
    await migrate(pg_pool, "svc", [])
    bus = _FlakyBus({1, 2}, RuntimeError("channel closed"))
    bus.declare("q", ["scan.requested.v1"])
    async with pg_pool.acquire() as conn:
        await enqueue(conn, "svc", scan_event("after.example"))
    relay = OutboxRelay(pg_pool, "svc", bus, poll_seconds=0.05)
    await relay.start()
    async with asyncio.timeout(10):  # until marked published: a stop before that commit would send it again
        while await pg_pool.fetchval("SELECT count(*) FROM svc.outbox WHERE published_at IS NULL"):
            await asyncio.sleep(0.02)
    await relay.stop()
    assert bus.calls == 3
    assert len(bus.pending("q")) == 1


class _GaugeReadingBus(InMemoryBus):
    """Notes the backlog gauge of `svc` at each publish."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[float | None] = []

    async def publish(self, event: CloudEvent) -> None:
        self.seen.append(REGISTRY.get_sample_value("certmon_outbox_backlog", {"schema": "svc"}))
        await super().publish(event)


async def test_the_backlog_gauge_follows_a_long_drain(pg_pool: asyncpg.Pool) -> None:
    """While a backlog of several batches drains, the gauge is recounted between batches (here every poll interval
    of zero), and it reads zero once the outbox is empty."""
    bus = _GaugeReadingBus()
    bus.declare("q", ["scan.requested.v1"])
    await migrate(pg_pool, "svc", [])
    async with pg_pool.acquire() as conn:
        await enqueue_many(conn, "svc", [scan_event(f"h{i}.example") for i in range(2 * BATCH + 10)])
    assert await OutboxRelay(pg_pool, "svc", bus, poll_seconds=0).flush() == 2 * BATCH + 10
    assert [bus.seen[i] for i in (BATCH, 2 * BATCH)] == [BATCH + 10, 10]
    assert REGISTRY.get_sample_value("certmon_outbox_backlog", {"schema": "svc"}) == 0


async def test_replicas_publish_one_outbox_in_commit_order(pg_pool: asyncpg.Pool) -> None:
    """Two relays flushing the same outbox at once publish every event once, in the order they were written."""
    bus = InMemoryBus()
    bus.declare("q", ["scan.requested.v1"])
    sent = await _enqueued(pg_pool, 250)
    relays = [OutboxRelay(pg_pool, "svc", bus), OutboxRelay(pg_pool, "svc", bus)]
    while await pg_pool.fetchval("SELECT count(*) FROM svc.outbox WHERE published_at IS NULL"):
        await asyncio.gather(*(relay.flush() for relay in relays))
    assert [e.id for e in bus.pending("q")] == [e.id for e in sent]
