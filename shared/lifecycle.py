"""Running services: start in order, stop in reverse, and live until SIGINT/SIGTERM.

Used by `certmon run` (all five on one bus), `certmon <service>` and each service's `python -m` entry point,
so every way of starting certmon shuts down the same way.
"""

import asyncio
import contextlib
import signal
from collections.abc import Callable, Sequence

import asyncpg
import structlog

from shared.broker import Bus
from shared.clock import Clock, utc_now
from shared.config import CertmonConfig, load_app_config
from shared.logging import configure_logging
from shared.runtime import infrastructure
from shared.service import Service
from shared.settings import Settings

log = structlog.get_logger(__name__)

ServiceBuilder = Callable[..., Service]


async def start_all(services: Sequence[Service]) -> None:
    """Start each service in order; if one fails, stop those already started and re-raise."""
    started: list[Service] = []
    try:
        for service in services:
            await service.start()
            started.append(service)
            log.info("service_started", service=service.name)
    except BaseException:
        await stop_all(started)
        raise


async def stop_all(services: Sequence[Service]) -> None:
    """Stop services in reverse order; one failing to stop does not keep the others running."""
    for service in reversed(services):
        try:
            await service.stop()
        except Exception as exc:  # shutting down regardless: report and go on to the next
            log.error("service_stop_failed", service=service.name, error=repr(exc))
        else:
            log.info("service_stopped", service=service.name)


class ShutdownSignal:
    """SIGINT/SIGTERM (Kubernetes stops pods with SIGTERM) set an event instead of killing the process.

    Enter it before starting anything, so a signal that arrives during start-up is not lost: `wait` then
    returns at once and the services stop cleanly.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._installed: list[signal.Signals] = []

    def __enter__(self) -> "ShutdownSignal":
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # platforms without loop signal handlers
                loop.add_signal_handler(sig, self._event.set)
                self._installed.append(sig)
        return self

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed.clear()

    async def wait(self, exit_after: float | None = None) -> None:
        """Return once a signal came, or after `exit_after` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(exit_after):
                await self._event.wait()


def build(
    builders: Sequence[ServiceBuilder],
    settings: Settings,
    config: CertmonConfig,
    *,
    bus: Bus,
    pool: asyncpg.Pool | None,
    clock: Clock = utc_now,
) -> list[Service]:
    """Call each service's `bootstrap` with the same infrastructure."""
    return [builder(settings, config, bus=bus, pool=pool, clock=clock) for builder in builders]


async def serve_one(builder: ServiceBuilder, *, needs_database: bool = True) -> None:
    """The `python -m services.<name>` entry point: one service on the configured broker and database."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    config = load_app_config(settings)
    with ShutdownSignal() as shutdown:
        async with infrastructure(settings, allow_embedded=False, needs_database=needs_database) as infra:
            services = build([builder], settings, config, bus=infra.bus, pool=infra.pool)
            await start_all(services)
            try:
                await shutdown.wait()
            finally:
                await stop_all(services)
