"""The composition root: which services a process runs, on which bus and database, started and stopped
in an order that never loses an event (consumers downstream first, producers last)."""

import asyncio
import contextlib
import signal
from collections.abc import Callable, Sequence

import asyncpg
import structlog

from services.alarmer.bootstrap import bootstrap as alarmer_bootstrap
from services.evaluator.bootstrap import bootstrap as evaluator_bootstrap
from services.notifier.bootstrap import bootstrap as notifier_bootstrap
from services.reporter.bootstrap import bootstrap as reporter_bootstrap
from services.scanner.bootstrap import bootstrap as scanner_bootstrap
from shared.broker import Bus
from shared.clock import Clock, utc_now
from shared.config import CertmonConfig
from shared.service import Service
from shared.settings import Settings

log = structlog.get_logger(__name__)

#: Downstream first, so every queue exists before anything publishes to it.
START_ORDER = ("reporter", "notifier", "alarmer", "evaluator", "scanner")

Builder = Callable[..., Service]
BUILDERS: dict[str, Builder] = {
    "scanner": scanner_bootstrap,
    "evaluator": evaluator_bootstrap,
    "alarmer": alarmer_bootstrap,
    "notifier": notifier_bootstrap,
    "reporter": reporter_bootstrap,
}


def build_services(
    names: Sequence[str],
    settings: Settings,
    config: CertmonConfig,
    *,
    bus: Bus,
    pool: asyncpg.Pool,
    clock: Clock = utc_now,
) -> list[Service]:
    """Bootstrap the named services, in start order."""
    ordered = [name for name in START_ORDER if name in names]
    return [BUILDERS[name](settings, config, bus=bus, pool=pool, clock=clock) for name in ordered]


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


async def wait_for_shutdown_signal() -> None:
    """Return on SIGINT or SIGTERM (Kubernetes stops pods with SIGTERM)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
