"""The one dispatch path of both buses, without a broker: which handler an event reaches, what happens to
an event no handler takes or whose payload does not validate, and how batch handlers get their messages."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from shared.broker import Message, PublishError, QueueFull, Subscription
from shared.broker.dispatch import Dispatcher, PoisonMessage, call_handler
from shared.events import CloudEvent, ReportPublished, ScanRequested, Target, make_event
from shared.periodic import Backoff


def _dispatcher(subscription: Subscription) -> Dispatcher:
    return Dispatcher(subscription, queue="q", closing=asyncio.Event())


def _scan() -> CloudEvent:
    return make_event(
        "scan.requested.v1", ScanRequested(target=Target(host="a.example"), due_at=datetime.now(UTC)), source="t"
    )


async def test_the_exact_key_wins_over_a_pattern_and_a_pattern_routes_the_rest() -> None:
    """A handler bound to the routing key itself is chosen before one bound to a matching pattern."""
    seen: list[str] = []

    async def exact(message: Message[Any]) -> None:
        seen.append("exact")

    async def pattern(message: Message[Any]) -> None:
        seen.append("pattern")

    subscription = Subscription("t", "q", {"scan.#": pattern, "scan.requested.v1": exact})
    await Dispatcher(subscription, queue="q", closing=asyncio.Event()).deliver(_scan())
    assert seen == ["exact"]
    assert subscription.handler_for("scan.other.v1") is pattern


async def test_an_event_no_handler_takes_is_skipped_not_failed() -> None:
    """An event on the queue that no handler is for (an old binding, a newer producer) is logged and
    acknowledged: it does not raise, so it is never dead-lettered."""
    called: list[str] = []

    async def handler(message: Message[Any]) -> None:
        called.append("x")

    now = datetime.now(UTC)
    report = make_event(
        "report.published.v1",
        ReportPublished(kind="daily", period_start=now, period_end=now, keys=[], location="/r"),
        source="t",
    )
    with capture_logs() as logs:
        await _dispatcher(Subscription("t", "q", {"scan.requested.v1": handler})).deliver(report)
    assert called == []
    assert [e["event"] for e in logs] == ["event_skipped"]


async def test_a_payload_that_does_not_validate_is_poison() -> None:
    """The payload is validated before the handler runs; one that does not validate is a PoisonMessage."""

    async def handler(message: Message[Any]) -> None:
        pytest.fail("the handler ran on an invalid payload")

    bad = CloudEvent(source="t", type="io.certmon.scan.requested.v1", data={"target": 7})
    with pytest.raises(PoisonMessage):
        await _dispatcher(Subscription("t", "q", {"scan.requested.v1": handler})).deliver(bad)


def _failing(times: int, error: Exception) -> tuple[list[int], Any]:
    """A handler that raises `error` on its first `times` calls, and the list counting its calls."""
    calls: list[int] = []

    async def handler(message: Message[Any]) -> None:
        calls.append(1)
        if len(calls) <= times:
            raise error

    return calls, handler


async def test_a_full_downstream_queue_is_waited_out_past_the_patience() -> None:
    """A publish refused because a queue is full (`QueueFull`) is retried beyond the patience that ends other
    transient failures, so backpressure never sends the message being handled to the dead letters."""
    fast = Backoff(initial=0.001, factor=1.0, maximum=0.001)
    message = Message(_scan(), _scan().payload())
    calls, handler = _failing(5, QueueFull("certmon.alarmer.evaluations is full"))
    await call_handler(lambda: handler(message), queue="q", closing=asyncio.Event(), backoff=fast, patience=0.0)
    assert len(calls) == 6
    calls, handler = _failing(5, PublishError("not confirmed"))
    with pytest.raises(PublishError):
        await call_handler(lambda: handler(message), queue="q", closing=asyncio.Event(), backoff=fast, patience=0.0)
    assert len(calls) == 1


async def test_messages_that_arrive_together_go_to_the_batch_handler_in_one_call_up_to_the_batch_size() -> None:
    """Deliveries started together are gathered into batches of at most `batch_size`, in their order, and each
    delivery returns once its batch is handled; a message that arrives alone goes to the key's handler."""
    batches: list[list[str]] = []
    alone: list[str] = []

    async def single(message: Message[Any]) -> None:
        alone.append(message.event.id)

    async def batch(messages: Any) -> None:
        batches.append([m.event.id for m in messages])

    dispatcher = _dispatcher(
        Subscription("t", "q", {"scan.requested.v1": single}, batch_handlers={"scan.requested.v1": batch}, batch_size=4)
    )
    events = [_scan() for _ in range(10)]
    await asyncio.gather(*(dispatcher.deliver(event) for event in events))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert [i for b in batches for i in b] == [event.id for event in events]
    assert alone == []
    last = _scan()
    await dispatcher.deliver(last)
    assert alone == [last.id]
    assert len(batches) == 3


async def test_a_failed_batch_is_handled_message_by_message_and_only_the_bad_message_fails() -> None:
    """When the batch handler raises, each message goes to the single handler alone: the good ones succeed, the
    bad one's delivery raises its own error (for the bus to reject), and the batch's error reaches no delivery."""
    events = [_scan() for _ in range(5)]
    bad = events[2].id
    handled: list[str] = []

    async def single(message: Message[Any]) -> None:
        if message.event.id == bad:
            raise ValueError("this one is bad")
        handled.append(message.event.id)

    async def batch(messages: Any) -> None:
        raise RuntimeError("the batch failed")

    dispatcher = _dispatcher(
        Subscription("t", "q", {"scan.requested.v1": single}, batch_handlers={"scan.requested.v1": batch})
    )
    with capture_logs() as logs:
        outcomes = await asyncio.gather(*(dispatcher.deliver(event) for event in events), return_exceptions=True)
    assert [type(o).__name__ if o else None for o in outcomes] == [None, None, "ValueError", None, None]
    assert handled == [e.id for e in events if e.id != bad]
    assert "batch_failed_handling_alone" in [e["event"] for e in logs]


async def test_a_batch_failing_on_an_absent_dependency_is_retried_whole_first() -> None:
    """A transient failure of the batch handler (the database restarting) retries the batch in process, as a
    single handler would be, before any message is handled alone."""
    fast = Backoff(initial=0.001, factor=1.0, maximum=0.001)
    calls: list[int] = []

    async def single(message: Message[Any]) -> None:
        pytest.fail("handled alone although the batch succeeded on its retry")

    async def batch(messages: Any) -> None:
        calls.append(len(messages))
        if len(calls) == 1:
            raise PublishError("not confirmed")

    subscription = Subscription("t", "q", {"scan.requested.v1": single}, batch_handlers={"scan.requested.v1": batch})
    dispatcher = Dispatcher(subscription, queue="q", closing=asyncio.Event(), backoff=fast)
    await asyncio.gather(*(dispatcher.deliver(_scan()) for _ in range(3)))
    assert calls == [3, 3]


async def test_closing_cancels_a_running_batch_and_its_deliveries_fail() -> None:
    """Closing the dispatcher stops the batch being handled; its deliveries raise, so the bus returns the messages
    to the queue, and none waits forever."""
    started = asyncio.Event()

    async def single(message: Message[Any]) -> None:
        pytest.fail("handled alone while closing")

    async def batch(messages: Any) -> None:
        started.set()
        await asyncio.sleep(30)

    dispatcher = _dispatcher(
        Subscription("t", "q", {"scan.requested.v1": single}, batch_handlers={"scan.requested.v1": batch})
    )
    deliveries = [asyncio.create_task(dispatcher.deliver(_scan())) for _ in range(3)]
    await started.wait()
    await dispatcher.close()
    outcomes = await asyncio.gather(*deliveries, return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
