"""Wiring of the notifier: the delivery log, the outbox relay, the renderer (its templates checked here), one
sender per configured channel, the alarm handler on queue `certmon.notifier.alarms` and the retry sweep."""

import ssl
from typing import TextIO

import asyncpg
import structlog

from services.notifier.adapters.console import ConsoleSender
from services.notifier.adapters.delivery_log import SCHEMA, PostgresDeliveryLog
from services.notifier.adapters.email import EmailSender
from services.notifier.adapters.rendering import AckLinks, Renderer
from services.notifier.adapters.snmp import SnmpSender
from services.notifier.adapters.webhook import WebhookSender
from services.notifier.domain.deliveries import ChannelKind, RetryPolicy
from services.notifier.handlers import QUEUE, AlarmHandler, subscriptions
from services.notifier.ports import Sender
from services.notifier.service_layer.delivering import Deliverer, RetrySweep
from shared.action_links import ActionLinkSigner, link_secret_key
from shared.address_policy import AddressPolicy
from shared.broker import Bus
from shared.clock import Clock, utc_now
from shared.config import CertmonConfig
from shared.outbox import OutboxRelay
from shared.periodic import PeriodicTask
from shared.retention import Retention, dedup_retention
from shared.settings import RuntimeConfigError, Settings
from shared.template_checks import template_problems

log = structlog.get_logger(__name__)

RETRY_LOOP = "notifier.retry_sweep"


class NotifierService:
    """The notifier as the composition root sees it: `start()` migrates, relays, consumes and sweeps retries;
    `stop()` stops them and closes the webhooks' HTTP client and the SNMP engines."""

    name = "notifier"

    def __init__(
        self,
        *,
        bus: Bus,
        delivery_log: PostgresDeliveryLog,
        relay: OutboxRelay,
        handler: AlarmHandler,
        retry_loop: PeriodicTask,
        retention: Retention,
        webhooks: WebhookSender | None = None,
        snmp: SnmpSender | None = None,
    ) -> None:
        self._bus = bus
        self._delivery_log = delivery_log
        self._relay = relay
        self.handler = handler
        self.retry_loop = retry_loop
        self._retention = retention
        self._webhooks = webhooks
        self._snmp = snmp

    async def start(self) -> None:
        """Apply the `notifier` migrations, start the outbox relay and the retry sweep, subscribe to alarm events."""
        await self._delivery_log.migrate()
        await self._relay.start()
        await self.retry_loop.start()
        await self._retention.start()
        for route in subscriptions(self.handler):
            await self._bus.subscribe(route)
        log.info("notifier_started", queue=QUEUE)

    async def stop(self) -> None:
        """Stop the retry sweep (a send in progress is retried after its lease), then the relay after publishing
        what is pending; the bus (closed by its owner) stops consuming."""
        await self._retention.stop()
        await self.retry_loop.stop()
        await self._relay.stop()
        if self._webhooks is not None:
            await self._webhooks.aclose()
        if self._snmp is not None:
            self._snmp.close()


def tls_context(config: CertmonConfig) -> ssl.SSLContext | None:
    """The system trust plus `trust.ca_files` (an internal relay's or webhook's CA), or None when there are none
    to add."""
    if not config.trust.ca_files:
        return None
    context = ssl.create_default_context()
    for ca_file in config.trust.ca_files:
        context.load_verify_locations(cafile=ca_file)
    return context


def retry_policy(config: CertmonConfig) -> RetryPolicy:
    """`channels.retry` as the domain's retry policy."""
    retry = config.channels.retry
    return RetryPolicy(
        attempts=retry.attempts,
        base_delay=retry.backoff,
        max_delay=retry.max_backoff,
        give_up_after=retry.give_up_after,
    )


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
    links: ActionLinkSigner | None = None,
    relay_poll_seconds: float = 1.0,
    retry_sweep_seconds: float = 5.0,
) -> NotifierService:
    """Build the notifier; email is a channel when `channels.email` is configured or a sender is given, webhooks
    and SNMP when `channels.webhook` / `channels.snmp` list any. Raises RuntimeConfigError when a notification
    template does not render."""
    if pool is None:
        raise ValueError("the notifier needs PostgreSQL for its delivery log: pass a pool")
    email = config.channels.email
    renderer = Renderer(public_url=settings.public_url, templates_dir=email.templates if email else None)
    renderer.validate()
    senders: dict[ChannelKind, Sender] = {
        ChannelKind.CONSOLE: console_sender or ConsoleSender(renderer, console_stream)
    }
    if email_sender is not None:
        senders[ChannelKind.EMAIL] = email_sender
    elif email is not None:
        ack_links = AckLinks(
            links or ActionLinkSigner(link_secret_key(settings)),
            public_url=settings.public_url,
            expires_seconds=email.ack_link_expires,
            clock=clock,
        )
        senders[ChannelKind.EMAIL] = EmailSender(
            email, renderer=renderer, links=ack_links, clock=clock, tls_context=tls_context(config)
        )
    webhooks = None
    if config.channels.webhook:
        webhooks = WebhookSender(
            config.channels.webhook,
            policy=AddressPolicy.from_scanning(config.scanning),
            public_url=settings.public_url,
            tls_context=tls_context(config),
        )
        senders[ChannelKind.WEBHOOK] = webhooks
    snmp = None
    if config.channels.snmp:
        if problems := template_problems(config):
            raise RuntimeConfigError("; ".join(str(problem) for problem in problems))
        snmp = SnmpSender(config.channels.snmp)
        senders[ChannelKind.SNMP] = snmp
    relay = OutboxRelay(pool, SCHEMA, bus, poll_seconds=relay_poll_seconds)
    delivery_log = PostgresDeliveryLog(pool, relay)
    deliverer = Deliverer(delivery_log=delivery_log, senders=senders, retry=retry or retry_policy(config), clock=clock)
    # The lease outlasts the slowest send a sweep may make, so no other replica claims a delivery being sent
    # (an SNMP trap is fire-and-forget, bounded by its own short timeout).
    timeouts = [email.timeout if email else 0, *(w.timeout for w in config.channels.webhook.values())]
    sweep = RetrySweep(deliverer, delivery_log, clock=clock, lease=60.0 + 2 * max(timeouts))
    return NotifierService(
        bus=bus,
        delivery_log=delivery_log,
        relay=relay,
        handler=AlarmHandler(delivery_log=delivery_log, deliverer=deliverer),
        retry_loop=PeriodicTask(RETRY_LOOP, sweep, interval=retry_sweep_seconds),
        retention=dedup_retention(pool, SCHEMA, clock=clock),
        webhooks=webhooks,
        snmp=snmp,
    )
