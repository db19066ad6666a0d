"""Graceful drain: each service, run alone as `certmon <service>` on a RabbitMQ vhost and a PostgreSQL database of
its own, gets SIGTERM with work in flight. It answers not-ready, exits 0 within `CERTMON_DRAIN_SECONDS`, and loses
nothing: every event it was sent was handled (its effect is there) or is back in its queue, and every row of its
outbox is either in the broker or still waiting in the table, unpublished."""

import asyncio
import contextlib
import datetime as dt
import os
import secrets
import shutil
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import asyncpg
import httpx
import pytest

from benchmarks.pipeline.infra import Cleanup, create_vhost
from services.alarmer.handlers import EVALUATIONS_QUEUE
from services.evaluator.handlers import QUEUE as OBSERVATIONS_QUEUE
from services.notifier.handlers import QUEUE as ALARMS_QUEUE
from services.reporter.handlers import QUEUE as REPORTER_QUEUE
from services.scanner.handlers import QUEUE as SCAN_REQUESTS_QUEUE
from shared.broker.amqp import AmqpBus
from shared.events import CloudEvent, Observation, ObservationError, Target, derived_id, make_event
from tests.support.alarms import build_alarm, evaluation
from tests.support.service_processes import ServiceProcesses
from tests.support.services_under_test import port_open

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        shutil.which("rabbitmqctl") is None or not port_open(5672),
        reason="needs the local RabbitMQ and its rabbitmqctl (a vhost per test)",
    ),
]

#: The drain each process gets here; a scan in flight waits far longer (HANDSHAKE_SECONDS), so the drain ends it.
DRAIN_SECONDS = 5.0
HANDSHAKE_SECONDS = 60
#: Events sent to a consumer: more than it takes in before the signal, so some are in flight or still queued.
EVENTS = 600
TAP = "test.tap"


@pytest.fixture
def vhost() -> Iterator[str]:
    """A fresh vhost on the local RabbitMQ, deleted afterwards; yields its AMQP URL."""
    cleanup = Cleanup()
    try:
        yield create_vhost(f"certmon_drain_{uuid.uuid4().hex[:8]}", cleanup)
    finally:
        cleanup.run()


@pytest.fixture
async def blackhole() -> AsyncIterator[int]:
    """A port on 127.0.0.1 that accepts connections and never answers: a scan of it waits for its timeout."""

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def declare_tap(url: str) -> None:
    """A queue bound to every routing key: whatever the service publishes is routable, and kept for the checks."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange("certmon.events", aio_pika.ExchangeType.TOPIC, durable=True)
        tap = await channel.declare_queue(TAP, durable=True, arguments={"x-queue-type": "quorum"})
        await tap.bind(exchange, "#")


async def publish(url: str, events: list[CloudEvent]) -> None:
    """Publish `events` as the services do (persistent, confirmed)."""
    bus = AmqpBus(url)
    await bus.start()
    try:
        await asyncio.gather(*(bus.publish(event) for event in events))
    finally:
        await bus.close()


async def take_ids(url: str, queue: str) -> set[str]:
    """The message ids in `queue`, taking them off it."""
    connection = await aio_pika.connect(url)
    ids: set[str] = set()
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        while (message := await declared.get(fail=False, no_ack=True)) is not None:
            ids.add(str(message.message_id))
    return ids


async def fetch_ids(database_url: str, query: str) -> set[str]:
    """The first column of `query`'s rows."""
    conn = await asyncpg.connect(database_url)
    try:
        return {row[0] for row in await conn.fetch(query)}
    finally:
        await conn.close()


def observations() -> list[CloudEvent]:
    """Observations of unreachable targets, one per target."""
    now = dt.datetime.now(dt.UTC)
    return [
        make_event(
            "certificate.observed.v1",
            Observation(
                target=Target(host=f"host{i}.drain.test"),
                observed_at=now,
                error=ObservationError(kind="refused", message="connection refused"),
            ),
            source="test",
        )
        for i in range(EVENTS)
    ]


def evaluations() -> list[CloudEvent]:
    """Evaluations of as many targets."""
    return [
        make_event("certificate.evaluated.v1", evaluation(f"host{i}.drain.test"), source="test") for i in range(EVENTS)
    ]


def alarms() -> list[CloudEvent]:
    """Raised alarms, each of its own."""
    return [make_event("alarm.raised.v1", build_alarm(alarm_id=f"alarm-{i}"), source="test") for i in range(EVENTS)]


@dataclass(frozen=True)
class Case:
    """A service, the queue it consumes, and what it is sent (None: the scanner sends itself scan requests)."""

    service: str
    queue: str
    events: Callable[[], list[CloudEvent]] | None


CASES = [
    Case("scanner", SCAN_REQUESTS_QUEUE, None),
    Case("evaluator", OBSERVATIONS_QUEUE, observations),
    Case("alarmer", EVALUATIONS_QUEUE, evaluations),
    Case("notifier", ALARMS_QUEUE, alarms),
    Case("reporter", REPORTER_QUEUE, evaluations),
]


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float, what: str, logs: Callable[[], str]) -> None:
    """Wait until `check()` holds; fail with `what` and the process's log after `seconds`."""
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {seconds} s\n{logs()}")
        await asyncio.sleep(0.1)


async def ready_count(url: str, queue: str) -> int:
    """The ready messages of `queue` (a passive declare)."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0


async def unacknowledged(url: str, queue: str) -> int:
    """Messages of `queue` delivered and not yet acknowledged (rabbitmqctl; the management API is not enabled)."""
    vhost = url.rsplit("/", 1)[1]
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        "-q",
        "list_queues",
        "-p",
        vhost,
        "--no-table-headers",
        "name",
        "messages_unacknowledged",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    for line in out.decode().splitlines():
        name, _, count = line.partition("\t")
        if name == queue and count.strip().isdigit():
            return int(count)
    return 0


async def readiness_while_running(port: int, running: Callable[[], bool]) -> list[str]:
    """`/healthz/ready` polled until the process exits: each answer's status and checks."""
    answers = []
    async with httpx.AsyncClient(timeout=1) as client:
        while running():
            try:
                response = await client.get(f"http://127.0.0.1:{port}/healthz/ready")
                answers.append(f"{response.status_code} {response.text}")
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.02)
    return answers


@pytest.fixture
async def environment(tmp_path: Path, vhost: str, database_url: str, blackhole: int) -> AsyncIterator[dict[str, str]]:
    """What every `certmon <service>` here runs with: the vhost, the database, a config watching the blackhole."""
    config = tmp_path / "certmon.yaml"
    config.write_text(f"targets:\n  - {{host: 127.0.0.1, port: {blackhole}, interval: 1s}}\n")
    await declare_tap(vhost)
    env = {key: value for key, value in os.environ.items() if not key.startswith("CERTMON_")}
    yield env | {
        "CERTMON_AMQP_URL": vhost,
        "CERTMON_DATABASE_URL": database_url,
        "CERTMON_CONFIG": str(config),
        "CERTMON_DATA_DIR": str(tmp_path / "data"),
        "CERTMON_REPORTS_URL": str(tmp_path / "reports"),
        "CERTMON_LINK_SECRET": secrets.token_hex(32),
        "CERTMON_LOG_FORMAT": "json",
        "CERTMON_DRAIN_SECONDS": str(DRAIN_SECONDS),
        "CERTMON_HANDSHAKE_TIMEOUT": str(HANDSHAKE_SECONDS),
        "CERTMON_SCHEDULER_TICK_SECONDS": "0.5",
    }


@pytest.mark.parametrize("case", CASES, ids=[case.service for case in CASES])
async def test_a_service_drains_on_sigterm_and_loses_nothing(
    case: Case, tmp_path: Path, environment: dict[str, str], vhost: str, database_url: str
) -> None:
    """With work in flight, SIGTERM makes the service unready, and it exits 0 within the drain; every event sent
    to it is handled or back in its queue, and every outbox row published is in the broker."""
    services = ServiceProcesses(tmp_path, environment, [case.service])
    await services.start()
    try:
        await services.wait_until_ready(30)
        schema = None if case.service == "evaluator" else case.service
        # The scanner's scheduler requests scans of the blackhole itself; its handshake never comes.
        events = case.events() if case.events is not None else []
        if events:
            await publish(vhost, events)

        async def work_in_flight() -> bool:
            if schema is None:  # the evaluator keeps nothing: evaluations in the tap beside what was sent show it
                return await ready_count(vhost, TAP) > len(events)
            if case.events is None:
                return await unacknowledged(vhost, case.queue) > 0
            return bool(await fetch_ids(database_url, f"SELECT event_id FROM {schema}.processed_events LIMIT 1"))

        await eventually(work_in_flight, 20, f"{case.service} took no work", services.logs)

        slot = services.slots[0]
        readiness = asyncio.create_task(readiness_while_running(slot.port, lambda: slot.running))
        signalled = time.monotonic()
        code = await services.signal_one(0, signal.SIGTERM, wait=DRAIN_SECONDS + 10)
        took = time.monotonic() - signalled
        answers = await readiness
        assert code == 0, services.logs()
        assert took < DRAIN_SECONDS, f"took {took:.1f} s\n{services.logs()}"
        # Unready from the signal on (an answer sent before the process saw the signal may still say ready).
        stopping = [i for i, answer in enumerate(answers) if answer.startswith("503") and '"stopping"' in answer]
        assert stopping, answers[-5:]
        assert all(answer.startswith("503") for answer in answers[stopping[0] :]), answers

        # Nothing lost: each event sent is handled or back in its queue (a connection's unacknowledged messages
        # return as the broker notices it closed: checked until they are all accounted for).
        sent = {event.id for event in events} or await fetch_ids(
            database_url,
            "SELECT event_id FROM scanner.outbox WHERE published_at IS NOT NULL "
            "AND event->>'type' LIKE '%scan.requested.v1'",
        )
        assert sent, "the scheduler requested no scan"
        queued: set[str] = set()
        tapped: set[str] = set()

        async def accounted_for() -> bool:
            queued.update(await take_ids(vhost, case.queue))
            tapped.update(await take_ids(vhost, TAP))
            if schema is None:
                handled = {event_id for event_id in sent if derived_id(event_id, "evaluated") in tapped}
            else:
                handled = await fetch_ids(database_url, f"SELECT event_id FROM {schema}.processed_events")
            return sent <= handled | queued

        await eventually(accounted_for, 10, f"{case.service}: events neither handled nor queued", services.logs)
        if case.events is None:
            assert queued, "the scan in flight did not go back to its queue"
        if schema is not None:
            published = await fetch_ids(
                database_url, f"SELECT event_id FROM {schema}.outbox WHERE published_at IS NOT NULL"
            )
            assert published <= tapped, "an outbox row marked published never reached the broker"
    finally:
        await services.stop()
