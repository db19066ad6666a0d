"""The scan worker carries on: a hostile target costs one observation with its error, never the worker."""

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from services.scanner.bootstrap import bootstrap
from services.scanner.domain.limits import ProbeLimits
from shared.broker import InMemoryBus
from shared.config import parse_config
from shared.events import Observation, ScanRequested, Target, make_event
from shared.settings import Settings
from tests.integration.scanner.peers import stdlib_context
from tests.support.pki import make_ca, make_leaf
from tests.support.tls_server import raw_server, tls_server

OBSERVED = "test.hostile.observed"
LIMITS = ProbeLimits(connect_seconds=1, handshake_seconds=0.3, target_seconds=2)


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while await reader.read(4096):
            pass
    finally:
        writer.close()


@pytest.fixture
async def endpoints(tmp_path: Path) -> AsyncIterator[tuple[int, int]]:
    """A silent (hostile) TCP port and a healthy TLS port."""
    issuer = make_ca()
    ctx = stdlib_context(tmp_path, "ok", make_leaf(issuer, ["127.0.0.1"]), issuer)
    async with raw_server(_silent) as silent, tls_server(ctx) as healthy:
        yield silent, healthy


async def test_hostile_first_target_does_not_stop_the_next_ones(
    endpoints: tuple[int, int], pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """Three requests on a one-at-a-time worker, the first to a silent server: all three observations publish."""
    silent, healthy = endpoints
    (tmp_path / "leaf.pem").write_bytes(make_leaf(None).pem)
    bus = InMemoryBus(delivery_limit=2)
    bus.declare(OBSERVED, ["certificate.observed.v1"])
    service = bootstrap(
        Settings(scheduler_tick_seconds=60, scan_concurrency=1), parse_config({}), bus=bus, pool=pg_pool, limits=LIMITS
    )
    await service.start()
    targets = [
        Target(host="127.0.0.1", port=silent),
        Target(host="127.0.0.1", port=healthy),
        Target(file=str(tmp_path / "leaf.pem")),
    ]
    try:
        for target in targets:
            due = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
            await bus.publish(make_event("scan.requested.v1", ScanRequested(target=target, due_at=due), source="test"))
        async with asyncio.timeout(10):
            while len(bus.pending(OBSERVED)) < 3:
                await asyncio.sleep(0.02)
    finally:
        await service.stop()
        await bus.close()
    by_key = {obs.target.key: obs for obs in (Observation.model_validate(e.data) for e in bus.pending(OBSERVED))}
    assert list(by_key) == [target.key for target in targets]  # one worker, in order: the hostile one first
    hostile = by_key[targets[0].key].error
    assert hostile is not None and (hostile.kind, hostile.phase) == ("timeout", "handshake")
    assert by_key[targets[1].key].error is None and len(by_key[targets[1].key].chain) == 2
    assert by_key[targets[2].key].error is None and len(by_key[targets[2].key].chain) == 1
    assert bus.dead_letters == []
