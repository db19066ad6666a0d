"""`certmon dlq list|replay|purge` on the real RabbitMQ: an operator sees why each dead letter died, sends it back
to the one queue it failed on once the fault is fixed, or removes it; nothing is lost by looking."""

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
import pytest
from pydantic import SecretStr

from services.cli import _parser
from services.commands.dlq import dlq
from shared.broker import Message, Subscription
from shared.broker.amqp import AmqpBus
from shared.events import CloudEvent, ScanRequested, Target, make_event
from shared.settings import Settings
from tests.support.amqp_names import bus_names
from tests.support.cli import run_certmon

KEY = "scan.requested.v1"
SECRET = "s3cr3t-never-printed"


@dataclass
class Estate:
    """A bus with two queues bound to scan requests: `work`, whose handler fails while `broken` holds, and `other`,
    which handles everything; and the dead-letter queue `certmon dlq` is pointed at."""

    bus: AmqpBus
    settings: Settings
    dead_letter_exchange: str
    dead_letter_queue: str
    work: str
    other: str
    admin: aio_pika.abc.AbstractChannel
    broken: bool = True
    handled: dict[str, list[str]] = field(default_factory=dict)

    async def certmon_dlq(self, *args: str) -> int:
        """Run `certmon dlq ARGS` in this process on the test's dead-letter queue; the exit code."""
        return await dlq(_parser().parse_args(["dlq", *args]), self.settings, queue=self.dead_letter_queue)

    async def dead_letter_count(self) -> int:
        """Messages ready in the dead-letter queue."""
        return await self.ready(self.dead_letter_queue)

    async def ready(self, queue: str) -> int:
        """Messages ready in a queue (a passive declare: reads none of them)."""
        declared = await self.admin.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0


def scan_event(host: str) -> CloudEvent:
    """A small valid event."""
    return make_event(KEY, ScanRequested(target=Target(host=host), due_at=datetime.now(UTC)), source="test")


def handler_of(estate: Estate, queue: str) -> Subscription:
    """A subscription on `queue` recording what it handled; on `work` it fails while the estate is broken."""

    async def on_message(message: Message[Any]) -> None:
        if queue == estate.work and estate.broken:
            raise RuntimeError(f"the {queue} handler is broken")
        estate.handled.setdefault(queue, []).append(message.event.id)

    return Subscription("test", queue, {KEY: on_message}, prefetch=1)


@pytest.fixture
async def estate(amqp_url: str) -> AsyncIterator[Estate]:
    """The two consumers running on names unique to the test, deleted after."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    names = bus_names(prefix)
    bus = AmqpBus(amqp_url, delivery_limit=1, **names)
    await bus.start()
    connection = await aio_pika.connect(amqp_url)
    admin = await connection.channel()
    estate = Estate(
        bus,
        Settings(amqp_url=SecretStr(amqp_url)),
        dead_letter_exchange=names["dead_letter_exchange"],
        dead_letter_queue=names["dead_letter_queue"],
        work=f"{prefix}.work",
        other=f"{prefix}.other",
        admin=admin,
    )
    try:
        await bus.subscribe(handler_of(estate, estate.work))
        await bus.subscribe(handler_of(estate, estate.other))
        yield estate
    finally:
        await bus.close()
        for queue in (estate.work, estate.other, estate.dead_letter_queue):
            await admin.queue_delete(queue)
        for exchange in (names["exchange"], names["dead_letter_exchange"]):
            await admin.exchange_delete(exchange)
        await connection.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15) -> None:
    """Poll until `check` holds or fail."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def dead_lettered(estate: Estate, *events: CloudEvent) -> None:
    """Publish the events one by one, each once the one before is in the dead-letter queue (so they are there in
    this order)."""
    for event in events:
        before = await estate.dead_letter_count()
        await estate.bus.publish(event)

        async def dead() -> bool:
            return await estate.dead_letter_count() == before + 1  # noqa: B023 (awaited before the loop moves on)

        await eventually(dead)


def listed(out: str) -> list[dict[str, Any]]:
    """What `certmon dlq list --json` printed (among the log lines the test's own bus writes to stdout)."""
    start = next(i for i, line in enumerate(out.splitlines()) if line.startswith("["))
    letters, _ = json.JSONDecoder().raw_decode("\n".join(out.splitlines()[start:]))
    assert isinstance(letters, list)
    return letters


async def test_list_shows_each_dead_letter_with_why_and_where_and_leaves_them_all(
    estate: Estate, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dlq list --json` gives each dead letter's id, routing key, queue it failed on, reason, attempts, time and
    age, in order; listing again (as often as one likes) shows the same, and `--limit` the first ones."""
    first, second = scan_event("a.example"), scan_event("b.example")
    await dead_lettered(estate, first, second)
    for _ in range(3):
        assert await estate.certmon_dlq("list", "--json") == 0
        letters = listed(capsys.readouterr().out)
        assert [letter["event_id"] for letter in letters] == [first.id, second.id]
    letter = letters[0]
    assert (letter["routing_key"], letter["queue"]) == (KEY, estate.work)
    assert letter["reason"] == f"RuntimeError: the {estate.work} handler is broken"
    assert letter["attempts"] == 2  # delivery limit 1: the first delivery and one redelivery
    assert datetime.fromisoformat(letter["failed_at"]) <= datetime.now(UTC)
    assert 0 <= letter["age_seconds"] < 60
    assert await estate.dead_letter_count() == 2
    assert await estate.certmon_dlq("list", "--json", "--limit", "1") == 0
    assert [letter["event_id"] for letter in listed(capsys.readouterr().out)] == [first.id]
    monkeypatch.setenv("COLUMNS", "200")  # a terminal wide enough for whole rows
    assert await estate.certmon_dlq("list") == 0
    table = capsys.readouterr().out
    assert first.id in table and second.id in table and "RuntimeError" in table


async def test_replay_sends_a_dead_letter_back_to_the_queue_it_failed_on_only(
    estate: Estate, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once the handler is fixed, `dlq replay --id` hands the event to the consumer that failed and to no other
    queue bound to its routing key, removes it from the dead letters and leaves the others there."""
    replayed, left = scan_event("a.example"), scan_event("b.example")
    await dead_lettered(estate, replayed, left)
    assert sorted(estate.handled[estate.other]) == sorted([replayed.id, left.id])
    estate.broken = False
    assert await estate.certmon_dlq("replay", "--id", replayed.id) == 0
    out = capsys.readouterr().out
    assert "replayed 1 dead letter(s)" in out and f"{replayed.id} {KEY} → {estate.work}" in out

    async def handled_again() -> bool:
        return estate.handled.get(estate.work) == [replayed.id]

    await eventually(handled_again)
    await asyncio.sleep(0.3)  # had it gone to every bound queue, `other` would have it twice by now
    assert sorted(estate.handled[estate.other]) == sorted([replayed.id, left.id])
    assert await estate.certmon_dlq("list", "--json") == 0
    assert [letter["event_id"] for letter in listed(capsys.readouterr().out)] == [left.id]


async def test_replay_of_an_id_that_is_not_dead_exits_2_and_replays_nothing(
    estate: Estate, capsys: pytest.CaptureFixture[str]
) -> None:
    """An `--id` no dead letter has is said on stderr and exits 2; `--queue` of another queue selects nothing."""
    event = scan_event("a.example")
    await dead_lettered(estate, event)
    assert await estate.certmon_dlq("replay", "--id", "no-such-event") == 2
    assert "no dead letter with id no-such-event" in capsys.readouterr().err
    assert await estate.certmon_dlq("replay", "--id", event.id, "--queue", estate.other) == 2
    assert await estate.dead_letter_count() == 1


async def test_purge_asks_first_and_removes_them_only_when_told(
    estate: Estate, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dlq purge --all` shows what it would remove and removes nothing when the answer is no (exit 2); with
    `--yes` it removes every dead letter without asking."""
    await dead_lettered(estate, scan_event("a.example"), scan_event("b.example"))
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert await estate.certmon_dlq("purge", "--all") == 2
    out = capsys.readouterr().out
    assert "Purge these 2 dead letter(s)? [y/N]" in out and "purged 0 dead letter(s)" in out
    assert await estate.dead_letter_count() == 2
    assert await estate.certmon_dlq("purge", "--all", "--yes") == 0
    assert "purged 2 dead letter(s)" in capsys.readouterr().out
    assert await estate.dead_letter_count() == 0
    assert await estate.certmon_dlq("list", "--json") == 0
    assert listed(capsys.readouterr().out) == []


async def test_an_unreachable_broker_exits_1_without_the_password() -> None:
    """`certmon dlq list` with a broker that does not answer says so on stderr, the URL's password hidden."""
    env = {"CERTMON_AMQP_URL": f"amqp://certmon:{SECRET}@127.0.0.1:1/"}
    rc, out, err = await run_certmon("dlq", "list", env=env, timeout=30, inherit_settings=False)
    assert rc == 1, err
    assert "cannot connect to RabbitMQ at amqp://certmon:***@127.0.0.1:1/" in err
    assert SECRET not in out + err and "Traceback" not in err


async def test_a_letter_the_broker_dead_lettered_is_listed_and_replayed_from_its_x_death(
    estate: Estate, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dead letter without certmon's headers (the broker dead-lettered it: a rejected message, or one whose
    consumer could not publish the reason) is listed from `x-death`, and replayed to the queue named there."""
    old = estate.work.replace(".work", ".old")
    arguments: dict[str, Any] = {"x-queue-type": "quorum", "x-dead-letter-exchange": estate.dead_letter_exchange}
    queue = await estate.admin.declare_queue(old, durable=True, arguments=arguments)
    try:
        event = scan_event("a.example")
        await estate.admin.default_exchange.publish(
            aio_pika.Message(event.model_dump_json().encode(), message_id=event.id), old
        )
        await eventually(lambda: has(estate, old, 1))
        message = await queue.get()
        await message.reject(requeue=False)
        await eventually(lambda: has(estate, estate.dead_letter_queue, 1))
        assert await estate.certmon_dlq("list", "--json") == 0
        [letter] = listed(capsys.readouterr().out)
        assert (letter["event_id"], letter["queue"], letter["attempts"]) == (event.id, old, None)
        assert letter["reason"] == "dead-lettered by the broker: rejected"
        assert letter["failed_at"] is not None
        assert await estate.certmon_dlq("replay", "--all", "--queue", old) == 0
        await eventually(lambda: has(estate, old, 1))
        replayed = await queue.get()
        assert (replayed.message_id, replayed.body) == (event.id, message.body)
        assert "x-death" not in (replayed.headers or {})
        assert await estate.dead_letter_count() == 0
    finally:
        await estate.admin.queue_delete(old)


async def has(estate: Estate, queue: str, count: int) -> bool:
    """Whether `count` messages are ready in `queue`."""
    return await estate.ready(queue) == count
