"""The notifier end to end on real PostgreSQL and SMTP with the in-memory bus: alarm events in, emails out,
one delivery-log row and one `notification.*.v1` per delivery, nothing sent twice. (The handler's behaviour is
specified in `tests/unit/notifier`, the delivery log's in `test_delivery_log_contract.py`.)"""

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from services.notifier.bootstrap import NotifierService, bootstrap
from services.notifier.domain.deliveries import RetryPolicy
from shared.action_links import ActionLinkSigner
from shared.broker import InMemoryBus
from shared.config import CertmonConfig
from shared.events import CloudEvent, make_event
from shared.settings import RuntimeConfigError, Settings

RESULTS = "test.notifications"
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


def email_config(port: int, **email: Any) -> dict[str, Any]:
    """A certmon.yaml with an email channel to the test server (plaintext on loopback unless overridden)."""
    channel = {"host": "127.0.0.1", "port": port, "starttls": False, "from": "certmon@example.com", "timeout": "5s"}
    return {"channels": {"email": channel | email}}


@dataclass
class Harness:
    """A started notifier, its bus, its console and its database."""

    bus: InMemoryBus
    service: NotifierService
    console: io.StringIO
    pool: asyncpg.Pool

    async def deliver(self, event: CloudEvent) -> None:
        """Publish an event and wait until it is handled and every result event is relayed."""
        await self.bus.publish(event)
        await self.bus.drain(30)
        async with asyncio.timeout(10):
            while await self.pool.fetchval("SELECT count(*) FROM notifier.outbox WHERE published_at IS NULL"):
                await asyncio.sleep(0.02)

    def results(self) -> list[tuple[str, str, int, str | None]]:
        """(routing key, recipient, attempt, error) of every published notification event, sorted."""
        return sorted(
            (e.routing_key, e.data["recipient"], e.data["attempt"], e.data["error"]) for e in self.bus.pending(RESULTS)
        )

    async def settled(self) -> None:
        """Wait until no delivery is left retrying and every result event is relayed."""
        async with asyncio.timeout(10):
            while await self.pool.fetchval("SELECT count(*) FROM notifier.deliveries WHERE status = 'retrying'"):
                await asyncio.sleep(0.02)
            while await self.pool.fetchval("SELECT count(*) FROM notifier.outbox WHERE published_at IS NULL"):
                await asyncio.sleep(0.02)

    async def log_rows(self) -> list[tuple[str, str, int]]:
        """(recipient, status, attempts) of every delivery-log row, sorted."""
        rows = await self.pool.fetch("SELECT recipient, status, attempts FROM notifier.deliveries ORDER BY 1")
        return [(r["recipient"], r["status"], r["attempts"]) for r in rows]


StartNotifier = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def start_notifier(pg_pool: asyncpg.Pool) -> AsyncIterator[StartNotifier]:
    """Bootstrap and start the notifier on a fresh database: `await start_notifier(config_dict)`."""
    started: list[Harness] = []

    async def start(config: dict[str, Any], **overrides: Any) -> Harness:
        bus = InMemoryBus()
        bus.declare(RESULTS, ["notification.#"])
        console = io.StringIO()
        service = bootstrap(
            Settings.model_construct(public_url="https://certmon.example.com"),
            CertmonConfig.model_validate(config),
            bus=bus,
            pool=pg_pool,
            console_stream=console,
            retry=FAST_RETRY,
            links=ActionLinkSigner(b"link-key-for-the-notifier-tests"),
            relay_poll_seconds=60,  # only the wake-up after each record publishes in time
            **({"retry_sweep_seconds": 0.05} | overrides),
        )
        await service.start()
        harness = Harness(bus, service, console, pg_pool)
        started.append(harness)
        return harness

    yield start
    for harness in started:
        await harness.service.stop()
        await harness.bus.close()


def alarm_event(alarm: Any, routing_key: str = "alarm.raised.v1") -> CloudEvent:
    """The alarm as the alarmer would publish it."""
    return make_event(routing_key, alarm, source="certmon/alarmer", subject=alarm.alarm_id)


async def test_individual_delivery_sends_one_email_per_address(smtp_server, start_notifier, make_alarm):
    """Each address of an individual owner gets its own email and its own notification.sent.v1."""
    event = alarm_event(make_alarm())
    with smtp_server() as server:
        notifier = await start_notifier(email_config(server.port))
        await notifier.deliver(event)
    assert sorted(got.rcpt_tos for got in server.received) == [["alice@example.com"], ["bob@example.com"]]
    assert notifier.results() == [
        ("notification.sent.v1", "alice@example.com", 1, None),
        ("notification.sent.v1", "bob@example.com", 1, None),
    ]
    sent = notifier.bus.pending(RESULTS)[0]
    assert sent.source == "certmon/notifier"
    assert sent.data["alarm_id"] == "alarm-1" and sent.data["alarm_event_id"] == event.id
    assert sent.data["channel"] == "email"
    assert await notifier.log_rows() == [("alice@example.com", "sent", 1), ("bob@example.com", "sent", 1)]
    assert notifier.bus.dead_letters == []


async def test_redelivery_after_a_crash_sends_nothing_twice(smtp_server, start_notifier, make_alarm):
    """If the notifier died before acking, the redelivered event skips what was recorded; the retry sweep sends
    the delivery that was still failing once the relay takes it, exactly once."""
    event = alarm_event(make_alarm())
    with smtp_server(refuse={"bob@example.com": "451 4.3.0 mailbox busy"}) as server:
        notifier = await start_notifier(email_config(server.port), retry_sweep_seconds=3600)
        await notifier.deliver(event)
        assert await notifier.log_rows() == [("alice@example.com", "sent", 1), ("bob@example.com", "retrying", 3)]
        # As if the process died after recording the deliveries but before marking the event processed.
        await notifier.pool.execute("DELETE FROM notifier.processed_events")
        server.recorder.refuse.clear()
        await notifier.deliver(event)
        notifier.service.retry_loop.wake()
        await notifier.settled()
    assert sorted(got.rcpt_tos for got in server.received) == [["alice@example.com"], ["bob@example.com"]]
    assert await notifier.log_rows() == [("alice@example.com", "sent", 1), ("bob@example.com", "sent", 4)]
    retrying = [e for e in notifier.bus.pending(RESULTS) if e.routing_key == "notification.failed.v1"]
    assert [e.data["next_attempt_at"] is not None for e in retrying] == [True]


async def test_retrying_delivery_survives_a_restart(smtp_server, start_notifier, make_alarm):
    """A delivery left retrying when the notifier stops is sent by the next notifier, from PostgreSQL."""
    event = alarm_event(make_alarm())
    with smtp_server(refuse={"bob@example.com": "451 4.3.0 mailbox busy"}) as server:
        first = await start_notifier(email_config(server.port), retry_sweep_seconds=3600)
        await first.deliver(event)
        await first.service.stop()
        server.recorder.refuse.clear()
        second = await start_notifier(email_config(server.port))
        await second.settled()
    assert sorted(got.rcpt_tos for got in server.received) == [["alice@example.com"], ["bob@example.com"]]
    assert await second.log_rows() == [("alice@example.com", "sent", 1), ("bob@example.com", "sent", 4)]


def test_a_template_that_does_not_render_stops_the_start(tmp_path, pg_pool):
    """Templates are checked at bootstrap: a broken email template names its file and line, a broken SNMP
    message_template its config path."""
    (tmp_path / "alarm.txt.j2").write_text("{{ target }}\n{{ level | nosuchfilter }}\n", encoding="utf-8")
    config = CertmonConfig.model_validate(email_config(25, templates=str(tmp_path)))
    with pytest.raises(RuntimeConfigError, match=r"alarm\.txt\.j2:2"):
        bootstrap(Settings.model_construct(), config, bus=InMemoryBus(), pool=pg_pool)
    missing = CertmonConfig.model_validate(email_config(25, templates=str(tmp_path / "missing")))
    with pytest.raises(RuntimeConfigError, match="not a directory"):
        bootstrap(Settings.model_construct(), missing, bus=InMemoryBus(), pool=pg_pool)
    snmp = CertmonConfig.model_validate(
        {"channels": {"snmp": {"noc": {"host": "127.0.0.1", "community_env": "C", "message_template": "{% if %}"}}}}
    )
    with pytest.raises(RuntimeConfigError, match=r"channels\.snmp\.noc\.message_template: template line 1"):
        bootstrap(Settings.model_construct(), snmp, bus=InMemoryBus(), pool=pg_pool)


async def test_without_email_channel_the_notification_is_printed(start_notifier, make_alarm):
    """With no email channel configured, the console gets the notification and it is logged as sent."""
    notifier = await start_notifier({})
    await notifier.deliver(alarm_event(make_alarm()))
    printed = notifier.console.getvalue()
    assert "[certmon] CRITICAL raised: shop.example.com:443 expires in 5 days" in printed
    assert "For: shop-team" in printed
    assert notifier.results() == [("notification.sent.v1", "shop-team", 1, None)]
    assert notifier.bus.pending(RESULTS)[0].data["channel"] == "console"


async def test_starttls_relay_trusted_through_the_configured_ca_files(
    smtp_server, smtp_pki, start_notifier, make_alarm
):
    """Bootstrap verifies the relay with `trust.ca_files`, so an internal CA's relay works with STARTTLS."""
    with smtp_server(tls_context=smtp_pki.server_context, require_starttls=True) as server:
        config = email_config(server.port, starttls=True) | {"trust": {"ca_files": [str(smtp_pki.cert_path)]}}
        notifier = await start_notifier(config)
        await notifier.deliver(alarm_event(make_alarm()))
    assert len(server.received) == 2
    assert [r[0] for r in notifier.results()] == ["notification.sent.v1"] * 2


async def test_malformed_alarm_event_is_rejected_not_swallowed(start_notifier):
    """An alarm event whose data does not validate is rejected until it is dead-lettered."""
    notifier = await start_notifier({})
    bad = CloudEvent(source="certmon/alarmer", type="io.certmon.alarm.raised.v1", data={"alarm_id": 1})
    await notifier.bus.publish(bad)
    await notifier.bus.drain(30)
    assert [(queue, event.id) for queue, event in notifier.bus.dead_letters] == [("certmon.notifier.alarms", bad.id)]
    assert notifier.results() == []


def test_bootstrap_requires_a_pool():
    """The delivery log lives in PostgreSQL, so a notifier without a pool is refused at wiring time."""
    with pytest.raises(ValueError, match="pool"):
        bootstrap(Settings.model_construct(), CertmonConfig(), bus=InMemoryBus(), pool=None)
