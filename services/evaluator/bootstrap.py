"""Wiring: the evaluator service from settings, config and a bus (the composition root calls `bootstrap`)."""

import asyncpg
import structlog

from services.evaluator.adapters.aia import AddressPolicy, AiaFetcher
from services.evaluator.adapters.trust import TrustStoreError, load_trust_store
from services.evaluator.domain import EvaluatorCaches, TrustStore
from services.evaluator.handlers import ObservationHandler, subscriptions
from services.evaluator.service_layer.intermediate_finder import IntermediateFinder
from shared.broker import Bus, Subscription
from shared.clock import Clock, utc_now
from shared.config import CertmonConfig
from shared.lifecycle import serve_one
from shared.runtime import RuntimeConfigError
from shared.settings import Settings

log = structlog.get_logger(__name__)


class EvaluatorService:
    """The evaluator: consumes observations and publishes evaluations; it keeps no state."""

    name = "evaluator"

    def __init__(self, *, bus: Bus, routes: list[Subscription]) -> None:
        self.bus, self.routes = bus, routes

    async def start(self) -> None:
        """Subscribe the handler to its queue."""
        for route in self.routes:
            await self.bus.subscribe(route)
        log.info("evaluator_started", queues=[route.queue for route in self.routes])

    async def stop(self) -> None:
        """Nothing of its own to stop: the bus, which owns the consumers, belongs to the caller."""
        log.info("evaluator_stopped")


def bootstrap(
    settings: Settings,
    config: CertmonConfig,
    *,
    bus: Bus,
    pool: asyncpg.Pool | None,
    clock: Clock = utc_now,
    trust: TrustStore | None = None,
    aia: AiaFetcher | None = None,
) -> EvaluatorService:
    """Build the evaluator; `pool` is unused (it keeps only in-memory caches), `trust` defaults to the configured
    store, `aia` to a fetcher under the `scanning:` address policy (tests pass one that allows 127.0.0.1)."""
    try:
        store = trust or load_trust_store(config.trust.ca_files, config.trust.replace_default)
    except TrustStoreError as exc:  # a CA file that exists but holds no certificate: refuse to start, clearly
        raise RuntimeConfigError(f"trust store: {exc}") from exc
    fetcher = aia or AiaFetcher(policy=AddressPolicy.from_scanning(config.scanning))
    caches = EvaluatorCaches()  # one set of memos for the process, shared by every evaluation
    finder = IntermediateFinder(aia=fetcher, caches=caches)
    handler = ObservationHandler(bus=bus, config=config, trust=store, clock=clock, caches=caches, finder=finder)
    return EvaluatorService(bus=bus, routes=subscriptions(handler))


async def run_standalone() -> None:
    """Run the evaluator alone on RabbitMQ from `CERTMON_*` settings until SIGINT or SIGTERM (no database)."""
    await serve_one(bootstrap, needs_database=False)
