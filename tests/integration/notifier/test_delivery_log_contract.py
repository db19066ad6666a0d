"""One contract, two delivery logs: the in-memory twin and PostgreSQL must behave alike in what the alarm
handler and the retry sweep rely on (processed events, recorded keys, attempts that add up while retrying, sent
and failed are final, due entries claimed once under a lease with what is needed to send them again, one outbox
entry per id)."""

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import pytest

from services.notifier.adapters.delivery_log import SCHEMA, PostgresDeliveryLog
from services.notifier.adapters.memory import InMemoryDeliveryLog
from services.notifier.domain.deliveries import ChannelKind, Delivery, Notice, idempotency_key
from services.notifier.ports import DeliveryLog, DeliveryRecord, Status
from shared.broker import InMemoryBus
from shared.events import CloudEvent, NotificationResult, make_event
from shared.outbox import OutboxRelay
from tests.support.alarms import NOW, build_alarm

ALARM = build_alarm()
NOTICE = Notice(make_event("alarm.raised.v1", ALARM, source="certmon/alarmer", event_id="ev-1"), ALARM)

pytestmark = pytest.mark.integration

#: (idempotency key, status, attempts, last error) of one entry.
Row = tuple[str, str, int, str | None]


@dataclass
class LogUnderTest:
    """A migrated delivery log, and ways to read its entries and the ids of the events it queued, in order."""

    log: DeliveryLog
    rows: Callable[[], Awaitable[list[Row]]]
    outbox_ids: Callable[[], Awaitable[list[str]]]


@pytest.fixture(params=["memory", "postgres"])
async def under_test(request: pytest.FixtureRequest, pg_pool: asyncpg.Pool) -> AsyncIterator[LogUnderTest]:
    """Each contract test runs once per delivery log; PostgreSQL on a fresh database."""
    if request.param == "memory":
        memory = InMemoryDeliveryLog()

        async def memory_rows() -> list[Row]:
            return sorted((r.delivery.idempotency_key, r.status, r.attempts, r.error) for r in memory.deliveries)

        async def memory_outbox() -> list[str]:
            return [event.id for event in memory.outbox]

        yield LogUnderTest(memory, memory_rows, memory_outbox)
        return
    postgres = PostgresDeliveryLog(pg_pool, OutboxRelay(pg_pool, SCHEMA, InMemoryBus()))  # a relay never started
    await postgres.migrate()

    async def postgres_rows() -> list[Row]:
        rows = await pg_pool.fetch(
            f"SELECT idempotency_key, status, attempts, last_error FROM {SCHEMA}.deliveries ORDER BY 1"
        )
        return [(r["idempotency_key"], r["status"], r["attempts"], r["last_error"]) for r in rows]

    async def postgres_outbox() -> list[str]:
        return [r["event_id"] for r in await pg_pool.fetch(f"SELECT event_id FROM {SCHEMA}.outbox ORDER BY seq")]

    yield LogUnderTest(postgres, postgres_rows, postgres_outbox)


def delivery(recipient: str) -> Delivery:
    """An email delivery of alarm event `ev-1` to `recipient`."""
    return Delivery(
        channel=ChannelKind.EMAIL,
        recipients=(recipient,),
        owner="shop-team",
        rule="default",
        idempotency_key=idempotency_key("ev-1", ChannelKind.EMAIL, recipient),
    )


def outcome(
    recipient: str, status: Status, attempts: int = 1, error: str | None = None, *, minute: int = 0
) -> tuple[DeliveryRecord, CloudEvent]:
    """The record of a delivery to `recipient` and its result event (one id per recipient, status and minute);
    a retrying one is due ten minutes after it is recorded."""
    at = NOW + timedelta(minutes=minute)
    due = at + timedelta(minutes=10) if status == "retrying" else None
    record = DeliveryRecord(delivery(recipient), NOTICE, status, attempts, error, at, NOW, due)
    result = NotificationResult(
        alarm_id="alarm-1",
        alarm_event_id="ev-1",
        channel="email",
        recipient=recipient,
        attempt=attempts,
        error=error,
        at=at,
    )
    event_id = f"{recipient}|{status}|{minute}"
    routing_key = "notification.sent.v1" if status == "sent" else "notification.failed.v1"
    return record, make_event(routing_key, result, source="certmon/notifier", event_id=event_id)


async def test_event_is_processed_once_marked_per_consumer(under_test: LogUnderTest) -> None:
    """An alarm event counts as processed by a consumer once marked, and marking it again is harmless."""
    log = under_test.log
    assert await log.is_processed("ev-1", "notifier.alarms") is False
    await log.mark_processed("ev-1", "notifier.alarms")
    await log.mark_processed("ev-1", "notifier.alarms")
    assert await log.is_processed("ev-1", "notifier.alarms") is True
    assert await log.is_processed("ev-1", "notifier.other") is False
    assert await log.is_processed("ev-2", "notifier.alarms") is False


async def test_recorded_keys_are_those_with_an_entry(under_test: LogUnderTest) -> None:
    """Of the keys asked about, those with an entry come back, whatever its status; unknown ones do not."""
    log = under_test.log
    await log.record(*outcome("alice@example.com", "sent"))
    await log.record(*outcome("bob@example.com", "retrying", 3, "451 busy"))
    await log.record(*outcome("carol@example.com", "failed", 1, "550 no such user"))
    asked = [delivery(r).idempotency_key for r in ("alice@example.com", "bob@example.com", "dave@example.com")]
    assert await log.recorded_keys(asked) == set(asked[:2])
    assert await log.recorded_keys([]) == set()


async def test_retrying_delivery_adds_up_its_attempts_until_sent(under_test: LogUnderTest) -> None:
    """A retrying entry recorded again keeps the latest status and error and the sum of all attempts."""
    log, key = under_test.log, delivery("bob@example.com").idempotency_key
    await log.record(*outcome("bob@example.com", "retrying", 3, "451 busy"))
    await log.record(*outcome("bob@example.com", "retrying", 1, "452 full", minute=1))
    assert await under_test.rows() == [(key, "retrying", 4, "452 full")]
    await log.record(*outcome("bob@example.com", "sent", 1, minute=2))
    assert await under_test.rows() == [(key, "sent", 5, None)]


@pytest.mark.parametrize("final", ["sent", "failed"])
async def test_final_delivery_never_changes_and_queues_nothing(under_test: LogUnderTest, final: Status) -> None:
    """Once an entry is sent or failed for good, a later record changes nothing and queues no event."""
    log, key = under_test.log, delivery("alice@example.com").idempotency_key
    first = outcome("alice@example.com", final, 1, None if final == "sent" else "550")
    await log.record(*first)
    await log.record(*outcome("alice@example.com", "retrying", 3, "451 busy", minute=1))
    await log.record(*outcome("alice@example.com", "sent", 1, minute=2))
    assert await under_test.rows() == [(key, final, 1, first[0].error)]
    assert await under_test.outbox_ids() == [first[1].id]


async def test_due_retrying_entries_are_claimed_once_under_a_lease(under_test: LogUnderTest) -> None:
    """A retrying entry is claimed when due, with its delivery, alarm event, attempts and first attempt, and
    not again until the lease runs out; sent and not yet due entries are never claimed."""
    log = under_test.log
    await log.record(*outcome("alice@example.com", "sent"))
    await log.record(*outcome("bob@example.com", "retrying", 3, "451 busy"))  # due at minute 10
    await log.record(*outcome("carol@example.com", "retrying", 3, "451 busy", minute=5))  # due at minute 15
    assert await log.claim_due(NOW + timedelta(minutes=9), lease_until=NOW, limit=10) == []
    lease = NOW + timedelta(minutes=20)
    [claimed] = await log.claim_due(NOW + timedelta(minutes=12), lease_until=lease, limit=10)
    assert claimed.delivery == delivery("bob@example.com")
    assert (claimed.attempts, claimed.first_attempt_at) == (3, NOW)
    assert claimed.notice.event.id == "ev-1" and claimed.notice.alarm == ALARM
    later = await log.claim_due(NOW + timedelta(minutes=16), lease_until=lease, limit=10)
    assert [p.delivery.recipient for p in later] == ["carol@example.com"]
    after_lease = await log.claim_due(NOW + timedelta(minutes=21), lease_until=lease, limit=1)
    assert len(after_lease) == 1


async def test_each_record_queues_its_result_once_per_id(under_test: LogUnderTest) -> None:
    """Result events are kept in the order recorded; one recorded again with the same id is not queued twice."""
    log = under_test.log
    alice, bob = outcome("alice@example.com", "sent"), outcome("bob@example.com", "failed", 3, "451 busy")
    await log.record(*alice)
    await log.record(*bob)
    await log.record(*alice)
    assert await under_test.outbox_ids() == [alice[1].id, bob[1].id]
