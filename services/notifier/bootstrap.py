"""Wiring of the notifier: the delivery log, the outbox relay, the renderer, one sender per configured
channel, and the alarm handler on queue `certmon.notifier.alarms`."""

import ssl
from pathlib import Path
from typing import TextIO

import asyncpg
import structlog

from services.notifier.adapters.console import ConsoleSender
from services.notifier.adapters.delivery_log import SCHEMA, PostgresDeliveryLog
from services.notifier.adapters.email import EmailSender
from services.notifier.adapters.rendering import Renderer
from services.notifier.domain.deliveries import ChannelKind, RetryPolicy
from services.notifier.handlers import QUEUE, AlarmHandler, subscriptions
from services.notifier.ports import Sender
from shared.broker import Bus
from shared.clock import Clock, utc_now
from shared.config import CertmonConfig
from shared.outbox import OutboxRelay
from shared.settings import Settings

log = structlog.get_logger(__name__)


class NotifierService:
    """The notifier as the composition root sees it: `start()` migrates, relays, consumes; `stop()` stops."""

    name = "notifier"

    def __init__(
        self, *, bus: Bus, delivery_log: PostgresDeliveryLog, relay: OutboxRelay, handler: AlarmHandler
    ) -> None:
        self._bus = bus
        self._delivery_log = delivery_log
        self._relay = relay
        self.handler = handler

    async def start(self) -> None:
        """Apply the `notifier` migrations, start the outbox relay and subscribe to alarm events."""
        await self._delivery_log.migrate()
        await self._relay.start()
        for route in subscriptions(self.handler):
            await self._bus.subscribe(route)
        log.info("notifier_started", queue=QUEUE)

    async def stop(self) -> None:
        """Stop the relay after publishing what is pending; the bus (closed by its owner) stops consuming."""
        await self._relay.stop()


def smtp_tls_context(config: CertmonConfig) -> ssl.SSLContext | None:
    """The system trust plus `trust.ca_files` (an internal relay's CA), or None when there are none to add."""
    if not config.trust.ca_files:
        return None
    context = ssl.create_default_context()
    for ca_file in config.trust.ca_files:
        context.load_verify_locations(cafile=ca_file)
    return context


def bootstrap(
    settings: Settings,
    config: CertmonConfig,
    *,
    bus: Bus,
    pool: asyncpg.Pool | None,
    clock: Clock = utc_now,
    console_stream: TextIO | None = None,
    email_sender: Sender | None = None,
    console_sender: Sender | None = None,
    retry: RetryPolicy | None = None,
    templates_dir: Path | None = None,
    relay_poll_seconds: float = 1.0,
) -> NotifierService:
    """Build the notifier; email is a channel when `channels.email` is configured or a sender is given."""
    if pool is None:
        raise ValueError("the notifier needs PostgreSQL for its delivery log: pass a pool")
    senders: dict[ChannelKind, Sender] = {ChannelKind.CONSOLE: console_sender or ConsoleSender(console_stream)}
    if email_sender is not None:
        senders[ChannelKind.EMAIL] = email_sender
    elif config.channels.email is not None:
        senders[ChannelKind.EMAIL] = EmailSender(
            config.channels.email, clock=clock, tls_context=smtp_tls_context(config)
        )
    relay = OutboxRelay(pool, SCHEMA, bus, poll_seconds=relay_poll_seconds)
    delivery_log = PostgresDeliveryLog(pool, relay)
    handler = AlarmHandler(
        delivery_log=delivery_log,
        renderer=Renderer(public_url=settings.public_url, templates_dir=templates_dir),
        senders=senders,
        retry=retry or RetryPolicy(),
        clock=clock,
    )
    return NotifierService(bus=bus, delivery_log=delivery_log, relay=relay, handler=handler)
