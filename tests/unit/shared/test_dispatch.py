"""The one dispatch path of both buses, without a broker: which handler an event reaches, and what happens to
an event no handler takes or whose payload does not validate."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from structlog.testing import capture_logs

from shared.broker import Message, PublishError, QueueFull, Subscription
from shared.broker.dispatch import PoisonMessage, call_handler, deliver
from shared.events import CloudEvent, ReportPublished, ScanRequested, Target, make_event
from shared.periodic import Backoff


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
    await deliver(subscription, _scan(), queue="q", closing=asyncio.Event())
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
        await deliver(
            Subscription("t", "q", {"scan.requested.v1": handler}), report, queue="q", closing=asyncio.Event()
        )
    assert called == []
    assert [e["event"] for e in logs] == ["event_skipped"]


async def test_a_payload_that_does_not_validate_is_poison() -> None:
    """The payload is validated before the handler runs; one that does not validate is a PoisonMessage."""

    async def handler(message: Message[Any]) -> None:
        pytest.fail("the handler ran on an invalid payload")

    bad = CloudEvent(source="t", type="io.certmon.scan.requested.v1", data={"target": 7})
    with pytest.raises(PoisonMessage):
        await deliver(Subscription("t", "q", {"scan.requested.v1": handler}), bad, queue="q", closing=asyncio.Event())


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
    await call_handler(handler, message, queue="q", closing=asyncio.Event(), backoff=fast, patience=0.0)
    assert len(calls) == 6
    calls, handler = _failing(5, PublishError("not confirmed"))
    with pytest.raises(PublishError):
        await call_handler(handler, message, queue="q", closing=asyncio.Event(), backoff=fast, patience=0.0)
    assert len(calls) == 1
