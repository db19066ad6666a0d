"""The discovery sweeper: on each sweep's interval, probe its CIDRs x ports, register every TLS endpoint found
as a target, and report endpoints that appear, disappear and come back.

A sweep is claimed in the store (`DiscoveryStore.claim_due`), so of several scanner replicas only one
runs it at a time. Each address:port gets a TCP connect with a short timeout, with at most `concurrency`
probes at once; one that accepts gets a TLS handshake (`observe_endpoint`, STARTTLS where the port implies it)
to confirm it speaks TLS. Addresses the scan policy denies are never connected to. An endpoint that is gone
stays a target: its scans report it unreachable, which the alarmer turns into a reachability alarm.
"""

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import timedelta

import structlog

from services.scanner.domain.discovery import (
    GONE_AFTER_SWEEPS,
    Endpoint,
    EndpointChange,
    discovered_target,
    in_scope,
    plan_sweeps,
    policy_limits,
    probe_endpoints,
    reconcile,
    sweep_lease,
    sweep_size,
)
from services.scanner.domain.limits import ProbeLimits
from services.scanner.ports import DiscoveryStore, StoreUnavailable, SweepSchedule, TargetStore
from services.scanner.probes.handshake.endpoint import observe_endpoint
from shared.clock import Clock
from shared.config import CertmonConfig
from shared.config.schema import DiscoverySweep
from shared.periodic import PeriodicTask

log = structlog.get_logger(__name__)

#: The TCP connect timeout of a sweep probe: a closed or filtered port should cost little.
SWEEP_CONNECT_SECONDS = 2.0


@dataclass(frozen=True)
class SweepReport:
    """What one run of a sweep did: how many probes it made and what it concluded per endpoint."""

    sweep: str
    probed: int
    changes: tuple[EndpointChange, ...]

    @property
    def present(self) -> list[Endpoint]:
        """TLS endpoints this run found."""
        return [c.endpoint for c in self.changes if c.seen]

    @property
    def gone(self) -> list[Endpoint]:
        """Endpoints now considered gone."""
        return [c.endpoint for c in self.changes if c.state == "gone"]


class Sweeper:
    """Runs the configured discovery sweeps when due until stopped; sweeps refused at start never run."""

    def __init__(
        self,
        repo: DiscoveryStore,
        targets: TargetStore,
        config: CertmonConfig,
        *,
        limits: ProbeLimits,
        clock: Clock,
        tick_seconds: float,
        concurrency: int | None = None,
        connect_seconds: float = SWEEP_CONNECT_SECONDS,
        gone_after: int = GONE_AFTER_SWEEPS,
    ) -> None:
        self._repo, self._targets, self._config, self._clock = repo, targets, config, clock
        self._limits = policy_limits(limits, config.scanning)
        self._concurrency = concurrency or config.scanning.concurrency
        self._connect_seconds = min(connect_seconds, self._limits.connect_seconds)
        self._gone_after = gone_after
        self._sweeps: dict[str, DiscoverySweep] = {}
        # The database may be away: a failed tick released its claim, and the next tick retries.
        self._loop = PeriodicTask(
            "scanner:sweeper",
            self.tick,
            interval=tick_seconds,
        )

    async def prepare(self) -> None:
        """Check the configured sweeps (logging each refused one with its reason) and store their schedule."""
        accepted, refused = plan_sweeps(self._config.discovery)
        for problem in refused:
            log.error("discovery_sweep_refused", reason=str(problem))
        self._sweeps = {s.name: s for s in accepted}
        schedules = [SweepSchedule(s.name, s.interval, self._lease(s)) for s in accepted]
        disabled = await self._repo.sync_sweeps(schedules, now=self._clock())
        if accepted or refused or disabled:
            log.info("discovery_configured", sweeps=len(accepted), refused=len(refused), disabled=disabled)

    async def start(self) -> None:
        """Prepare the sweeps, then run them in the background whenever one is due (nothing runs without any)."""
        await self.prepare()
        if self._sweeps:
            await self._loop.start()

    async def stop(self) -> None:
        """Stop sweeping; a sweep in progress is cancelled and releases its claim, so it runs again when due."""
        await self._loop.stop()

    async def tick(self) -> list[SweepReport]:
        """Claim and run every sweep due now that no other replica runs; returns a report per sweep run."""
        reports = []
        while (name := await self._repo.claim_due(self._clock())) is not None:
            sweep = self._sweeps.get(name)
            if sweep is None:  # configured on another replica with a newer config; it is that replica's to run
                await self._repo.release(name)
                break
            report = await self._run_claimed(sweep)
            if report is not None:
                reports.append(report)
        return reports

    async def _run_claimed(self, sweep: DiscoverySweep) -> SweepReport | None:
        lease = self._lease(sweep)
        try:
            async with asyncio.timeout(lease.total_seconds()):
                return await self.sweep(sweep)
        except TimeoutError:
            # Past its lease another replica may claim it, so it must not go on; it runs again when next due.
            log.error("discovery_sweep_overran", sweep=sweep.name, lease_seconds=lease.total_seconds())
            await self._repo.release(sweep.name)
            return None
        except BaseException:
            # Cancelled, or the store failed: free the claim (if the store lets us) and pass it on.
            with contextlib.suppress(StoreUnavailable):
                await self._repo.release(sweep.name)
            raise

    async def sweep(self, sweep: DiscoverySweep) -> SweepReport:
        """Run `sweep` once (claimed by the caller): probe, register the TLS endpoints, record and report changes."""
        found, probed = await self._find(sweep)
        now = self._clock()
        await self._targets.register_discovered(
            [discovered_target(sweep, e, self._config) for e in sorted(found)], now=now
        )
        known = [k for k in await self._repo.known(sweep.name) if in_scope(sweep, k.endpoint, self._limits)]
        changes = reconcile(found, known, gone_after=self._gone_after)
        keyed = [(c, discovered_target(sweep, c.endpoint, self._config).key) for c in changes]
        await self._repo.finish(sweep.name, keyed, now=now)
        for change, key in keyed:
            _report(sweep.name, change, key)
        report = SweepReport(sweep.name, probed, tuple(changes))
        log.info(
            "discovery_sweep_completed",
            sweep=sweep.name,
            probed=probed,
            present=len(report.present),
            gone=len(report.gone),
        )
        return report

    async def _find(self, sweep: DiscoverySweep) -> tuple[set[Endpoint], int]:
        """The TLS endpoints among the sweep's allowed addresses x ports, and how many probes were made."""
        endpoints = probe_endpoints(sweep, self._limits)
        found: set[Endpoint] = set()
        probed = 0

        async def worker() -> None:
            nonlocal probed
            # Workers share one lazy iterator, so a large sweep never holds all its probes in memory.
            for endpoint in endpoints:
                probed += 1
                if await self._speaks_tls(sweep, endpoint):
                    found.add(endpoint)

        workers = min(self._concurrency, sweep_size(sweep))
        await asyncio.gather(*(worker() for _ in range(workers)))
        return found, probed

    async def _speaks_tls(self, sweep: DiscoverySweep, endpoint: Endpoint) -> bool:
        """Whether the endpoint accepts a TCP connection and then completes a TLS handshake."""
        try:
            async with asyncio.timeout(self._connect_seconds):
                _, writer = await asyncio.open_connection(endpoint.address, endpoint.port)
        except (TimeoutError, OSError):
            return False
        writer.transport.abort()
        # One handshake is all it takes to know, whatever profile the target will be scanned with.
        probe = discovered_target(sweep, endpoint, self._config).model_copy(update={"profile": "expiry"})
        observation = await observe_endpoint(probe, now=self._clock(), limits=self._limits)
        return observation.error is None

    def _lease(self, sweep: DiscoverySweep) -> timedelta:
        return sweep_lease(
            sweep_size(sweep),
            concurrency=self._concurrency,
            connect_seconds=self._connect_seconds,
            target_seconds=self._limits.target_seconds,
        )


def _report(sweep: str, change: EndpointChange, target_key: str) -> None:
    """Log a transition: an endpoint is new, gone for the first time, or back after being gone."""
    fields = {
        "sweep": sweep,
        "address": change.endpoint.address,
        "port": change.endpoint.port,
        "target": target_key,
    }
    if change.event == "new":
        log.info("endpoint_discovered", **fields)
    elif change.event == "disappeared":
        log.warning("endpoint_disappeared", missing_sweeps=change.missing_sweeps, **fields)
    elif change.event == "reappeared":
        log.info("endpoint_reappeared", **fields)
