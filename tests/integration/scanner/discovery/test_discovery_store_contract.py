"""One contract, two adapters: the in-memory `DiscoveryStore` twin and the PostgreSQL repository behave alike."""

import asyncio
import datetime as dt

import asyncpg
import pytest

from services.scanner.adapters.discovery_repo import DiscoveryRepository
from services.scanner.adapters.memory import InMemoryDiscoveryStore
from services.scanner.adapters.targets_repo import TargetsRepository
from services.scanner.domain.discovery import Endpoint, EndpointChange, EndpointState, KnownEndpoint
from services.scanner.domain.schedule import sweep_next_due
from services.scanner.ports import DiscoveryStore, SweepSchedule

START = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)
TICK = dt.timedelta(microseconds=1)
#: A sweep every 30 s whose one run may hold its claim for a minute.
LOOPBACK = SweepSchedule("loopback", 30, dt.timedelta(seconds=60))
WEB = Endpoint("127.0.0.1", 443)
MAIL = Endpoint("127.0.0.1", 465)


@pytest.fixture
async def store(store_pool: asyncpg.Pool | None) -> DiscoveryStore:
    """Each contract test runs once per adapter; PostgreSQL gets a fresh database with the scanner's tables."""
    if store_pool is None:
        return InMemoryDiscoveryStore()
    await TargetsRepository(store_pool).migrate()
    return DiscoveryRepository(store_pool)


def change(endpoint: Endpoint, state: EndpointState = "present", missing: int = 0) -> tuple[EndpointChange, str]:
    """A sweep's conclusion about `endpoint`, with the endpoint's target key."""
    return EndpointChange(endpoint, state, missing, seen=missing == 0), f"{endpoint.address}:{endpoint.port}"


class TestDiscoveryStoreContract:
    """The behaviour every DiscoveryStore adapter promises."""

    async def test_a_new_sweep_is_due_now_and_claimed_once(self, store: DiscoveryStore) -> None:
        """A newly configured sweep is claimable at `now`, not a moment before, and by one claim only."""
        assert await store.sync_sweeps([LOOPBACK], now=START) == 0
        assert await store.claim_due(START - TICK) is None
        assert await store.claim_due(START) == "loopback"
        assert await store.claim_due(START) is None

    async def test_concurrent_claimers_get_a_due_sweep_once(self, store: DiscoveryStore) -> None:
        """Two claims at the same moment: one gets the sweep, the other nothing."""
        await store.sync_sweeps([LOOPBACK], now=START)
        claims = await asyncio.gather(store.claim_due(START), store.claim_due(START))
        assert sorted(claims, key=str) == [None, "loopback"]

    async def test_a_running_sweep_is_not_claimed_again_until_released(self, store: DiscoveryStore) -> None:
        """Past its next due time a sweep still within its lease is not claimed; once released, it is."""
        await store.sync_sweeps([LOOPBACK], now=START)
        await store.claim_due(START)
        later = START + dt.timedelta(seconds=45)  # past the 30 s interval and its jitter, within the lease
        assert await store.claim_due(later) is None
        await store.release("loopback")
        assert await store.claim_due(later) == "loopback"

    async def test_a_claim_runs_out_with_its_lease(self, store: DiscoveryStore) -> None:
        """A claim never finished nor released stops holding the sweep when its lease ends."""
        await store.sync_sweeps([LOOPBACK], now=START)
        await store.claim_due(START)
        assert await store.claim_due(START + LOOPBACK.lease - TICK) is None
        assert await store.claim_due(START + LOOPBACK.lease) == "loopback"

    async def test_finish_records_the_changes_and_frees_the_sweep_for_its_next_slot(
        self, store: DiscoveryStore
    ) -> None:
        """After `finish` the endpoints are known with their new state, and the sweep is due one interval on."""
        await store.sync_sweeps([LOOPBACK], now=START)
        await store.claim_due(START)
        await store.finish("loopback", [change(WEB), change(MAIL)], now=START)
        assert sorted(await store.known("loopback"), key=lambda k: k.endpoint) == [
            KnownEndpoint(WEB, "present", 0),
            KnownEndpoint(MAIL, "present", 0),
        ]
        due = sweep_next_due("loopback", 30, START)
        assert await store.claim_due(due - TICK) is None
        assert await store.claim_due(due) == "loopback"
        await store.finish("loopback", [change(WEB), change(MAIL, "gone", 2)], now=due)
        assert KnownEndpoint(MAIL, "gone", 2) in await store.known("loopback")

    async def test_known_endpoints_belong_to_their_sweep(self, store: DiscoveryStore) -> None:
        """What one sweep found is not known to another."""
        await store.sync_sweeps([LOOPBACK], now=START)
        await store.finish("loopback", [change(WEB)], now=START)
        assert await store.known("other") == []

    async def test_sweeps_dropped_from_the_config_are_disabled_and_never_claimed(self, store: DiscoveryStore) -> None:
        """A sweep no longer configured is counted as disabled and is not claimed however late it gets."""
        other = SweepSchedule("other", 30, dt.timedelta(seconds=60))
        await store.sync_sweeps([LOOPBACK, other], now=START)
        assert await store.sync_sweeps([LOOPBACK], now=START) == 1
        day = START + dt.timedelta(days=1)
        assert [await store.claim_due(START), await store.claim_due(day), await store.claim_due(day)] == [
            "loopback",
            "loopback",
            None,
        ]

    async def test_a_shorter_interval_brings_the_next_run_forward(self, store: DiscoveryStore) -> None:
        """A sweep whose interval shrank is due no later than one new interval (plus jitter) from the sync."""
        hourly = SweepSchedule("loopback", 3600, dt.timedelta(seconds=60))
        await store.sync_sweeps([hourly], now=START)
        await store.claim_due(START)
        await store.finish("loopback", [], now=START)
        later = START + dt.timedelta(minutes=5)
        await store.sync_sweeps([LOOPBACK], now=later)
        due = sweep_next_due("loopback", 30, later)
        assert await store.claim_due(due - TICK) is None
        assert await store.claim_due(due) == "loopback"
