"""The alarm handler on the in-memory delivery log with recording senders: plan, skip what was sent, retry,
record every outcome with its `notification.*.v1`, and make a redelivered event do nothing."""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.notifier.adapters.memory import InMemoryDeliveryLog
from services.notifier.adapters.rendering import Renderer
from services.notifier.domain.deliveries import ChannelKind, Delivery, RenderedMessage, RetryPolicy, plan_deliveries
from services.notifier.handlers import CONSUMER, AlarmHandler
from services.notifier.ports import DeliveryError, DeliveryRecord
from shared.broker import Message
from shared.events import AlarmEvent, CloudEvent, OwnerRef, make_event
from tests.support.alarms import NOW

AlarmFactory = Callable[..., AlarmEvent]
NO_WAIT_RETRY = RetryPolicy(attempts=3, base_delay=0, max_delay=0)


@dataclass
class RecordingSender:
    """A sender that keeps what it sends; a recipient in `refusals` is refused with its errors, one per attempt,
    before it is accepted."""

    refusals: dict[str, list[DeliveryError]] = field(default_factory=dict)
    sent: list[tuple[Delivery, RenderedMessage]] = field(default_factory=list)

    async def send(self, delivery: Delivery, message: RenderedMessage) -> str | None:
        """Refuse with the recipient's next error, if one is left; else keep the message."""
        errors = self.refusals.get(delivery.recipient)
        if errors:
            raise errors.pop(0)
        self.sent.append((delivery, message))
        return None

    def recipients(self) -> list[str]:
        """Who was sent a message, sorted."""
        return sorted(delivery.recipient for delivery, _ in self.sent)


def transient(times: int) -> list[DeliveryError]:
    """`times` refusals worth retrying, like an SMTP 451."""
    return [DeliveryError("451 4.3.0 mailbox busy", transient=True) for _ in range(times)]


PERMANENT = [DeliveryError("550 5.1.1 no such user", transient=False)]


@dataclass
class Notifier:
    """The handler on a delivery log of its own, with an email and a console channel that record."""

    log: InMemoryDeliveryLog
    email: RecordingSender
    console: RecordingSender
    handler: AlarmHandler

    async def deliver(self, event: CloudEvent) -> None:
        """Hand the event to the handler as the bus does."""
        await self.handler(Message(event, AlarmEvent.model_validate(event.data)))

    def results(self) -> list[tuple[str, str, int, str | None]]:
        """(routing key, recipient, attempt, error) of every recorded notification event, sorted."""
        return sorted((e.routing_key, e.data["recipient"], e.data["attempt"], e.data["error"]) for e in self.log.outbox)

    def log_rows(self) -> list[tuple[str, str, int]]:
        """(recipient, status, attempts) of every delivery-log entry, sorted."""
        return sorted((r.delivery.recipient, r.status, r.attempts) for r in self.log.deliveries)


def notifier_with(
    email: RecordingSender | None = None,
    *,
    delivery_log: InMemoryDeliveryLog | None = None,
    templates_dir: Path | None = None,
) -> Notifier:
    """The handler with `email` (by default a sender that accepts everything), a recording console and
    `delivery_log` (by default an empty one)."""
    email, console, delivery_log = email or RecordingSender(), RecordingSender(), delivery_log or InMemoryDeliveryLog()
    handler = AlarmHandler(
        delivery_log=delivery_log,
        renderer=Renderer(public_url="https://certmon.example.com", templates_dir=templates_dir),
        senders={ChannelKind.EMAIL: email, ChannelKind.CONSOLE: console},
        retry=NO_WAIT_RETRY,
        clock=lambda: NOW,
    )
    return Notifier(delivery_log, email, console, handler)


def alarm_event(alarm: AlarmEvent, routing_key: str = "alarm.raised.v1") -> CloudEvent:
    """The alarm as the alarmer would publish it."""
    return make_event(routing_key, alarm, source="certmon/alarmer", subject=alarm.alarm_id)


async def test_individual_owner_gets_one_message_per_address(make_alarm: AlarmFactory) -> None:
    """Each address of an individual owner gets its own message, log entry and notification.sent.v1."""
    notifier = notifier_with()
    event = alarm_event(make_alarm())
    await notifier.deliver(event)

    assert notifier.email.recipients() == ["alice@example.com", "bob@example.com"]
    assert notifier.console.sent == []
    assert notifier.results() == [
        ("notification.sent.v1", "alice@example.com", 1, None),
        ("notification.sent.v1", "bob@example.com", 1, None),
    ]
    sent = notifier.log.outbox[0]
    assert (sent.source, sent.subject) == ("certmon/notifier", "alarm-1")
    assert sent.data["alarm_id"] == "alarm-1" and sent.data["alarm_event_id"] == event.id
    assert sent.data["channel"] == "email" and sent.data["at"] == NOW.isoformat().replace("+00:00", "Z")
    assert notifier.log_rows() == [("alice@example.com", "sent", 1), ("bob@example.com", "sent", 1)]


async def test_owner_without_addresses_is_told_on_the_console(make_alarm: AlarmFactory) -> None:
    """An owner with no email address gets the notification on the console, recorded as sent."""
    notifier = notifier_with()
    await notifier.deliver(alarm_event(make_alarm(owners=[OwnerRef(name="platform-team", rule="server web-01")])))
    assert notifier.console.recipients() == ["platform-team"]
    assert notifier.results() == [("notification.sent.v1", "platform-team", 1, None)]


async def test_redelivered_alarm_event_sends_nothing_new(make_alarm: AlarmFactory) -> None:
    """The same alarm event delivered again sends no message and records no new event."""
    notifier = notifier_with()
    event = alarm_event(make_alarm())
    await notifier.deliver(event)
    await notifier.deliver(event)
    assert len(notifier.email.sent) == 2
    assert len(notifier.log.outbox) == 2
    assert await notifier.log.is_processed(event.id, CONSUMER)


class _CrashBeforeMarking(InMemoryDeliveryLog):
    """A delivery log that, while `crashing`, fails to mark an event processed, as a process dying right there."""

    crashing = True

    async def mark_processed(self, event_id: str, consumer: str) -> None:
        """Fail while crashing, else mark."""
        if self.crashing:
            raise ConnectionError("gone before marking")
        await super().mark_processed(event_id, consumer)


async def test_redelivery_after_a_crash_sends_only_what_was_not_sent(make_alarm: AlarmFactory) -> None:
    """An event redelivered after a crash skips deliveries already sent; the retried entry adds up its attempts."""
    delivery_log = _CrashBeforeMarking()
    notifier = notifier_with(RecordingSender({"bob@example.com": transient(3)}), delivery_log=delivery_log)
    event = alarm_event(make_alarm())
    with pytest.raises(ConnectionError):
        await notifier.deliver(event)
    delivery_log.crashing = False
    await notifier.deliver(event)

    assert notifier.email.recipients() == ["alice@example.com", "bob@example.com"]
    assert notifier.log_rows() == [("alice@example.com", "sent", 1), ("bob@example.com", "sent", 4)]
    assert await delivery_log.is_processed(event.id, CONSUMER)


async def test_permanent_refusal_fails_that_recipient_alone_at_once(make_alarm: AlarmFactory) -> None:
    """A permanent refusal for one address is recorded failed after one attempt; the others are sent."""
    owner = OwnerRef(
        name="shop-team",
        email=["alice@example.com", "mallory@example.com", "bob@example.com"],
        delivery="individual",
        rule="default",
    )
    notifier = notifier_with(RecordingSender({"mallory@example.com": list(PERMANENT)}))
    await notifier.deliver(alarm_event(make_alarm(owners=[owner])))
    assert notifier.results() == [
        ("notification.failed.v1", "mallory@example.com", 1, "550 5.1.1 no such user"),
        ("notification.sent.v1", "alice@example.com", 1, None),
        ("notification.sent.v1", "bob@example.com", 1, None),
    ]
    assert notifier.email.recipients() == ["alice@example.com", "bob@example.com"]


async def test_transient_failure_is_retried_then_recorded_failed(make_alarm: AlarmFactory) -> None:
    """A transient refusal is retried up to the policy's attempts, then failed; the event still completes."""
    notifier = notifier_with(RecordingSender({"bob@example.com": transient(5)}))
    event = alarm_event(make_alarm())
    await notifier.deliver(event)
    assert notifier.results() == [
        ("notification.failed.v1", "bob@example.com", 3, "451 4.3.0 mailbox busy"),
        ("notification.sent.v1", "alice@example.com", 1, None),
    ]
    assert notifier.log_rows() == [("alice@example.com", "sent", 1), ("bob@example.com", "failed", 3)]
    assert await notifier.log.is_processed(event.id, CONSUMER)


async def test_transient_failure_that_clears_is_sent_on_a_later_attempt(make_alarm: AlarmFactory) -> None:
    """A delivery refused transiently and then accepted is recorded sent with the attempts it took."""
    notifier = notifier_with(RecordingSender({"bob@example.com": transient(2)}))
    await notifier.deliver(alarm_event(make_alarm()))
    assert ("notification.sent.v1", "bob@example.com", 3, None) in notifier.results()
    assert notifier.email.recipients() == ["alice@example.com", "bob@example.com"]


async def test_message_that_cannot_be_rendered_is_recorded_failed(make_alarm: AlarmFactory, tmp_path: Path) -> None:
    """A template that does not render fails each delivery with no attempt made, and nothing is sent."""
    (tmp_path / "alarm.txt.j2").write_text("{{ taregt }}", encoding="utf-8")
    notifier = notifier_with(templates_dir=tmp_path)
    await notifier.deliver(alarm_event(make_alarm()))
    assert [r[:3] for r in notifier.results()] == [
        ("notification.failed.v1", "alice@example.com", 0),
        ("notification.failed.v1", "bob@example.com", 0),
    ]
    assert "taregt" in (notifier.results()[0][3] or "")
    assert notifier.email.sent == []


async def test_changed_and_resolved_alarms_are_notified(make_alarm: AlarmFactory) -> None:
    """Level changes and resolutions reach the owners too, with subjects that say so."""
    owner = OwnerRef(name="platform-team", email=["platform@example.com"], rule="server web-01")
    changed = make_alarm(owners=[owner], transition="changed", level="warning", previous_level="info")
    resolved = make_alarm(owners=[owner], transition="resolved", level="ok", previous_level="warning")
    notifier = notifier_with()
    await notifier.deliver(alarm_event(changed, "alarm.changed.v1"))
    await notifier.deliver(alarm_event(resolved, "alarm.resolved.v1"))
    assert [message.subject for _, message in notifier.email.sent] == [
        "[certmon] WARNING changed from INFO: shop.example.com:443 expires in 5 days",
        "[certmon] OK resolved: shop.example.com:443 (was WARNING)",
    ]


class _BrokenLog(InMemoryDeliveryLog):
    """A delivery log that cannot record, as a database that is away."""

    async def record(self, record: DeliveryRecord, result: CloudEvent) -> None:
        """Fail like a lost connection."""
        raise ConnectionError("delivery log unreachable")


async def test_outcome_that_cannot_be_recorded_fails_the_event_for_redelivery(make_alarm: AlarmFactory) -> None:
    """When an outcome cannot be recorded the handler raises and leaves the event unprocessed, so it comes back."""
    notifier = notifier_with(delivery_log=_BrokenLog())
    event = alarm_event(make_alarm())
    with pytest.raises(ExceptionGroup) as raised:
        await notifier.deliver(event)
    assert raised.group_contains(ConnectionError)
    assert not await notifier.log.is_processed(event.id, CONSUMER)


async def test_result_event_ids_derive_from_the_delivery_and_its_outcome(make_alarm: AlarmFactory) -> None:
    """The same delivery with the same outcome yields the same event id, so a replay is dropped downstream."""
    event = alarm_event(make_alarm())
    first, second = notifier_with(), notifier_with()
    await first.deliver(event)
    await second.deliver(event)
    assert sorted(e.id for e in first.log.outbox) == sorted(e.id for e in second.log.outbox)
    keys = {d.idempotency_key for d in plan_deliveries(make_alarm(), event.id, channels=(ChannelKind.EMAIL,))}
    assert {r.delivery.idempotency_key for r in first.log.deliveries} == keys
    assert all(r.at == NOW for r in first.log.deliveries)
