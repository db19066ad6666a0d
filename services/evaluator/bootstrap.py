"""Wiring: the evaluator service from settings, config and a bus (the composition root calls `bootstrap`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from services.evaluator.adapters.aia import AiaFetcher, aia_policy
from services.evaluator.adapters.trust import TrustStoreError, load_trust_store
from services.evaluator.domain import EvaluatorCaches, TrustStore
from services.evaluator.handlers import ObservationHandler, subscriptions
from services.evaluator.service_layer.evaluate_observation import Evaluator
from services.evaluator.service_layer.intermediate_finder import IntermediateFinder
from services.evaluator.service_layer.metrics import start_series
from shared.broker import Bus, Subscription
from shared.clock import Clock, utc_now
from shared.config import CertmonConfig
from shared.settings import RuntimeConfigError, Settings

if TYPE_CHECKING:
    import asyncpg  # the evaluator keeps no state; the pool is only part of every bootstrap's signature

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


def build_evaluator(
    config: CertmonConfig,
    *,
    extra_ca_files: Sequence[Path] = (),
    trust: TrustStore | None = None,
    aia: AiaFetcher | None = None,
) -> Evaluator:
    """What evaluates observations in this process: the configured trust store (plus `extra_ca_files`), one set
    of caches shared by every evaluation, and an intermediate finder fetching by AIA under the `scanning:` address
    policy. The evaluation handler and `certmon check` both evaluate through it. Raises TrustStoreError."""
    store = trust or load_trust_store([*config.trust.ca_files, *extra_ca_files], config.trust.replace_default)
    fetcher = aia or AiaFetcher(policy=aia_policy(config.scanning))
    caches = EvaluatorCaches()
    return Evaluator(config, store, caches, IntermediateFinder(aia=fetcher, caches=caches))


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
        evaluator = build_evaluator(config, trust=trust, aia=aia)
    except TrustStoreError as exc:  # a CA file that exists but holds no certificate: refuse to start, clearly
        raise RuntimeConfigError(f"trust store: {exc}") from exc
    handler = ObservationHandler(bus=bus, evaluator=evaluator, clock=clock)
    start_series()
    return EvaluatorService(bus=bus, routes=subscriptions(handler))
