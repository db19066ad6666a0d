"""The reporter's handlers on the in-memory history: each consumed event stored once, the newest evaluation per
target kept, deliveries kept with their outcome, every routing key bound on the one queue."""

from datetime import timedelta

import pytest
from pydantic import BaseModel
from structlog.testing import capture_logs

from services.reporter.adapters.memory import InMemoryHistory
from services.reporter.handlers import QUEUE, ReporterHandlers, subscriptions
from shared.broker import Message, Subscription
from shared.events import Acknowledgement, CloudEvent, NotificationResult, make_event
from tests.unit.reporter.reporter_factories import NOW, alarm, evaluation


@pytest.fixture
def history() -> InMemoryHistory:
    """An empty in-memory history."""
    return InMemoryHistory()


@pytest.fixture
def route(history: InMemoryHistory) -> Subscription:
    """The reporter's one subscription, its handlers on `history`."""
    [subscription] = subscriptions(ReporterHandlers(history))
    return subscription


async def deliver(route: Subscription, *events: CloudEvent) -> None:
    """Hand each event to the handler its routing key is bound to, as the bus would after validating it."""
    for event in events:
        handler = route.handler_for(event.routing_key)
        assert handler is not None, event.routing_key
        await handler(Message(event, event.payload()))


def event(routing_key: str, payload: BaseModel) -> CloudEvent:
    """A new envelope around `payload`."""
    return make_event(routing_key, payload, source="certmon/test")


def delivery(attempt: int, *, error: str | None = None) -> NotificationResult:
    """Attempt `attempt` (a minute apart) to deliver alarm a1's first event, failed when `error` says why."""
    return NotificationResult(
        alarm_id="a1",
        alarm_event_id="e1",
        channel="email",
        recipient="ops@example.com",
        attempt=attempt,
        error=error,
        at=NOW + timedelta(minutes=attempt),
    )


def test_one_queue_binds_every_consumed_routing_key() -> None:
    """Evaluations, the five alarm transitions and both delivery outcomes arrive on the reporter's queue."""
    [subscription] = subscriptions(ReporterHandlers(InMemoryHistory()))
    assert (subscription.service, subscription.queue) == ("reporter", QUEUE)
    assert set(subscription.routing_keys) == {
        "certificate.evaluated.v1",
        "alarm.raised.v1",
        "alarm.changed.v1",
        "alarm.reminded.v1",
        "alarm.acknowledged.v1",
        "alarm.resolved.v1",
        "notification.sent.v1",
        "notification.failed.v1",
    }


async def test_an_evaluation_becomes_its_targets_latest(route: Subscription, history: InMemoryHistory) -> None:
    """A consumed evaluation is stored and listed as its target's latest."""
    stored = evaluation("a.example", days=10)
    await deliver(route, event("certificate.evaluated.v1", stored))
    assert await history.latest() == [stored]


async def test_a_redelivered_evaluation_is_stored_once(route: Subscription, history: InMemoryHistory) -> None:
    """The same envelope delivered three times leaves one evaluation, and the repeats are logged as ignored."""
    stored = evaluation("a.example", days=10)
    redelivered = event("certificate.evaluated.v1", stored)
    with capture_logs() as logs:
        await deliver(route, redelivered, redelivered, redelivered)
    assert stored.certificate is not None
    assert await history.evaluations_of(stored.certificate.fingerprint_sha256) == [stored]
    assert [entry["event"] for entry in logs] == ["event_stored", *["event_redelivered_ignored"] * 2]


async def test_the_newest_evaluation_wins_whatever_the_arrival_order(
    route: Subscription, history: InMemoryHistory
) -> None:
    """An older evaluation arriving after a newer one is kept but does not become the target's latest."""
    newer = evaluation("a.example", days=10, level="warning", evaluated_at=NOW)
    older = evaluation("a.example", days=11, level="ok", evaluated_at=NOW - timedelta(hours=1))
    await deliver(route, event("certificate.evaluated.v1", newer), event("certificate.evaluated.v1", older))
    assert await history.latest() == [newer]
    assert newer.certificate is not None
    assert await history.evaluations_of(newer.certificate.fingerprint_sha256) == [newer, older]


def test_evaluations_are_handled_in_batches() -> None:
    """`certificate.evaluated.v1` has a batch handler, batches of 100 and a prefetch of two batches; nothing else
    is batched."""
    [subscription] = subscriptions(ReporterHandlers(InMemoryHistory()))
    assert set(subscription.batch_handlers) == {"certificate.evaluated.v1"}
    assert (subscription.batch_size, subscription.prefetch) == (100, 200)


async def test_a_batch_of_evaluations_is_stored_as_one_by_one(route: Subscription, history: InMemoryHistory) -> None:
    """The batch handler stores each evaluation as the single handler would: the newest per target is the latest,
    a redelivery (before or inside the batch) is ignored, and one log line counts both."""
    newer = evaluation("a.example", days=10, level="warning", evaluated_at=NOW)
    older = evaluation("a.example", days=11, level="ok", evaluated_at=NOW - timedelta(hours=1))
    other = evaluation("b.example", days=30)
    before = event("certificate.evaluated.v1", other)
    await deliver(route, before)
    batch = [event("certificate.evaluated.v1", e) for e in (newer, older)] + [before]
    with capture_logs() as logs:
        await route.batch_handlers["certificate.evaluated.v1"]([Message(e, e.payload()) for e in [*batch, batch[0]]])
    assert await history.latest() == [newer, other]
    assert newer.certificate is not None
    assert await history.evaluations_of(newer.certificate.fingerprint_sha256) == [newer, older]
    assert [(entry["event"], entry["stored"], entry["redelivered_ignored"]) for entry in logs] == [
        ("events_stored", 2, 2)
    ]


async def test_alarm_transitions_are_kept_once_each_in_order(route: Subscription, history: InMemoryHistory) -> None:
    """Every transition is kept under its event id in time order; a redelivery adds nothing."""
    ack = Acknowledgement(by="ops@example.com", at=NOW - timedelta(minutes=30), via="link")
    raised = event("alarm.raised.v1", alarm("a1", "raised", "warning", NOW - timedelta(hours=2)))
    changed = event("alarm.changed.v1", alarm("a1", "changed", "critical", NOW - timedelta(hours=1)))
    reminded = event("alarm.reminded.v1", alarm("a1", "reminded", "critical", NOW - timedelta(minutes=40)))
    acknowledged = event("alarm.acknowledged.v1", alarm("a1", "acknowledged", "critical", ack.at, acknowledgement=ack))
    resolved = event("alarm.resolved.v1", alarm("a1", "resolved", "ok", NOW))
    await deliver(route, resolved, raised, acknowledged, changed, reminded, raised)
    assert [(event_id, a.transition, a.state) for event_id, a in await history.alarm_events()] == [
        (raised.id, "raised", "open"),
        (changed.id, "changed", "open"),
        (reminded.id, "reminded", "open"),
        (acknowledged.id, "acknowledged", "acknowledged"),
        (resolved.id, "resolved", "resolved"),
    ]


async def test_a_sent_notification_is_ok_and_a_failed_one_is_not(route: Subscription, history: InMemoryHistory) -> None:
    """The routing key, not the payload, says whether a delivery succeeded; each outcome is kept once."""
    failed = event("notification.failed.v1", delivery(1, error="connection refused"))
    sent = event("notification.sent.v1", delivery(2))
    await deliver(route, failed, sent, sent)
    assert [(n.attempt, n.ok, n.error) for n in await history.notifications(["a1"])] == [
        (1, False, "connection refused"),
        (2, True, None),
    ]
