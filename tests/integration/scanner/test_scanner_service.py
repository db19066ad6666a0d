"""The scanner wired by `bootstrap` on the in-memory bus and real PostgreSQL, end to end."""

import asyncio
import base64
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from services.scanner.bootstrap import ScannerService, ScannerUnavailable, bootstrap
from services.scanner.domain.limits import ProbeLimits
from services.scanner.handlers import QUEUE
from services.scanner.service_layer.observe import observe
from shared.broker import InMemoryBus
from shared.config import parse_config
from shared.events import CloudEvent, Observation, ScanRequested, Target, derived_id, make_event
from shared.settings import Settings
from tests.support.pki import Issued, make_ca, make_leaf, write_chain
from tests.support.tls_server import server_context, tls_server

FAST = ProbeLimits(connect_seconds=2, handshake_seconds=2, target_seconds=5)
OBSERVED = "test.scanner.observed"


def _b64(issued: Issued) -> str:
    return base64.b64encode(issued.der).decode("ascii")


@pytest.fixture
async def endpoint(tmp_path: Path) -> AsyncIterator[tuple[int, Issued, Issued]]:
    """A local TLS server presenting leaf + intermediate; yields its port, leaf and intermediate."""
    intermediate = make_ca("certmon Test Intermediate", issuer=make_ca())
    leaf = make_leaf(intermediate, ["127.0.0.1"])
    cert, key = write_chain(tmp_path, "svc", leaf, intermediate)
    async with tls_server(server_context(cert, key)) as port:
        yield port, leaf, intermediate


@pytest.fixture
def bus() -> InMemoryBus:
    """An in-memory bus with a queue collecting observations (a stand-in for the evaluator)."""
    memory = InMemoryBus(delivery_limit=2)
    memory.declare(OBSERVED, ["certificate.observed.v1"])
    return memory


async def _observations(bus: InMemoryBus, count: int) -> list[CloudEvent]:
    async with asyncio.timeout(10):
        while len(bus.pending(OBSERVED)) < count:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)  # and no more than that arrives
    return bus.pending(OBSERVED)


@pytest.fixture
async def running(
    bus: InMemoryBus, pg_pool: asyncpg.Pool, endpoint: tuple[int, Issued, Issued], tmp_path: Path
) -> AsyncIterator[ScannerService]:
    """The scanner started with one endpoint target and one file target configured."""
    port, leaf, _ = endpoint
    (tmp_path / "legacy.pem").write_bytes(leaf.pem)
    config = parse_config({"targets": [{"host": "127.0.0.1", "port": port}, {"file": str(tmp_path / "legacy.pem")}]})
    service = bootstrap(Settings(scheduler_tick_seconds=60), config, bus=bus, pool=pg_pool, limits=FAST)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()
        await bus.close()


async def test_configured_targets_are_scanned_and_observations_published(
    running: ScannerService,
    bus: InMemoryBus,
    endpoint: tuple[int, Issued, Issued],
    pg_pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    """Starting schedules every configured target; each yields one `certificate.observed.v1`."""
    port, leaf, intermediate = endpoint
    events = await _observations(bus, 2)
    by_key = {Observation.model_validate(e.data).target.key: e for e in events}
    assert sorted(by_key) == sorted([f"127.0.0.1:{port}", f"file:{tmp_path / 'legacy.pem'}"])
    tls_event = by_key[f"127.0.0.1:{port}"]
    observation = Observation.model_validate(tls_event.data)
    assert observation.error is None
    assert observation.chain == [_b64(leaf), _b64(intermediate)]
    assert observation.address == "127.0.0.1"
    assert tls_event.source == "certmon/scanner"
    requests = [e for e in bus.published if e.routing_key == "scan.requested.v1"]
    assert len(requests) == 2
    request = next(r for r in requests if ScanRequested.model_validate(r.data).target.key == f"127.0.0.1:{port}")
    assert tls_event.id == derived_id(request.id, "observed")
    row = await pg_pool.fetchrow(
        "SELECT last_observed_at, last_error FROM scanner.targets WHERE key = $1", f"127.0.0.1:{port}"
    )
    assert row is not None
    assert row["last_observed_at"] == observation.observed_at
    assert row["last_error"] is None


async def test_trigger_now_scans_everything_again(running: ScannerService, bus: InMemoryBus) -> None:
    """`trigger_now` schedules every enabled target at once, producing fresh observations."""
    first = await _observations(bus, 2)
    assert await running.trigger_now() == 2
    events = await _observations(bus, 4)
    assert len({e.id for e in events}) == 4
    assert {e.id for e in first} < {e.id for e in events}


async def test_redelivered_request_yields_one_observation(
    running: ScannerService, bus: InMemoryBus, endpoint: tuple[int, Issued, Issued], pg_pool: asyncpg.Pool
) -> None:
    """The same scan request delivered twice is scanned and published once."""
    await _observations(bus, 2)
    port = endpoint[0]
    request = make_event(
        "scan.requested.v1",
        ScanRequested(target=Target(host="127.0.0.1", port=port), due_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)),
        source="test",
    )
    await bus.publish(request)
    await bus.publish(request)
    events = await _observations(bus, 3)
    assert [e.id for e in events].count(derived_id(request.id, "observed")) == 1
    count = await pg_pool.fetchval(
        "SELECT count(*) FROM scanner.outbox WHERE event_id = $1", derived_id(request.id, "observed")
    )
    assert count == 1


async def test_unreachable_target_is_observed_with_its_error(
    running: ScannerService, bus: InMemoryBus, pg_pool: asyncpg.Pool
) -> None:
    """A failed scan is still an observation (with the error), and the target remembers it."""
    await _observations(bus, 2)
    target = Target(host="no-such-host.invalid", port=443)
    request = make_event(
        "scan.requested.v1", ScanRequested(target=target, due_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)), source="test"
    )
    await bus.publish(request)
    events = await _observations(bus, 3)
    observation = Observation.model_validate(next(e for e in events if e.subject == target.key).data)
    assert observation.error is not None
    assert observation.error.kind == "dns"


async def test_malformed_request_is_dead_lettered(running: ScannerService, bus: InMemoryBus) -> None:
    """A request whose data is not a `ScanRequested` is rejected until the delivery limit, then dead-lettered."""
    await _observations(bus, 2)
    bad = CloudEvent(source="test", type="io.certmon.scan.requested.v1", data={"target": "nope"})
    await bus.publish(bad)
    async with asyncio.timeout(5):
        while not bus.dead_letters:
            await asyncio.sleep(0.02)
    assert bus.dead_letters == [(QUEUE, bad)]


async def test_without_a_database_the_service_refuses_to_start(bus: InMemoryBus) -> None:
    """With `pool=None` the scanner cannot schedule; it says to use `observe` instead."""
    service = bootstrap(Settings(), parse_config({}), bus=bus, pool=None)
    assert service.name == "scanner"
    with pytest.raises(ScannerUnavailable, match=r"services\.scanner\.service_layer\.observe"):
        await service.start()
    await service.stop()


async def test_observe_dispatches_endpoints_and_files(endpoint: tuple[int, Issued, Issued], tmp_path: Path) -> None:
    """The one-off `observe` reads file targets and probes endpoint targets."""
    port, leaf, intermediate = endpoint
    when = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    (tmp_path / "leaf.pem").write_bytes(leaf.pem)
    from_file = await observe(Target(file=str(tmp_path / "leaf.pem")), now=when)
    from_endpoint = await observe(Target(host="127.0.0.1", port=port), now=when, limits=FAST)
    assert from_file.chain == [_b64(leaf)]
    assert from_endpoint.chain == [_b64(leaf), _b64(intermediate)]
