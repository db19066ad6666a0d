"""One contract, two alarm stores: the in-memory twin and PostgreSQL must behave alike in what the evaluation
handler, the acknowledgement handler and the reminder sweep rely on (claims, target health and its lock, open
and acknowledged alarms, history, reminder due times and their claims, outbox, all-or-nothing)."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.alarmer.adapters.memory import InMemoryAlarmStore
from services.alarmer.adapters.repository import SCHEMA, PostgresAlarmStore
from services.alarmer.domain.alarms import OpenAlarm
from services.alarmer.ports import AlarmStore, AlarmUnitOfWork, HistoryEntry, Reminder, TargetHealth
from shared.broker import InMemoryBus
from shared.events import AlarmEvent, AlarmKey, CloudEvent, derived_id, make_event
from shared.outbox import OutboxRelay
from tests.support.alarms import NOW, build_alarm

pytestmark = pytest.mark.integration

BLOG, SHOP = "blog.example.com:443", "shop.example.com:443"


@dataclass
class StoreUnderTest:
    """A migrated store and a way to read the events its committed units of work queued, in order."""

    store: AlarmStore
    outbox_ids: Callable[[], Awaitable[list[str]]]


@pytest.fixture(params=["memory", "postgres"])
async def under_test(request: pytest.FixtureRequest, pg_pool: asyncpg.Pool) -> AsyncIterator[StoreUnderTest]:
    """Each contract test runs once per store; PostgreSQL on a fresh database."""
    if request.param == "memory":
        memory = InMemoryAlarmStore()

        async def memory_outbox() -> list[str]:
            return [event.id for event in memory.outbox]

        yield StoreUnderTest(memory, memory_outbox)
        return
    postgres = PostgresAlarmStore(pg_pool, OutboxRelay(pg_pool, SCHEMA, InMemoryBus()))  # a relay never started
    await postgres.migrate()

    async def postgres_outbox() -> list[str]:
        rows = await pg_pool.fetch(f"SELECT event_id FROM {SCHEMA}.outbox ORDER BY seq")
        return [row["event_id"] for row in rows]

    yield StoreUnderTest(postgres, postgres_outbox)


def alarm(alarm_id: str, target_key: str = BLOG, *, trigger: str = "expiry", **fields: object) -> AlarmEvent:
    """An alarm event of `alarm_id` (a UUID, as the alarmer derives them) on `target_key`."""
    key = AlarmKey(target_key=target_key, fingerprint_sha256="a" * 64, trigger=trigger)
    return build_alarm(alarm_id=derived_id(alarm_id), key=key, evaluation_id=f"ev-{alarm_id}", **fields)


def lifecycle() -> tuple[AlarmEvent, AlarmEvent, AlarmEvent]:
    """Alarm 1 raised at warning, changed to critical, resolved."""
    return (
        alarm("1", level="warning"),
        alarm("1", transition="changed", level="critical", previous_level="warning"),
        alarm("1", transition="resolved", level="ok", previous_level="critical"),
    )


def announced(event: AlarmEvent) -> CloudEvent:
    """The CloudEvent announcing an alarm event."""
    return make_event(f"alarm.{event.transition}.v1", event, source="certmon/alarmer", subject=event.alarm_id)


class Failure(Exception):
    """Raised inside a unit of work to make it roll back."""


async def test_claim_succeeds_once_per_consumer_and_event(under_test: StoreUnderTest) -> None:
    """An event id is claimed once per consumer; a second claim, even in a later unit of work, is refused."""
    store = under_test.store
    async with store.unit_of_work() as uow:
        assert await uow.claim("ev-1", "alarmer.evaluations") is True
        assert await uow.claim("ev-1", "alarmer.evaluations") is False
    async with store.unit_of_work() as uow:
        assert await uow.claim("ev-1", "alarmer.evaluations") is False
        assert await uow.claim("ev-1", "alarmer.other") is True
        assert await uow.claim("ev-2", "alarmer.evaluations") is True


async def test_a_claim_of_several_ids_claims_each_once(under_test: StoreUnderTest) -> None:
    """A claim of several ids answers for each, in order, whether it is claimed now: an id listed twice only at its
    first place, an id claimed before (one by one or together) not; ids claimed together are refused one by one."""
    store = under_test.store
    async with store.unit_of_work() as uow:
        assert await uow.claim("ev-1", "alarmer.evaluations") is True
        claimed = await uow.claim_all(["ev-3", "ev-1", "ev-2", "ev-3"], "alarmer.evaluations")
        assert claimed == [True, False, True, False]
    async with store.unit_of_work() as uow:
        assert await uow.claim_all(["ev-2", "ev-4"], "alarmer.evaluations") == [False, True]
        assert await uow.claim("ev-3", "alarmer.evaluations") is False
        assert await uow.claim_all(["ev-1"], "alarmer.other") == [True]


async def test_claims_of_the_same_ids_in_opposite_orders_do_not_deadlock(under_test: StoreUnderTest) -> None:
    """Units of work claiming the same ids together at once, listed in opposite orders, all finish, and each id
    goes to exactly one of them."""

    async def claim(order: list[str]) -> set[str]:
        async with under_test.store.unit_of_work() as uow:
            claimed = await uow.claim_all(order, "alarmer.evaluations")
        return {event_id for event_id, new in zip(order, claimed, strict=True) if new}

    for round_ in range(5):
        ids = [f"ev-{round_}-{n:04d}" for n in range(1000)]
        first, second = await asyncio.wait_for(asyncio.gather(claim(ids), claim(ids[::-1])), 10)
        assert (first | second, first & second) == (set(ids), set())


async def test_new_target_has_no_failures_and_no_observation(under_test: StoreUnderTest) -> None:
    """A target never seen before starts with no failure run and no observation applied."""
    async with under_test.store.unit_of_work() as uow:
        assert await uow.lock_target_health(BLOG) == TargetHealth(0, None)


async def test_target_health_is_kept_per_target(under_test: StoreUnderTest) -> None:
    """A saved failure run and observation time are what the next unit of work reads, for that target only."""
    async with under_test.store.unit_of_work() as uow:
        await uow.lock_target_health(BLOG)
        await uow.save_target_health(BLOG, failures=2, observed_at=NOW)
    async with under_test.store.unit_of_work() as uow:
        assert await uow.lock_target_health(BLOG) == TargetHealth(2, NOW)
        assert await uow.lock_target_health(SHOP) == TargetHealth(0, None)


async def lock_blog(uow: AlarmUnitOfWork) -> TargetHealth:
    """Lock BLOG's health alone."""
    return await uow.lock_target_health(BLOG)


async def lock_blog_and_shop(uow: AlarmUnitOfWork) -> TargetHealth:
    """Lock SHOP's and BLOG's health together; BLOG's."""
    return (await uow.lock_target_healths([SHOP, BLOG]))[BLOG]


async def lock_while_another_waits(
    store: AlarmStore, *, failures: int, lock: Callable[[AlarmUnitOfWork], Awaitable[TargetHealth]] = lock_blog
) -> tuple[TargetHealth, TargetHealth]:
    """Lock BLOG's health in a unit of work (by `lock`) and save `failures` while a second unit of work waits to
    lock it alone (checked not done while the first holds it); returns what the first and then the second saw."""
    first_locked = asyncio.Event()

    async def second() -> TargetHealth:
        await first_locked.wait()
        async with store.unit_of_work() as uow:
            return await uow.lock_target_health(BLOG)

    waiting = asyncio.create_task(second())
    async with store.unit_of_work() as uow:
        seen = await lock(uow)
        first_locked.set()
        await asyncio.sleep(0.1)
        assert not waiting.done()
        await uow.save_target_health(BLOG, failures=failures, observed_at=NOW)
    return seen, await asyncio.wait_for(waiting, 5)


async def test_units_of_work_on_one_target_apply_one_after_another(under_test: StoreUnderTest) -> None:
    """A second unit of work locking a target's health waits for the first to commit, then sees its write."""
    _, second = await lock_while_another_waits(under_test.store, failures=3)
    assert second == TargetHealth(3, NOW)


async def test_units_of_work_on_a_known_target_apply_one_after_another(under_test: StoreUnderTest) -> None:
    """Locking the health of a target evaluated before also waits for the unit of work holding it."""
    store = under_test.store
    async with store.unit_of_work() as uow:
        await uow.lock_target_health(BLOG)
        await uow.save_target_health(BLOG, failures=1, observed_at=NOW - timedelta(hours=1))
    first, second = await lock_while_another_waits(store, failures=2)
    assert first == TargetHealth(1, NOW - timedelta(hours=1))
    assert second == TargetHealth(2, NOW)


async def test_target_healths_are_locked_and_read_together(under_test: StoreUnderTest) -> None:
    """Several targets' health at once, by target: a new one starts empty (and is saved like one locked alone), a
    known one as saved; a target listed twice is read once."""
    store = under_test.store
    async with store.unit_of_work() as uow:
        await uow.lock_target_health(BLOG)
        await uow.save_target_health(BLOG, failures=2, observed_at=NOW)
    async with store.unit_of_work() as uow:
        found = await uow.lock_target_healths([SHOP, BLOG, SHOP])
        assert found == {BLOG: TargetHealth(2, NOW), SHOP: TargetHealth(0, None)}
        await uow.save_target_health(SHOP, failures=1, observed_at=NOW)
    async with store.unit_of_work() as uow:
        assert await uow.lock_target_healths([SHOP]) == {SHOP: TargetHealth(1, NOW)}
        assert await uow.lock_target_healths([]) == {}


async def test_targets_locked_together_are_each_held_until_the_commit(under_test: StoreUnderTest) -> None:
    """A unit of work that locked several targets together holds each of them, new or known: another locking one
    of them waits for its commit and sees its write."""
    _, second = await lock_while_another_waits(under_test.store, failures=3, lock=lock_blog_and_shop)
    assert second == TargetHealth(3, NOW)
    first, second = await lock_while_another_waits(under_test.store, failures=4, lock=lock_blog_and_shop)
    assert (first, second) == (TargetHealth(3, NOW), TargetHealth(4, NOW))


async def test_targets_locked_together_in_opposite_orders_do_not_deadlock(under_test: StoreUnderTest) -> None:
    """Units of work locking the same targets together, listed in opposite orders, all finish, one after another
    (no update is lost), whether the targets are new or known: the store locks them in one order."""
    keys = [f"host-{n:02d}.example.com:443" for n in range(40)]

    async def count_a_failure(order: list[str]) -> None:
        async with under_test.store.unit_of_work() as uow:
            health = await uow.lock_target_healths(order)
            for key in order:
                await uow.save_target_health(key, failures=health[key].consecutive_failures + 1, observed_at=NOW)

    for _ in range(5):
        await asyncio.wait_for(asyncio.gather(count_a_failure(keys), count_a_failure(keys[::-1])), 10)
    async with under_test.store.unit_of_work() as uow:
        assert await uow.lock_target_healths(keys) == {key: TargetHealth(10, NOW) for key in keys}


async def test_raise_opens_an_alarm_listed_with_its_target_only(under_test: StoreUnderTest) -> None:
    """A raised alarm is open on its own target, with its key, level and event; other targets do not list it."""
    raised = alarm("1", level="warning")
    async with under_test.store.unit_of_work() as uow:
        await uow.record_transition(raised, at=NOW, cause="evaluation ev-1")
        await uow.record_transition(alarm("2", SHOP), at=NOW, cause="evaluation ev-2")
    async with under_test.store.unit_of_work() as uow:
        [stored] = await uow.open_alarms(BLOG)
        assert await uow.open_alarms("other.example.com:443") == []
    assert stored.alarm == OpenAlarm(alarm_id=raised.alarm_id, key=raised.key, level="warning")
    assert stored.last_event == raised


async def test_open_alarms_of_several_targets_are_read_together(under_test: StoreUnderTest) -> None:
    """Several targets' unresolved alarms at once, by target, each oldest first as `open_alarms` lists them; a
    target without any has an empty list."""
    later, earlier, closed = alarm("1", trigger="security"), alarm("2"), alarm("3", SHOP)
    resolved = closed.model_copy(update={"transition": "resolved", "state": "resolved", "level": "ok"})
    async with under_test.store.unit_of_work() as uow:
        await uow.record_transition(later, at=NOW + timedelta(minutes=1), cause="c")
        for event in (earlier, closed, resolved):
            await uow.record_transition(event, at=NOW, cause="c")
        other = "other.example.com:443"
        found = await uow.open_alarms_by_target([SHOP, BLOG, other])
        assert found == {BLOG: await uow.open_alarms(BLOG), SHOP: [], other: []}
        assert [s.alarm.alarm_id for s in found[BLOG]] == [earlier.alarm_id, later.alarm_id]


async def test_open_alarms_are_listed_oldest_first(under_test: StoreUnderTest) -> None:
    """A target's open alarms come in the order they were opened, whatever order they were recorded in."""
    later, earlier = alarm("1", trigger="security"), alarm("2", trigger="expiry")
    async with under_test.store.unit_of_work() as uow:
        await uow.record_transition(later, at=NOW + timedelta(minutes=1), cause="c")
        await uow.record_transition(earlier, at=NOW, cause="c")
        assert [s.alarm.alarm_id for s in await uow.open_alarms(BLOG)] == [earlier.alarm_id, later.alarm_id]


async def test_change_updates_the_open_alarm_and_resolve_closes_it(under_test: StoreUnderTest) -> None:
    """A change gives the open alarm its new level and event; a resolve takes it off the open alarms."""
    raised, changed, resolved = lifecycle()
    async with under_test.store.unit_of_work() as uow:
        await uow.record_transition(raised, at=NOW, cause="c")
        await uow.record_transition(changed, at=NOW + timedelta(minutes=1), cause="c")
        [stored] = await uow.open_alarms(BLOG)
        assert (stored.alarm.level, stored.last_event) == ("critical", changed)
        await uow.record_transition(resolved, at=NOW + timedelta(minutes=2), cause="c")
        assert await uow.open_alarms(BLOG) == []


async def test_history_lists_an_alarms_transitions_oldest_first(under_test: StoreUnderTest) -> None:
    """Each transition is kept with its time, levels, cause and evaluation; ties keep the order recorded."""
    raised, changed, resolved = lifecycle()
    async with under_test.store.unit_of_work() as uow:
        await uow.record_transition(raised, at=NOW, cause="evaluation ev-a")
        await uow.record_transition(alarm("2", SHOP), at=NOW, cause="evaluation ev-b")
        await uow.record_transition(changed, at=NOW + timedelta(minutes=1), cause="evaluation ev-c")
        await uow.record_transition(resolved, at=NOW + timedelta(minutes=1), cause="evaluation ev-d")
    async with under_test.store.unit_of_work() as uow:
        kept = await uow.history(raised.alarm_id)
    later = NOW + timedelta(minutes=1)
    assert kept == [
        HistoryEntry(raised.alarm_id, NOW, "raised", None, "warning", "evaluation ev-a", "ev-1"),
        HistoryEntry(raised.alarm_id, later, "changed", "warning", "critical", "evaluation ev-c", "ev-1"),
        HistoryEntry(raised.alarm_id, later, "resolved", "critical", "ok", "evaluation ev-d", "ev-1"),
    ]


async def test_outbox_keeps_committed_events_in_order_once_per_id(under_test: StoreUnderTest) -> None:
    """Queued events are kept in the order queued, across units of work; an id queued again is ignored."""
    first, second = announced(alarm("1")), announced(alarm("2"))
    async with under_test.store.unit_of_work() as uow:
        await uow.publish_later(first)
        await uow.publish_later(second)
    async with under_test.store.unit_of_work() as uow:
        await uow.publish_later(first)
    assert await under_test.outbox_ids() == [first.id, second.id]


async def test_a_unit_of_work_that_raises_leaves_nothing_behind(under_test: StoreUnderTest) -> None:
    """Claim, health, transitions, history and queued events of a failed unit of work are all rolled back."""
    raised = alarm("1")
    with pytest.raises(Failure):
        async with under_test.store.unit_of_work() as uow:
            assert await uow.claim("ev-1", "alarmer.evaluations")
            await uow.lock_target_health(BLOG)
            await uow.save_target_health(BLOG, failures=1, observed_at=NOW)
            await uow.record_transition(raised, at=NOW, cause="c")
            await uow.publish_later(announced(raised))
            raise Failure
    async with under_test.store.unit_of_work() as uow:
        assert await uow.claim("ev-1", "alarmer.evaluations") is True
        assert await uow.lock_target_health(BLOG) == TargetHealth(0, None)
        assert await uow.open_alarms(BLOG) == []
        assert await uow.history(raised.alarm_id) == []
    assert await under_test.outbox_ids() == []


async def test_writes_are_visible_inside_their_own_unit_of_work(under_test: StoreUnderTest) -> None:
    """Within one unit of work, what was written is read back before the commit."""
    raised = alarm("1")
    async with under_test.store.unit_of_work() as uow:
        await uow.lock_target_health(BLOG)
        await uow.save_target_health(BLOG, failures=1, observed_at=NOW)
        await uow.record_transition(raised, at=NOW, cause="c")
        assert await uow.lock_target_health(BLOG) == TargetHealth(1, NOW)
        assert [s.alarm.alarm_id for s in await uow.open_alarms(BLOG)] == [raised.alarm_id]
        assert [h.transition for h in await uow.history(raised.alarm_id)] == ["raised"]


def due(alarm_id: str, at: datetime | None, target_key: str = BLOG, **fields: Any) -> AlarmEvent:
    """An open alarm raised with its next reminder due `at`."""
    return alarm(alarm_id, target_key, next_reminder_at=at, **fields)


async def test_an_acknowledged_alarm_is_still_the_open_alarm_of_its_key(under_test: StoreUnderTest) -> None:
    """Acknowledging keeps the alarm listed for its target (so no second alarm opens); a resolve removes it."""
    raised = due("1", NOW + timedelta(days=1))
    acked = raised.model_copy(update={"transition": "acknowledged", "state": "acknowledged", "next_reminder_at": None})
    async with under_test.store.unit_of_work() as uow:
        await uow.record_transition(raised, at=NOW, cause="c")
        await uow.record_transition(acked, at=NOW, cause="acknowledged by alice via api")
        [stored] = await uow.open_alarms(BLOG)
        assert stored.last_event == acked
        assert await uow.claim_due_reminders(NOW + timedelta(days=2), 10) == []
        resolved = acked.model_copy(update={"transition": "resolved", "state": "resolved", "level": "ok"})
        await uow.record_transition(resolved, at=NOW, cause="c")
        assert await uow.open_alarms(BLOG) == []
        assert await uow.lock_alarm(raised.alarm_id) == resolved


async def test_lock_alarm_finds_an_alarm_by_id_or_nothing(under_test: StoreUnderTest) -> None:
    """An alarm's latest event by its id; None for an unknown id and for text that is no alarm id."""
    raised = due("1", None)
    async with under_test.store.unit_of_work() as uow:
        await uow.record_transition(raised, at=NOW, cause="c")
        assert await uow.lock_alarm(raised.alarm_id) == raised
        assert await uow.lock_alarm(derived_id("unknown")) is None
        assert await uow.lock_alarm("not-a-uuid") is None


async def test_due_reminders_are_claimed_earliest_first_up_to_the_limit(under_test: StoreUnderTest) -> None:
    """Only open alarms due by now are claimed, earliest due first, at most `limit`; the earliest time is known."""
    events = [
        due("late", NOW - timedelta(minutes=1), trigger="chain"),
        due("early", NOW - timedelta(hours=1), trigger="expiry"),
        due("exact", NOW, trigger="security"),
        due("future", NOW + timedelta(seconds=1), trigger="validity"),
        due("never", None, SHOP),
    ]
    async with under_test.store.unit_of_work() as uow:
        assert await uow.earliest_reminder() is None
        for event in events:
            await uow.record_transition(event, at=NOW, cause="c")
    async with under_test.store.unit_of_work() as uow:
        claimed = await uow.claim_due_reminders(NOW, 2)
        everything = await uow.claim_due_reminders(NOW, 10)
        assert await uow.earliest_reminder() == NOW - timedelta(hours=1)
    assert [e.alarm_id for e in claimed] == [events[1].alarm_id, events[0].alarm_id]
    assert [e.alarm_id for e in everything] == [e.alarm_id for e in events[1::-1]] + [events[2].alarm_id]


def reminder_of(event: AlarmEvent) -> Reminder:
    """The reminder of `event`'s alarm sent at NOW, the next one due a day later."""
    sent = event.model_copy(
        update={"transition": "reminded", "reminders_sent": 1, "next_reminder_at": NOW + timedelta(days=1)}
    )
    return Reminder(sent, "reminder schedule (every 1d)", announced(sent))


async def test_recorded_reminders_move_their_alarms_on_and_stopped_alarms_off(under_test: StoreUnderTest) -> None:
    """A batch's reminders become their alarms' latest events and history and are queued in order; stopped
    alarms keep their event but lose their next reminder, in the schedule and in that event alike."""
    events = [due(name, NOW, trigger=t) for name, t in (("a", "expiry"), ("b", "chain"), ("c", "security"))]
    async with under_test.store.unit_of_work() as uow:
        for event in events:
            await uow.record_transition(event, at=NOW - timedelta(days=1), cause="c")
    sent = [reminder_of(events[1]), reminder_of(events[0])]
    async with under_test.store.unit_of_work() as uow:
        await uow.record_reminders(sent, stopped=[events[2].alarm_id], at=NOW)
        await uow.record_reminders([], stopped=[], at=NOW)  # an empty batch writes nothing
    async with under_test.store.unit_of_work() as uow:
        assert await uow.claim_due_reminders(NOW + timedelta(hours=23), 10) == []
        assert await uow.earliest_reminder() == NOW + timedelta(days=1)
        assert [await uow.lock_alarm(r.event.alarm_id) for r in sent] == [r.event for r in sent]
        assert (await uow.history(events[0].alarm_id))[-1] == HistoryEntry(
            events[0].alarm_id, NOW, "reminded", None, "critical", "reminder schedule (every 1d)", "ev-a"
        )
        assert await uow.lock_alarm(events[2].alarm_id) == events[2].model_copy(update={"next_reminder_at": None})
        assert [h.transition for h in await uow.history(events[2].alarm_id)] == ["raised"]
    assert await under_test.outbox_ids() == [r.message.id for r in sent]


async def test_a_reminder_queued_again_is_not_queued_twice(under_test: StoreUnderTest) -> None:
    """A reminder's message whose id is queued already, by an earlier batch or earlier in its own, is ignored."""
    raised = [due("a", NOW), due("b", NOW, trigger="chain")]
    first, second = (reminder_of(event) for event in raised)
    async with under_test.store.unit_of_work() as uow:
        for event in raised:
            await uow.record_transition(event, at=NOW, cause="c")
        await uow.record_reminders([first], stopped=[], at=NOW)
        await uow.record_reminders([second, first, second], stopped=[], at=NOW)
    assert await under_test.outbox_ids() == [first.message.id, second.message.id]


async def test_concurrent_claims_never_share_an_alarm(under_test: StoreUnderTest) -> None:
    """While one unit of work holds claimed alarms, another claims only others (or waits and finds them moved)."""
    events = [due(str(i), NOW - timedelta(minutes=i), trigger=t) for i, t in enumerate(("expiry", "chain", "security"))]
    async with under_test.store.unit_of_work() as uow:
        for event in events:
            await uow.record_transition(event, at=NOW, cause="c")
    first_claimed = asyncio.Event()

    async def second() -> list[str]:
        await first_claimed.wait()
        async with under_test.store.unit_of_work() as uow:
            return [e.alarm_id for e in await uow.claim_due_reminders(NOW, 10)]

    other = asyncio.create_task(second())
    async with under_test.store.unit_of_work() as uow:
        mine = [e.alarm_id for e in await uow.claim_due_reminders(NOW, 2)]
        first_claimed.set()
        await asyncio.sleep(0.1)
        await uow.record_reminders([], stopped=mine, at=NOW)
    theirs = await asyncio.wait_for(other, 5)
    assert sorted(mine + theirs) == sorted(e.alarm_id for e in events)
