"""Wiring: the alarmer service from settings, config, a bus and a pool (the composition root calls this): the
PostgreSQL alarm store, its outbox relay, the reminder sweep, and the evaluation and acknowledgement handlers."""

import asyncpg
import structlog

from services.alarmer.adapters.repository import SCHEMA, PostgresAlarmStore
from services.alarmer.domain.ownership import Ownership
from services.alarmer.handlers import AcknowledgementHandler, EvaluationHandler, subscriptions
from services.alarmer.service_layer.metrics import start_series
from services.alarmer.service_layer.reminders import ReminderSweep
from shared.broker import Bus, Subscription
from shared.clock import Clock, utc_now
from shared.config import CertmonConfig
from shared.outbox import OutboxRelay
from shared.retention import Retention, dedup_retention
from shared.settings import Settings

log = structlog.get_logger(__name__)


class AlarmerService:
    """The alarmer: consumes evaluations and acknowledgement requests, keeps alarms and their history, sends
    reminders, publishes alarm events (outbox)."""

    name = "alarmer"

    def __init__(
        self,
        *,
        bus: Bus,
        store: PostgresAlarmStore,
        outbox: OutboxRelay,
        reminders: ReminderSweep,
        routes: list[Subscription],
        retention: Retention,
    ) -> None:
        self.bus, self.store, self.outbox, self.reminders, self.routes = bus, store, outbox, reminders, routes
        self.retention = retention

    async def start(self) -> None:
        """Migrate the `alarmer` schema, start the outbox relay, the reminder sweep and the pruning of processed ids
        and published outbox rows, then consume."""
        applied = await self.store.migrate()
        log.info("alarmer_migrated", applied=applied)
        await self.outbox.start()
        await self.reminders.start()
        await self.retention.start()
        for route in self.routes:
            await self.bus.subscribe(route)
        log.info("alarmer_started", queues=[route.queue for route in self.routes])

    async def stop(self) -> None:
        """Stop the reminder sweep, then the outbox relay after publishing what is pending (the bus and pool belong
        to the caller)."""
        await self.retention.stop()
        await self.reminders.stop()
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
    reminder_min_delay: float = 0.5,
    reminder_max_delay: float = 30.0,
) -> AlarmerService:
    """Build the alarmer; it keeps alarm state in PostgreSQL, so `pool` is required. The reminder sweep checks
    for due reminders between `reminder_min_delay` and `reminder_max_delay` seconds apart."""
    if pool is None:
        raise ValueError("the alarmer keeps alarm state in PostgreSQL: pass a pool")
    outbox = OutboxRelay(pool, SCHEMA, bus, poll_seconds=outbox_poll_seconds)
    store = PostgresAlarmStore(pool, outbox)
    # The config is read once per process (a new certmon.yaml takes a restart), so one index serves for good.
    ownership = Ownership(config)
    reminders = ReminderSweep(
        store, config, clock, min_delay=reminder_min_delay, max_delay=reminder_max_delay, ownership=ownership
    )
    evaluations = EvaluationHandler(
        store=store, config=config, clock=clock, reminder_scheduled=reminders.expect, ownership=ownership
    )
    acknowledgements = AcknowledgementHandler(store=store, clock=clock)
    routes = subscriptions(evaluations, acknowledgements)
    start_series()
    return AlarmerService(
        bus=bus,
        store=store,
        outbox=outbox,
        reminders=reminders,
        routes=routes,
        retention=dedup_retention(pool, SCHEMA, clock=clock),
    )
