"""Wiring: the alarmer service from settings, config, a bus and a pool (the composition root calls this): the
PostgreSQL alarm store, its outbox relay and the evaluation handler."""

import asyncpg
import structlog

from services.alarmer.adapters.repository import SCHEMA, PostgresAlarmStore
from services.alarmer.handlers import EvaluationHandler, subscriptions
from shared.broker import Bus, Subscription
from shared.clock import Clock, utc_now
from shared.config import CertmonConfig
from shared.outbox import OutboxRelay
from shared.settings import Settings

log = structlog.get_logger(__name__)


class AlarmerService:
    """The alarmer: consumes evaluations, keeps alarms and their history, publishes alarm events (outbox)."""

    name = "alarmer"

    def __init__(self, *, bus: Bus, store: PostgresAlarmStore, outbox: OutboxRelay, routes: list[Subscription]) -> None:
        self.bus, self.store, self.outbox, self.routes = bus, store, outbox, routes

    async def start(self) -> None:
        """Migrate the `alarmer` schema, start the outbox relay, then consume."""
        applied = await self.store.migrate()
        log.info("alarmer_migrated", applied=applied)
        await self.outbox.start()
        for route in self.routes:
            await self.bus.subscribe(route)
        log.info("alarmer_started", queues=[route.queue for route in self.routes])

    async def stop(self) -> None:
        """Stop the outbox relay after publishing what is pending (the bus and pool belong to the caller)."""
        await self.outbox.stop()
        log.info("alarmer_stopped")


def bootstrap(
    settings: Settings,
    config: CertmonConfig,
    *,
    bus: Bus,
    pool: asyncpg.Pool | None,
    clock: Clock = utc_now,
    outbox_poll_seconds: float = 1.0,
) -> AlarmerService:
    """Build the alarmer; it keeps alarm state in PostgreSQL, so `pool` is required."""
    if pool is None:
        raise ValueError("the alarmer keeps alarm state in PostgreSQL: pass a pool")
    outbox = OutboxRelay(pool, SCHEMA, bus, poll_seconds=outbox_poll_seconds)
    store = PostgresAlarmStore(pool, outbox)
    evaluations = EvaluationHandler(store=store, config=config, clock=clock)
    return AlarmerService(bus=bus, store=store, outbox=outbox, routes=subscriptions(evaluations))
