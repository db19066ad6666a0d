"""The services as separate processes, as an operator runs them, through a broker and a database that go away and
come back: started while the broker is down they wait for it; after a broker restart and after a database
restart every target is observed again within 15 seconds, every outbox drains, nothing is dead-lettered, and
every event written to an outbox reaches the broker, those queued during the outage in the order they were
written."""

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import asyncpg
import pytest

from tests.support.pki import make_ca, make_leaf, write_chain
from tests.support.postgres_node import PostgresNode, postgres_available, postgres_node
from tests.support.rabbitmq_node import RabbitNode, rabbitmq_available
from tests.support.service_processes import ServiceProcesses, outbox_rows
from tests.support.tls_server import server_context, tls_server

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not (rabbitmq_available() and postgres_available()), reason="needs Debian's rabbitmq-server and postgresql"
    ),
]

DAY = dt.timedelta(days=1)
#: Two scanners, as a scaled deployment runs them; one of each other service.
PROCESSES = ("reporter", "notifier", "alarmer", "evaluator", "scanner", "scanner")
RECOVERY_SECONDS = 15.0


@pytest.fixture
def rabbit(tmp_path: Path) -> Iterator[RabbitNode]:
    """A RabbitMQ node of this test's own (started by the test)."""
    node = RabbitNode(tmp_path / "rabbitmq")
    try:
        yield node
    finally:
        node.stop()
        shutil.rmtree(tmp_path / "rabbitmq", ignore_errors=True)


@pytest.fixture
def postgres() -> Iterator[PostgresNode]:
    """A started PostgreSQL cluster of this test's own."""
    with postgres_node() as node:
        yield node


@contextlib.asynccontextmanager
async def estate(directory: Path) -> AsyncIterator[list[str]]:
    """Three certificate files and one TLS endpoint; yields the `certmon.yaml` target entries."""
    now = dt.datetime.now(dt.UTC)
    ca = make_ca("outage CA", not_before=now - 100 * DAY)
    entries = []
    for index in range(3):
        leaf = make_leaf(ca, [f"file{index}.outage.test"], not_after=now + (20 + index) * DAY)
        cert, _ = write_chain(directory, f"file{index}", leaf)
        entries.append(f"{{file: {cert}, interval: 3s}}")
    cert, key = write_chain(directory, "tls", make_leaf(ca, ["127.0.0.1"], not_after=now + 60 * DAY))
    async with tls_server(server_context(cert, key)) as port:
        entries.append(f"{{host: 127.0.0.1, port: {port}, interval: 3s}}")
        yield entries


async def latest_evaluations(url: str) -> dict[str, dt.datetime]:
    """Each target's newest evaluation time as the reporter stored it ({} while the database is away)."""
    try:
        conn = await asyncpg.connect(url, timeout=2)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return {}
    try:
        # A row is a run of unchanged evaluations: its newest is the last sighting (null while seen once).
        rows = await conn.fetch(
            "SELECT target_key, max(coalesce(last_seen_at, evaluated_at)) AS at FROM reporter.evaluations GROUP BY 1"
        )
    except asyncpg.PostgresError:
        return {}
    finally:
        await conn.close()
    return {row["target_key"]: row["at"] for row in rows}


async def wait_for_observations(url: str, targets: int, since: dt.datetime, services: ServiceProcesses) -> float:
    """Seconds until every target has an evaluation newer than `since`; fails after RECOVERY_SECONDS."""
    started = time.monotonic()
    while True:
        latest = await latest_evaluations(url)
        fresh = [key for key, at in latest.items() if at > since]
        if len(fresh) == targets:
            return time.monotonic() - started
        if time.monotonic() - started > RECOVERY_SECONDS:
            pytest.fail(
                f"only {len(fresh)} of {targets} targets observed within {RECOVERY_SECONDS} s: {latest}\n"
                + services.logs()
            )
        await asyncio.sleep(0.25)


async def wait_for_drained_outboxes(url: str, services: ServiceProcesses) -> None:
    """Every outbox has published everything it holds, within RECOVERY_SECONDS."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    while (await outbox_rows(url))[1]:
        if time.monotonic() > deadline:
            pytest.fail(f"outboxes still hold {(await outbox_rows(url))[1]} events\n" + services.logs())
        await asyncio.sleep(0.25)


async def declare_tap(amqp_url: str) -> None:
    """A durable queue that keeps a copy of every event published on the exchange, to count them afterwards."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange("certmon.events", aio_pika.ExchangeType.TOPIC, durable=True)
        tap = await channel.declare_queue("test.tap", durable=True, arguments={"x-queue-type": "quorum"})
        await tap.bind(exchange, "#")


async def drain_queue(amqp_url: str, name: str) -> list[str]:
    """The message ids in a queue, in queue order, taking them off it."""
    connection = await aio_pika.connect(amqp_url)
    ids: list[str] = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            ids.append(str(message.message_id))
    return ids


async def test_services_wait_for_the_broker_and_survive_broker_and_database_restarts(
    tmp_path: Path, rabbit: RabbitNode, postgres: PostgresNode
) -> None:
    """Started with the broker down, every process waits (alive, unready) and becomes ready when it comes; after
    a broker restart and a database restart, each target is observed again within 15 s; the outboxes drain, the
    dead-letter queue stays empty, and every outbox event reached the broker (those queued while the broker was
    away in the order they were written: concurrent transactions otherwise commit out of sequence order)."""
    database_url = postgres.url
    await asyncio.to_thread(rabbit.start)
    await declare_tap(rabbit.url)  # before any service publishes
    await asyncio.to_thread(rabbit.stop)

    async with estate(tmp_path) as targets:
        config = tmp_path / "certmon.yaml"
        config.write_text("targets:\n" + "".join(f"  - {entry}\n" for entry in targets))
        env = {
            **os.environ,
            "CERTMON_AMQP_URL": rabbit.url,
            "CERTMON_DATABASE_URL": database_url,
            "CERTMON_CONFIG": str(config),
            "CERTMON_SCHEDULER_TICK_SECONDS": "1",
            "CERTMON_LOG_FORMAT": "json",
            "CERTMON_REPORTS_URL": str(tmp_path / "reports"),
        }
        env.pop("CERTMON_TEST_AMQP_URL", None)
        services = ServiceProcesses(tmp_path, env, PROCESSES)
        await services.start()
        try:
            # The broker is down: every process waits for it, alive and unready, logging each attempt.
            await services.wait_for_log("dependency_unavailable", seconds=60)
            assert services.running() == list(PROCESSES), services.logs()
            assert all(code in (0, 503) for code in await services.readiness())

            await asyncio.to_thread(rabbit.start)
            await services.wait_until_ready(30)
            await wait_for_observations(database_url, len(targets), dt.datetime.now(dt.UTC), services)

            # A broker restart: down for seven seconds, then observations resume within 15 s of it being back.
            await asyncio.to_thread(rabbit.stop)
            broker_down = dt.datetime.now(dt.UTC)
            await asyncio.sleep(7)
            await asyncio.to_thread(rabbit.start)
            broker_back = dt.datetime.now(dt.UTC)
            after_broker = await wait_for_observations(database_url, len(targets), broker_back, services)
            await wait_for_drained_outboxes(database_url, services)

            # A database restart: the same.
            await asyncio.to_thread(postgres.stop)
            await asyncio.sleep(5)
            await asyncio.to_thread(postgres.start)
            database_back = dt.datetime.now(dt.UTC)
            after_database = await wait_for_observations(database_url, len(targets), database_back, services)
            await wait_for_drained_outboxes(database_url, services)
            await services.wait_until_ready(RECOVERY_SECONDS)
            assert services.running() == list(PROCESSES), services.logs()
        finally:
            exit_codes = await services.stop()
        assert exit_codes == [0] * len(PROCESSES), services.logs()

    written, pending = await outbox_rows(database_url)
    assert pending == 0
    seen = await drain_queue(rabbit.url, "test.tap")
    position = {event_id: index for index, event_id in reversed(list(enumerate(seen)))}  # first time seen
    for schema, rows in written.items():
        assert {row["event_id"] for row in rows} <= set(position), f"an event of the {schema} outbox never arrived"
        backlog = [
            position[row["event_id"]]
            for row in rows
            if broker_down < row["created_at"] < broker_back - dt.timedelta(seconds=1)
            and row["published_at"] >= broker_back
        ]
        assert backlog == sorted(backlog), f"the {schema} outbox published its backlog out of order"
    # Something was written while the broker was away: a target whose last request was observed before the outage
    # is due again during it and requested once, no more (its request stays pending until observed), so the
    # backlog is a few rows; the order of a long one is tests/integration/shared/test_outbox_relay_rabbitmq.py's.
    assert sum(1 for row in written["scanner"] if broker_down < row["created_at"] < broker_back) >= 1
    assert await drain_queue(rabbit.url, "certmon.dead-letters") == [], services.logs()
    print(f"observations resumed {after_broker:.1f} s after the broker and {after_database:.1f} s after the database")
