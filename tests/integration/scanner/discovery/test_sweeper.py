"""The discovery sweeper on real PostgreSQL against real TLS, plain TCP and closed ports on 127.0.0.1."""

import asyncio
import contextlib
import datetime as dt
import socket
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from services.scanner.adapters.discovery_repo import DiscoveryRepository
from services.scanner.adapters.targets_repo import TargetsRepository
from services.scanner.bootstrap import bootstrap
from services.scanner.domain.limits import ProbeLimits
from services.scanner.service_layer.sweeper import Sweeper
from shared.broker import InMemoryBus
from shared.config import CertmonConfig, parse_config
from shared.db import create_pool
from shared.events import Target
from shared.settings import Settings
from tests.support.pki import make_ca, make_leaf, write_chain
from tests.support.tls_server import raw_server, server_context, tls_server

FAST = ProbeLimits(connect_seconds=1, handshake_seconds=2, target_seconds=3)
START = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)
#: Far enough apart that every sweep (30 s interval, a few seconds of jitter, a short lease) is due again.
NEXT_SWEEP = dt.timedelta(minutes=10)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        """The current test time."""
        return self.now


@dataclass
class Lab:
    """Two TLS servers, one plain TCP server and one closed port on 127.0.0.1, and how to stop a TLS server."""

    tls_ports: list[int]
    plain_port: int
    closed_port: int
    stack: contextlib.AsyncExitStack
    tls_servers: list[contextlib.AsyncExitStack]

    @property
    def ports(self) -> list[int]:
        """Every port the sweep probes."""
        return [*self.tls_ports, self.plain_port, self.closed_port]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _not_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1024)
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A leaf for 127.0.0.1 under a test CA, written as chain and key files."""
    leaf = make_leaf(make_ca(), ["127.0.0.1"])
    return write_chain(tmp_path_factory.mktemp("discovery"), "lab", leaf)


@pytest.fixture
async def lab(certificate: tuple[Path, Path]) -> AsyncIterator[Lab]:
    """The servers a sweep over 127.0.0.1 finds, open for the test."""
    ctx = server_context(*certificate)
    async with contextlib.AsyncExitStack() as stack:
        servers = [contextlib.AsyncExitStack() for _ in range(2)]
        ports = []
        for server in servers:
            stack.push_async_callback(server.aclose)
            ports.append(await server.enter_async_context(tls_server(ctx)))
        plain = await stack.enter_async_context(raw_server(_not_tls))
        yield Lab(ports, plain, _closed_port(), stack, servers)


def _config(ports: list[int], **extra: Any) -> CertmonConfig:
    sweep = {"name": "loopback", "cidrs": ["127.0.0.1/32"], "ports": ports, "interval": "30s", "owner": "lab-team"}
    return parse_config({"servers": {"lo": {"addresses": ["127.0.0.0/8"]}}, "discovery": [sweep], **extra})


@pytest.fixture
async def targets(pg_pool: asyncpg.Pool) -> TargetsRepository:
    """The scanner's targets repository, migrated (which creates the discovery tables too)."""
    repo = TargetsRepository(pg_pool)
    await repo.migrate()
    return repo


def _sweeper(pool: asyncpg.Pool, targets: TargetsRepository, config: CertmonConfig, clock: FakeClock) -> Sweeper:
    return Sweeper(DiscoveryRepository(pool), targets, config, limits=FAST, clock=clock, tick_seconds=60, concurrency=4)


async def _targets(pool: asyncpg.Pool) -> dict[str, tuple[Target, bool]]:
    rows = await pool.fetch("SELECT key, target, enabled FROM scanner.targets ORDER BY key")
    return {r["key"]: (Target.model_validate(r["target"]), r["enabled"]) for r in rows}


async def _endpoints(pool: asyncpg.Pool) -> dict[int, tuple[str, int]]:
    rows = await pool.fetch("SELECT port, state, missing_sweeps FROM scanner.discovered_endpoints")
    return {r["port"]: (r["state"], r["missing_sweeps"]) for r in rows}


def _events(logs: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


async def test_sweep_registers_exactly_the_tls_endpoints_as_targets(
    lab: Lab, targets: TargetsRepository, pg_pool: asyncpg.Pool
) -> None:
    """Of two TLS ports, a plain TCP port and a closed port, only the two TLS endpoints become targets."""
    sweeper = _sweeper(pg_pool, targets, _config(lab.ports), FakeClock())
    await sweeper.prepare()
    with capture_logs() as logs:
        (report,) = await sweeper.tick()
    assert report.probed == 4
    assert sorted(e.port for e in report.present) == sorted(lab.tls_ports)
    registered = await _targets(pg_pool)
    assert sorted(registered) == sorted(f"127.0.0.1:{port}" for port in lab.tls_ports)
    for target, enabled in registered.values():
        assert enabled
        assert (target.discovered_by, target.owner, target.server, target.sni) == ("loopback", "lab-team", "lo", None)
    assert await _endpoints(pg_pool) == {port: ("present", 0) for port in lab.tls_ports}
    assert sorted(e["port"] for e in _events(logs, "endpoint_discovered")) == sorted(lab.tls_ports)


async def test_an_endpoint_gone_for_two_sweeps_is_reported_and_kept_as_a_target(
    lab: Lab, targets: TargetsRepository, pg_pool: asyncpg.Pool, certificate: tuple[Path, Path]
) -> None:
    """A stopped server is missing once, gone (and logged) on the second sweep, still a target, and back later."""
    clock = FakeClock()
    sweeper = _sweeper(pg_pool, targets, _config(lab.ports), clock)
    await sweeper.prepare()
    await sweeper.tick()
    stopped = lab.tls_ports[1]
    await lab.tls_servers[1].aclose()

    clock.now += NEXT_SWEEP
    with capture_logs() as first:
        await sweeper.tick()
    assert (await _endpoints(pg_pool))[stopped] == ("present", 1)
    assert _events(first, "endpoint_disappeared") == []

    clock.now += NEXT_SWEEP
    with capture_logs() as second:
        (report,) = await sweeper.tick()
    assert [e.port for e in report.gone] == [stopped]
    assert await _endpoints(pg_pool) == {lab.tls_ports[0]: ("present", 0), stopped: ("gone", 2)}
    (disappeared,) = _events(second, "endpoint_disappeared")
    assert disappeared["target"] == f"127.0.0.1:{stopped}"
    assert disappeared["log_level"] == "warning"
    assert (await _targets(pg_pool))[f"127.0.0.1:{stopped}"][1] is True  # still scanned: it reports unreachable
    row = await pg_pool.fetchrow("SELECT last_seen FROM scanner.discovered_endpoints WHERE port = $1", stopped)
    assert row is not None and row["last_seen"] == START

    async with tls_server(server_context(*certificate), port=stopped):
        clock.now += NEXT_SWEEP
        with capture_logs() as third:
            await sweeper.tick()
    assert (await _endpoints(pg_pool))[stopped] == ("present", 0)
    assert [e["port"] for e in _events(third, "endpoint_reappeared")] == [stopped]


async def test_two_sweepers_claim_a_due_sweep_once(
    lab: Lab, targets: TargetsRepository, pg_pool: asyncpg.Pool, database_url: str
) -> None:
    """Two replicas ticking at the same moment run the due sweep once between them."""
    config = _config(lab.ports)
    other_pool = await create_pool(database_url, max_size=5)
    try:
        clock = FakeClock()
        first = _sweeper(pg_pool, targets, config, clock)
        second = _sweeper(other_pool, TargetsRepository(other_pool), config, clock)
        await asyncio.gather(first.prepare(), second.prepare())
        reports = await asyncio.gather(first.tick(), second.tick())
        assert sorted(len(r) for r in reports) == [0, 1]
        assert await pg_pool.fetchval("SELECT count(*) FROM scanner.discovered_endpoints") == 2
    finally:
        await other_pool.close()


async def test_a_denied_cidr_is_never_connected_to(targets: TargetsRepository, pg_pool: asyncpg.Pool) -> None:
    """With 127.0.0.0/8 denied by `scanning.deny`, sweeping 127.0.0.1 makes no connection at all."""
    accepted: list[int] = []

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)

    async with raw_server(count) as port:
        config = _config([port], scanning={"deny": ["127.0.0.0/8"]})
        sweeper = _sweeper(pg_pool, targets, config, FakeClock())
        await sweeper.prepare()
        (report,) = await sweeper.tick()
        await asyncio.sleep(0.1)  # a connection, had one been made, would have been accepted by now
    assert (report.probed, accepted) == (0, [])
    assert await _targets(pg_pool) == {}


async def test_the_scanner_service_runs_its_sweeps_from_start_until_stop(lab: Lab, pg_pool: asyncpg.Pool) -> None:
    """`bootstrap` wires the sweeper: once started, the scanner registers discovered endpoints by itself."""
    bus = InMemoryBus(delivery_limit=2)
    service = bootstrap(Settings(scheduler_tick_seconds=60), _config(lab.ports), bus=bus, pool=pg_pool, limits=FAST)
    await service.start()
    try:
        async with asyncio.timeout(10):
            while len(await pg_pool.fetch("SELECT 1 FROM scanner.discovered_endpoints")) < 2:
                await asyncio.sleep(0.05)
    finally:
        await service.stop()
        await bus.close()
    registered = await _targets(pg_pool)
    assert sorted(registered) == sorted(f"127.0.0.1:{port}" for port in lab.tls_ports)
