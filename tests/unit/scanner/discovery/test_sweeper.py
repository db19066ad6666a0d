"""The discovery sweeper on the in-memory stores, for what needs no probe: its schedule, claims and refusals."""

import datetime as dt
from typing import Any

import pytest
from structlog.testing import capture_logs

from services.scanner.adapters.memory import InMemoryDiscoveryStore, InMemoryTargetStore
from services.scanner.domain.discovery import KnownEndpoint
from services.scanner.domain.limits import ProbeLimits
from services.scanner.ports import DiscoveryStore, StoreUnavailable, SweepSchedule
from services.scanner.service_layer.sweeper import Sweeper
from shared.config import CertmonConfig, parse_config

FAST = ProbeLimits(connect_seconds=1, handshake_seconds=2, target_seconds=3)
START = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)
#: With 127.0.0.0/8 denied, a sweep of 127.0.0.1 probes nothing: the sweeper runs without touching the network.
DENIED_LOOPBACK = {"deny": ["127.0.0.0/8"]}


def loopback(**extra: Any) -> CertmonConfig:
    """A config with one 30-second sweep of 127.0.0.1:443."""
    sweep = {"name": "loopback", "cidrs": ["127.0.0.1/32"], "ports": [443], "interval": "30s"}
    return parse_config({"discovery": [sweep], **extra})


def sweeper_on(store: DiscoveryStore, config: CertmonConfig, targets: InMemoryTargetStore | None = None) -> Sweeper:
    """A sweeper on the twins whose clock reads START."""
    targets = targets or InMemoryTargetStore()
    return Sweeper(store, targets, config, limits=FAST, clock=lambda: START, tick_seconds=60, concurrency=4)


async def test_a_sweep_over_the_cap_is_refused_at_start_and_the_others_run() -> None:
    """A too-large sweep is logged as refused with its reason and never scheduled; the good one is."""
    config = parse_config(
        {
            "discovery": [
                {"name": "everything", "cidrs": ["10.0.0.0/8"], "ports": [443]},
                {"name": "loopback", "cidrs": ["127.0.0.1/32"], "ports": [443]},
            ]
        }
    )
    store = InMemoryDiscoveryStore()
    with capture_logs() as logs:
        await sweeper_on(store, config).prepare()
    (refused,) = [entry for entry in logs if entry["event"] == "discovery_sweep_refused"]
    assert refused["log_level"] == "error"
    assert refused["reason"].startswith("discovery[0] ('everything'): 16,777,216 addresses x 1 ports")
    assert [name for name, row in store.sweeps.items() if row.enabled] == ["loopback"]


async def test_sweeps_dropped_from_the_config_are_no_longer_scheduled() -> None:
    """A sweep removed from `discovery:` is disabled at the next start and never claimed."""
    store = InMemoryDiscoveryStore()
    await sweeper_on(store, loopback()).prepare()
    await sweeper_on(store, parse_config({})).prepare()
    assert await store.claim_due(START + dt.timedelta(days=1)) is None


async def test_a_sweep_that_finds_nothing_registers_nothing_and_frees_its_claim() -> None:
    """A sweep that probed nothing reports so, registers no target, and leaves its claim free for its next slot."""
    store, targets = InMemoryDiscoveryStore(), InMemoryTargetStore()
    sweeper = sweeper_on(store, loopback(scanning=DENIED_LOOPBACK), targets)
    await sweeper.prepare()
    (report,) = await sweeper.tick()
    assert (report.sweep, report.probed, report.changes) == ("loopback", 0, ())
    assert (targets.targets, store.sweeps["loopback"].running_until) == ({}, None)
    assert await sweeper.tick() == []


async def test_a_sweep_only_another_replica_knows_is_released_for_it() -> None:
    """A due sweep configured by a replica with a newer config is claimed, given back at once, and not run."""
    store = InMemoryDiscoveryStore()
    sweeper = sweeper_on(store, loopback())
    await sweeper.prepare()
    await store.sync_sweeps([SweepSchedule("elsewhere", 30, dt.timedelta(minutes=1))], now=START)
    assert await sweeper.tick() == []
    assert store.sweeps["elsewhere"].running_until is None


class LostStore(InMemoryDiscoveryStore):
    """A discovery store that goes away once a sweep is claimed."""

    async def known(self, sweep: str) -> list[KnownEndpoint]:
        """Fail as an unreachable store does."""
        raise StoreUnavailable("lost during the sweep")

    async def release(self, sweep: str) -> None:
        """Fail as an unreachable store does."""
        raise StoreUnavailable("still unreachable")


async def test_a_store_lost_mid_sweep_fails_the_tick_with_its_own_error() -> None:
    """When the store goes away mid-sweep, the failed release is swallowed and the tick fails with the cause."""
    sweeper = sweeper_on(LostStore(), loopback(scanning=DENIED_LOOPBACK))
    await sweeper.prepare()
    with pytest.raises(StoreUnavailable, match="lost during the sweep"):
        await sweeper.tick()
