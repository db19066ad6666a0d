"""Wiring of the scanner: targets repository, outbox relay, scheduler and the scan-request consumer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from services.scanner.domain.limits import ProbeLimits, limits_from, scan_concurrency
from services.scanner.handlers import ScanRequestHandler, subscriptions
from services.scanner.probes.files.source import expand_file_targets
from services.scanner.service_layer.metrics import start_series
from services.scanner.service_layer.observe import Observer
from services.scanner.service_layer.scan_limiter import ScanLimiter
from services.scanner.service_layer.scheduler import Scheduler
from services.scanner.service_layer.sweeper import Sweeper
from shared.broker import Bus
from shared.clock import Clock, utc_now
from shared.config import CertmonConfig
from shared.events import Target
from shared.settings import Settings

if TYPE_CHECKING:
    import asyncpg

    from services.scanner.adapters.targets_repo import TargetsRepository
    from shared.outbox import OutboxRelay
    from shared.retention import Retention

log = structlog.get_logger(__name__)


class ScannerUnavailable(RuntimeError):
    """The scanner was started without PostgreSQL, which scheduling needs (use `observe` for one-off scans)."""


def configured_targets(config: CertmonConfig) -> Iterator[Target]:
    """The targets to schedule: every configured target, directories expanded into their certificate files;
    built as they are read (a directory is listed when its entry is reached)."""
    return (expanded for target in config.iter_scan_targets() for expanded in expand_file_targets(target))


@dataclass
class _Parts:
    repo: TargetsRepository
    relay: OutboxRelay
    scheduler: Scheduler
    handler: ScanRequestHandler
    sweeper: Sweeper
    retention: Retention


class ScannerService:
    """The scanner as a `shared.service.Service`: schedules configured targets and scans requested ones."""

    name = "scanner"

    def __init__(self, settings: Settings, config: CertmonConfig, bus: Bus, parts: _Parts | None, clock: Clock):
        self._settings, self._config, self._bus, self._parts, self._clock = settings, config, bus, parts, clock

    def _require(self) -> _Parts:
        if self._parts is None:
            raise ScannerUnavailable(
                "the scanner needs PostgreSQL to schedule; use services.scanner.service_layer.observe"
            )
        return self._parts

    async def start(self) -> None:
        """Migrate, sync the configured targets, subscribe the consumer, start the relay and scheduler."""
        parts = self._require()
        applied = await parts.repo.migrate()
        summary = await parts.repo.sync(configured_targets(self._config), now=self._clock())
        log.info("scanner_started", migrations=applied, targets=summary.configured, disabled=summary.disabled)
        prefetch = scan_concurrency(self._settings, self._config)
        for route in subscriptions(parts.handler, prefetch=prefetch):
            await self._bus.subscribe(route)
        await parts.relay.start()
        await parts.scheduler.start()
        await parts.sweeper.start()
        await parts.retention.start()

    async def stop(self) -> None:
        """Stop scheduling and flush the outbox once more (consumers stop when the bus closes)."""
        if self._parts is not None:
            await self._parts.retention.stop()
            await self._parts.sweeper.stop()
            await self._parts.scheduler.stop()
            await self._parts.relay.stop()

    async def trigger_now(self) -> int:
        """Schedule every enabled target at once (for `certmon run --demo` and tests); returns how many."""
        return await self._require().scheduler.trigger_now()


def build_observer(settings: Settings, config: CertmonConfig, *, limits: ProbeLimits | None = None) -> Observer:
    """What observes targets in this process: the probe limits of settings and `certmon.yaml` (or `limits`) and
    the scan caps. The scan handler and `certmon check` both observe through it."""
    probe_limits = limits or limits_from(settings, config)
    return Observer(
        probe_limits,
        ScanLimiter(total=scan_concurrency(settings, config), per_host=probe_limits.per_host_concurrency),
    )


def bootstrap(
    settings: Settings,
    config: CertmonConfig,
    *,
    bus: Bus,
    pool: asyncpg.Pool | None,
    clock: Clock = utc_now,
    limits: ProbeLimits | None = None,
) -> ScannerService:
    """Wire the scanner; with `pool=None` it cannot start (one-off scans use
    `services.scanner.service_layer.observe`)."""
    parts = None
    if pool is not None:
        # The database adapters load here, not with the module: `certmon check` builds its observer from this
        # module (`build_observer`) and starts faster without them.
        from services.scanner.adapters.discovery_repo import DiscoveryRepository
        from services.scanner.adapters.targets_repo import SCHEMA, TargetsRepository
        from shared.outbox import OutboxRelay
        from shared.retention import dedup_retention

        repo = TargetsRepository(pool)
        relay = OutboxRelay(pool, SCHEMA, bus)
        probe_limits = limits or limits_from(settings, config)
        handler = ScanRequestHandler(
            repo, observer=build_observer(settings, config, limits=probe_limits), clock=clock, on_enqueued=relay.kick
        )
        scheduler = Scheduler(repo, on_enqueued=relay.kick, clock=clock, tick_seconds=settings.scheduler_tick_seconds)
        sweeper = Sweeper(
            DiscoveryRepository(pool),
            repo,
            config,
            limits=probe_limits,
            clock=clock,
            tick_seconds=settings.scheduler_tick_seconds,
        )
        parts = _Parts(repo, relay, scheduler, handler, sweeper, dedup_retention(pool, SCHEMA, clock=clock))
        start_series()
    return ScannerService(settings, config, bus, parts, clock)
