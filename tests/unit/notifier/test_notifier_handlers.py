"""The alarm handler and the retry sweep on the in-memory delivery log with recording senders: plan, skip
what was recorded, retry in process and then from the log, record every outcome with its `notification.*.v1`,
and make a redelivered event do nothing."""

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from services.notifier.adapters.console import ConsoleSender
from services.notifier.adapters.memory import InMemoryDeliveryLog
from services.notifier.adapters.rendering import Renderer, subject_line
from services.notifier.domain.deliveries import ChannelKind, Delivery, Notice, RetryPolicy, plan_deliveries
from services.notifier.handlers import CONSUMER, ROUTING_KEYS, AlarmHandler, subscriptions
from services.notifier.ports import DeliveryError, DeliveryRecord, Sender
from services.notifier.service_layer.delivering import Deliverer, RetrySweep
from shared.broker import Message
from shared.events import AlarmEvent, CloudEvent, OwnerRef, make_event
from tests.support.alarms import NOW

AlarmFactory = Callable[..., AlarmEvent]
#: Three tries in process, then every 10 s up to a minute from the log, for an hour.
RETRY = RetryPolicy(attempts=3, base_delay=0, max_delay=60, give_up_after=3600)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        """The current test time."""
        return self.now


async def no_sleep(_: float) -> None:
    """Backoff without waiting."""


@dataclass
class RecordingSender:
    """A sender that keeps what it sends; a recipient in `refusals` is refused with its errors, one per attempt,
    before it is accepted."""

    refusals: dict[str, list[DeliveryError]] = field(default_factory=dict)
    sent: list[tuple[Delivery, Notice]] = field(default_factory=list)

    async def send(self, delivery: Delivery, notice: Notice) -> str | None:
        """Refuse with the recipient's next error, if one is left; else keep the notice."""
        errors = self.refusals.get(delivery.recipient)
        if errors:
            raise errors.pop(0)
        self.sent.append((delivery, notice))
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
    """The handler and the retry sweep on a delivery log of their own, with an email and a console channel that
    record, and a clock the test moves."""

    log: InMemoryDeliveryLog
    email: RecordingSender
    console: RecordingSender
    handler: AlarmHandler
    sweep: RetrySweep
    clock: Clock

    async def deliver(self, event: CloudEvent) -> None:
        """Hand the event to the handler as the bus does."""
        await self.handler(Message(event, AlarmEvent.model_validate(event.data)))

    async def retry_at(self, after: timedelta) -> int:
        """Move the clock on by `after` and run the retry sweep once; returns how many it tried."""
        self.clock.now += after
        return await self.sweep()

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
    console: Sender | None = None,
) -> Notifier:
    """The handler with `email` (by default a sender that accepts everything), `console` (by default one that
    records) and `delivery_log` (by default an empty one)."""
    email, delivery_log, clock = email or RecordingSender(), delivery_log or InMemoryDeliveryLog(), Clock()
    recording_console = RecordingSender()
    senders = {ChannelKind.EMAIL: email, ChannelKind.CONSOLE: console or recording_console}
    deliverer = Deliverer(delivery_log=delivery_log, senders=senders, retry=RETRY, clock=clock, sleep=no_sleep)
    handler = AlarmHandler(delivery_log=delivery_log, deliverer=deliverer)
    sweep = RetrySweep(deliverer, delivery_log, clock=clock, lease=300)
    return Notifier(delivery_log, email, recording_console, handler, sweep, clock)


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


async def test_redelivery_after_a_crash_sends_only_what_was_not_recorded(make_alarm: AlarmFactory) -> None:
    """An event redelivered after a crash sends nothing recorded already: a retrying delivery is the sweep's,
    which sends it once, its attempts adding up."""
    delivery_log = _CrashBeforeMarking()
    notifier = notifier_with(RecordingSender({"bob@example.com": transient(3)}), delivery_log=delivery_log)
    event = alarm_event(make_alarm())
    with pytest.raises(ConnectionError):
        await notifier.deliver(event)
    delivery_log.crashing = False
    await notifier.deliver(event)
    assert notifier.log_rows() == [("alice@example.com", "sent", 1), ("bob@example.com", "retrying", 3)]

    assert await notifier.retry_at(timedelta(minutes=1)) == 1
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


async def test_transient_failure_is_handed_to_the_log_with_its_next_attempt(make_alarm: AlarmFactory) -> None:
    """A transient refusal is retried in process up to the policy's attempts, then recorded retrying with a
    notification.failed.v1 that says when it is tried next; the event still completes."""
    notifier = notifier_with(RecordingSender({"bob@example.com": transient(5)}))
    event = alarm_event(make_alarm())
    await notifier.deliver(event)
    assert notifier.results() == [
        ("notification.failed.v1", "bob@example.com", 3, "451 4.3.0 mailbox busy"),
        ("notification.sent.v1", "alice@example.com", 1, None),
    ]
    failed = next(e for e in notifier.log.outbox if e.routing_key == "notification.failed.v1")
    assert failed.data["next_attempt_at"] == (NOW + timedelta(seconds=0)).isoformat().replace("+00:00", "Z")
    assert failed.data["transition"] == "raised"
    assert notifier.log_rows() == [("alice@example.com", "sent", 1), ("bob@example.com", "retrying", 3)]
    assert await notifier.log.is_processed(event.id, CONSUMER)


async def test_sweep_retries_with_doubling_backoff_until_sent(make_alarm: AlarmFactory) -> None:
    """The sweep tries a retrying delivery once per due round, each wait twice the last, and records it sent."""
    retry = RetryPolicy(attempts=1, base_delay=10, max_delay=25, give_up_after=3600)
    assert [retry.delay_after(n) for n in (1, 2, 3, 4)] == [10, 20, 25, 25]
    notifier = notifier_with(RecordingSender({"bob@example.com": transient(3)}))
    await notifier.deliver(alarm_event(make_alarm()))
    for _ in range(3):
        await notifier.retry_at(timedelta(minutes=1))
    assert notifier.log_rows() == [("alice@example.com", "sent", 1), ("bob@example.com", "sent", 4)]
    assert ("notification.sent.v1", "bob@example.com", 4, None) in notifier.results()
    assert await notifier.retry_at(timedelta(hours=1)) == 0


async def test_sweep_leaves_a_delivery_alone_until_it_is_due(make_alarm: AlarmFactory) -> None:
    """A retrying delivery is not tried before its next attempt is due, nor again while a claim holds it."""
    delivery_log = InMemoryDeliveryLog()
    notifier = notifier_with(RecordingSender({"bob@example.com": transient(3)}), delivery_log=delivery_log)
    await notifier.deliver(alarm_event(make_alarm()))
    claimed = await delivery_log.claim_due(NOW - timedelta(seconds=1), lease_until=NOW, limit=10)
    assert claimed == []
    first = await delivery_log.claim_due(NOW, lease_until=NOW + timedelta(minutes=5), limit=10)
    assert [p.delivery.recipient for p in first] == ["bob@example.com"]
    assert await delivery_log.claim_due(NOW + timedelta(minutes=4), lease_until=NOW, limit=10) == []


async def test_sweep_gives_up_after_give_up_after_with_a_final_failure(make_alarm: AlarmFactory) -> None:
    """A delivery still failing when give_up_after has run out is recorded failed for good, its last
    notification.failed.v1 without a next attempt, and is never tried again."""
    notifier = notifier_with(RecordingSender({"bob@example.com": transient(100)}))
    await notifier.deliver(alarm_event(make_alarm()))
    for _ in range(70):
        await notifier.retry_at(timedelta(minutes=1))
    rows = dict((r, (s, n)) for r, s, n in notifier.log_rows())
    assert rows["bob@example.com"][0] == "failed"
    last = notifier.log.outbox[-1]
    assert (last.routing_key, last.data["recipient"], last.data["next_attempt_at"]) == (
        "notification.failed.v1",
        "bob@example.com",
        None,
    )
    assert await notifier.retry_at(timedelta(days=1)) == 0


def test_retry_policy_stops_at_give_up_after() -> None:
    """The next attempt never falls after the deadline, and there is none once it has passed."""
    retry = RetryPolicy(attempts=3, base_delay=60, max_delay=600, give_up_after=3600)
    start = NOW
    assert retry.next_attempt_at(first_attempt_at=start, now=start, attempts=3) == start + timedelta(seconds=240)
    near = start + timedelta(seconds=3500)
    assert retry.next_attempt_at(first_attempt_at=start, now=near, attempts=9) == start + timedelta(seconds=3600)
    assert retry.next_attempt_at(first_attempt_at=start, now=start + timedelta(seconds=3600), attempts=9) is None


def test_all_five_alarm_transitions_reach_the_handler() -> None:
    """The notifier's queue takes raised, changed, reminded, acknowledged and resolved alarm events."""
    handler = notifier_with().handler
    (route,) = subscriptions(handler)
    assert sorted(route.handlers) == sorted(ROUTING_KEYS)
    assert {key.split(".")[1] for key in ROUTING_KEYS} == {"raised", "changed", "reminded", "acknowledged", "resolved"}


async def test_transient_failure_that_clears_is_sent_on_a_later_attempt(make_alarm: AlarmFactory) -> None:
    """A delivery refused transiently and then accepted is recorded sent with the attempts it took."""
    notifier = notifier_with(RecordingSender({"bob@example.com": transient(2)}))
    await notifier.deliver(alarm_event(make_alarm()))
    assert ("notification.sent.v1", "bob@example.com", 3, None) in notifier.results()
    assert notifier.email.recipients() == ["alice@example.com", "bob@example.com"]


async def test_message_that_cannot_be_rendered_fails_at_once(make_alarm: AlarmFactory, tmp_path: Path) -> None:
    """A template that does not render is a permanent failure: one attempt, failed for good, nothing printed."""
    (tmp_path / "alarm.txt.j2").write_text("{{ taregt }}", encoding="utf-8")
    stream = io.StringIO()
    console = ConsoleSender(Renderer(public_url="https://certmon.example.com", templates_dir=tmp_path), stream)
    notifier = notifier_with(console=console)
    await notifier.deliver(alarm_event(make_alarm(owners=[OwnerRef(name="ops", rule="default")])))
    assert [r[:3] for r in notifier.results()] == [("notification.failed.v1", "ops", 1)]
    assert "taregt" in (notifier.results()[0][3] or "")
    assert notifier.log_rows() == [("ops", "failed", 1)]
    assert stream.getvalue() == ""


async def test_changed_and_resolved_alarms_are_notified(make_alarm: AlarmFactory) -> None:
    """Level changes and resolutions reach the owners too, with subjects that say so."""
    owner = OwnerRef(name="platform-team", email=["platform@example.com"], rule="server web-01")
    changed = make_alarm(owners=[owner], transition="changed", level="warning", previous_level="info")
    resolved = make_alarm(owners=[owner], transition="resolved", level="ok", previous_level="warning")
    notifier = notifier_with()
    await notifier.deliver(alarm_event(changed, "alarm.changed.v1"))
    await notifier.deliver(alarm_event(resolved, "alarm.resolved.v1"))
    assert [subject_line(notice.alarm) for _, notice in notifier.email.sent] == [
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


class _LogAwayOnce(InMemoryDeliveryLog):
    """A delivery log whose database is away for the first `away` records, then back."""

    def __init__(self, away: int) -> None:
        super().__init__()
        self.away = away

    async def record(self, record: DeliveryRecord, result: CloudEvent) -> None:
        """Fail like a lost connection while away, then record."""
        if self.away:
            self.away -= 1
            raise ConnectionError("delivery log unreachable")
        await super().record(record, result)


async def test_a_delivery_sent_but_not_recorded_is_recorded_not_sent_again(make_alarm: AlarmFactory) -> None:
    """The database goes away between a send and its record: when the event is handled again (the dispatcher
    retries it in process, or the broker redelivers it to this notifier), what was sent is recorded as sent and
    nobody gets the message twice."""
    delivery_log = _LogAwayOnce(away=2)
    notifier = notifier_with(delivery_log=delivery_log)
    event = alarm_event(make_alarm())
    with pytest.raises(ExceptionGroup):
        await notifier.deliver(event)
    await notifier.deliver(event)
    assert notifier.email.recipients() == ["alice@example.com", "bob@example.com"]
    assert notifier.log_rows() == [("alice@example.com", "sent", 1), ("bob@example.com", "sent", 1)]
    assert await delivery_log.is_processed(event.id, CONSUMER)


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
