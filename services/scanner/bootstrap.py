"""Wiring of the scanner: targets repository, outbox relay, scheduler and the scan-request consumer."""

from dataclasses import dataclass

import asyncpg
import structlog

from services.scanner.adapters.targets_repo import SCHEMA, TargetsRepository
from services.scanner.concurrency import ScanLimiter
from services.scanner.domain import DEFAULT_LIMITS, ProbeLimits
from services.scanner.handlers import QUEUE, ScanRequestHandler
from services.scanner.scheduler import Scheduler
from shared.broker import Bus
from shared.clock import Clock, utc_now
from shared.config import CertmonConfig
from shared.lifecycle import serve_one
from shared.outbox import OutboxRelay
from shared.settings import Settings

log = structlog.get_logger(__name__)

#: Concurrent scans of one host, whatever the global cap; a server is never flooded by its own monitor.
PER_HOST_CONCURRENCY = 4


class ScannerUnavailable(RuntimeError):
    """The scanner was started without PostgreSQL, which scheduling needs (use `observe` for one-off scans)."""


def limits_from_settings(settings: Settings) -> ProbeLimits:
    """Probe limits with the timeouts from Settings; the whole-target budget covers both phases."""
    return ProbeLimits(
        connect_seconds=settings.connect_timeout,
        handshake_seconds=settings.handshake_timeout,
        target_seconds=max(DEFAULT_LIMITS.target_seconds, settings.connect_timeout + settings.handshake_timeout),
    )


@dataclass
class _Parts:
    repo: TargetsRepository
    relay: OutboxRelay
    scheduler: Scheduler
    handler: ScanRequestHandler


class ScannerService:
    """The scanner as a `shared.service.Service`: schedules configured targets and scans requested ones."""

    name = "scanner"

    def __init__(self, settings: Settings, config: CertmonConfig, bus: Bus, parts: _Parts | None, clock: Clock):
        self._settings, self._config, self._bus, self._parts, self._clock = settings, config, bus, parts, clock

    def _require(self) -> _Parts:
        if self._parts is None:
            raise ScannerUnavailable("the scanner needs PostgreSQL to schedule; use services.scanner.observe")
        return self._parts

    async def start(self) -> None:
        """Migrate, sync the configured targets, subscribe the consumer, start the relay and scheduler."""
        parts = self._require()
        applied = await parts.repo.migrate()
        summary = await parts.repo.sync(self._config.scan_targets(), now=self._clock())
        log.info("scanner_started", migrations=applied, targets=summary.configured, disabled=summary.disabled)
        await self._bus.subscribe(QUEUE, ["scan.requested.v1"], parts.handler, prefetch=self._settings.scan_concurrency)
        await parts.relay.start()
        await parts.scheduler.start()

    async def stop(self) -> None:
        """Stop scheduling and flush the outbox once more (consumers stop when the bus closes)."""
        if self._parts is not None:
            await self._parts.scheduler.stop()
            await self._parts.relay.stop()

    async def trigger_now(self) -> int:
        """Schedule every enabled target at once (for `certmon run --demo` and tests); returns how many."""
        return await self._require().scheduler.trigger_now()


def bootstrap(
    settings: Settings,
    config: CertmonConfig,
    *,
    bus: Bus,
    pool: asyncpg.Pool | None,
    clock: Clock = utc_now,
    limits: ProbeLimits | None = None,
) -> ScannerService:
    """Wire the scanner; with `pool=None` it cannot start (one-off scans use `services.scanner.observe`)."""
    parts = None
    if pool is not None:
        repo = TargetsRepository(pool)
        relay = OutboxRelay(pool, SCHEMA, bus)
        handler = ScanRequestHandler(
            repo,
            limiter=ScanLimiter(total=settings.scan_concurrency, per_host=PER_HOST_CONCURRENCY),
            limits=limits or limits_from_settings(settings),
            clock=clock,
            on_enqueued=relay.kick,
        )
        scheduler = Scheduler(repo, relay, clock=clock, tick_seconds=settings.scheduler_tick_seconds)
        parts = _Parts(repo, relay, scheduler, handler)
    return ScannerService(settings, config, bus, parts, clock)


async def run_standalone() -> None:
    """Run the scanner alone with the real broker and database from Settings (`python -m services.scanner`)."""
    await serve_one(bootstrap)
