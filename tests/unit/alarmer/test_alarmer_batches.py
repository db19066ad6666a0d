"""The evaluation handler's batches on the in-memory alarm store: a batch of evaluated events has the effect of
the same events one by one, in one unit of work (all or nothing)."""

from datetime import datetime

import pytest

from services.alarmer.adapters.memory import InMemoryAlarmStore, InMemoryUnitOfWork
from services.alarmer.handlers import (
    EVALUATED,
    EVALUATIONS_QUEUE,
    AcknowledgementHandler,
    EvaluationHandler,
    subscriptions,
)
from shared.events import CloudEvent
from tests.support.alarms import ALARMER_CONFIG, NOW, payloads
from tests.unit.alarmer.batch_scenario import BATCH_TRANSITIONS, in_batches, one_by_one, outcome_of, rounds


def handler_on(store: InMemoryAlarmStore, scheduled: list[datetime] | None = None) -> EvaluationHandler:
    """The handler on `store`, the test config and a stopped clock; it adds the due times it schedules to
    `scheduled`."""
    return EvaluationHandler(
        store=store,
        config=ALARMER_CONFIG,
        clock=lambda: NOW,
        reminder_scheduled=None if scheduled is None else scheduled.append,
    )


async def test_a_batch_has_the_effect_of_its_messages_one_by_one() -> None:
    """Redelivered and repeated ids, two evaluations of one target, stale evaluations: the batch leaves the alarm
    events, history, open alarms, health and claims that handling each message alone does."""
    deliveries = rounds()
    alone, batched = InMemoryAlarmStore(), InMemoryAlarmStore()
    await one_by_one(handler_on(alone), deliveries)
    await in_batches(handler_on(batched), deliveries[:1])
    first = len(batched.outbox)
    await in_batches(handler_on(batched), deliveries[1:])

    assert await outcome_of(batched, batched.outbox, deliveries) == await outcome_of(alone, alone.outbox, deliveries)
    assert [(p.transition, p.key.target_key, p.level) for p in payloads(batched.outbox[first:])] == BATCH_TRANSITIONS


class _FailingUnitOfWork(InMemoryUnitOfWork):
    """A unit of work of `_FailingStore`: its outbox write fails while the store says so."""

    def __init__(self, store: "_FailingStore") -> None:
        super().__init__(store)
        self._failing = store

    async def publish_later(self, event: CloudEvent) -> None:
        """Fail like a lost connection at the store's `fail_at`-th event, else queue it."""
        self._failing.queued += 1
        if self._failing.queued == self._failing.fail_at:
            raise ConnectionError("outbox unreachable")
        await super().publish_later(event)


class _FailingStore(InMemoryAlarmStore):
    """An in-memory store whose `fail_at`-th queued event (counted over all units of work) fails."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at, self.queued = fail_at, 0

    def unit_of_work(self) -> InMemoryUnitOfWork:
        """A unit of work that counts the events it queues."""
        return _FailingUnitOfWork(self)


async def test_a_failed_batch_leaves_nothing_and_its_messages_then_apply_alone() -> None:
    """A batch failing at its last transition commits nothing of it and schedules no reminder; handed over one by
    one afterwards (as the bus does), its messages have their usual effect."""
    first, batch = rounds()
    failing = _FailingStore(fail_at=3 + len(BATCH_TRANSITIONS))
    scheduled: list[datetime] = []
    handler = handler_on(failing, scheduled)
    await handler.handle_batch(first)
    after_first = await outcome_of(failing, failing.outbox, [first])
    told = len(scheduled)

    with pytest.raises(ConnectionError):
        await handler.handle_batch(batch)
    assert await outcome_of(failing, failing.outbox, [first]) == after_first
    assert len(scheduled) == told

    await one_by_one(handler, [batch])
    alone = InMemoryAlarmStore()
    await one_by_one(handler_on(alone), [first, batch])
    assert await outcome_of(failing, failing.outbox, [first, batch]) == await outcome_of(
        alone, alone.outbox, [first, batch]
    )


async def test_a_batch_tells_the_reminder_due_times_it_scheduled_after_its_commit() -> None:
    """Each due time the batch's transitions scheduled is told once, as one by one would tell it."""
    deliveries = rounds()
    alone, batched = InMemoryAlarmStore(), InMemoryAlarmStore()
    told_alone: list[datetime] = []
    told_batched: list[datetime] = []
    await one_by_one(handler_on(alone, told_alone), deliveries)
    await in_batches(handler_on(batched, told_batched), deliveries)
    due = [p.next_reminder_at for p in payloads(batched.outbox) if p.next_reminder_at is not None]
    assert due and told_batched == due == told_alone


def test_evaluations_are_routed_to_the_batch_handler_too() -> None:
    """The evaluations queue hands batches of up to 100 evaluated events to the handler's batch method, with room
    for the next batch in its prefetch."""
    store = InMemoryAlarmStore()
    evaluations = handler_on(store)
    route, _ = subscriptions(evaluations, AcknowledgementHandler(store=store, clock=lambda: NOW))
    assert route.queue == EVALUATIONS_QUEUE
    assert route.handlers == {EVALUATED: evaluations}
    assert route.batch_handlers == {EVALUATED: evaluations.handle_batch}
    assert (route.batch_size, route.prefetch) == (100, 200)
