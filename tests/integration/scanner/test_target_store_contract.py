"""One contract, two adapters: the in-memory `TargetStore` twin and the PostgreSQL repository behave alike."""

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import pytest

from services.scanner.adapters.memory import InMemoryTargetStore
from services.scanner.adapters.targets_repo import SYNC_CHUNK, TargetsRepository
from services.scanner.domain.schedule import MIN_REQUEST_LEASE, next_due
from services.scanner.ports import ScanRecord, TargetStore
from shared.events import CloudEvent, Observation, ObservationError, ScanRequested, Target, make_event

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)
TICK = dt.timedelta(microseconds=1)
CONSUMER = "test.consumer"

#: When the target was last observed, and its last error as the store notes it.
LastResult = tuple[dt.datetime | None, str | None]


@dataclass
class StoreUnderTest:
    """A store, another replica on the same data, and readers for what the protocol does not return."""

    store: TargetStore
    replica: Callable[[], TargetStore]
    outbox: Callable[[], Awaitable[list[CloudEvent]]]
    last_result: Callable[[str], Awaitable[LastResult]]


@pytest.fixture
async def under_test(store_pool: asyncpg.Pool | None) -> StoreUnderTest:
    """Each contract test runs once per adapter; PostgreSQL gets a fresh, migrated database."""
    if store_pool is None:
        memory = InMemoryTargetStore()

        async def memory_outbox() -> list[CloudEvent]:
            return list(memory.outbox)

        async def memory_last(key: str) -> LastResult:
            row = memory.targets[key]
            return row.last_observed_at, row.last_error

        return StoreUnderTest(memory, lambda: memory, memory_outbox, memory_last)
    pool = store_pool
    repo = TargetsRepository(pool)
    await repo.migrate()

    async def pg_outbox() -> list[CloudEvent]:
        rows = await pool.fetch("SELECT event FROM scanner.outbox ORDER BY seq")
        return [CloudEvent.model_validate(r["event"]) for r in rows]

    async def pg_last(key: str) -> LastResult:
        row = await pool.fetchrow("SELECT last_observed_at, last_error FROM scanner.targets WHERE key = $1", key)
        assert row is not None
        return row["last_observed_at"], row["last_error"]

    return StoreUnderTest(repo, lambda: TargetsRepository(pool), pg_outbox, pg_last)


def minutely(n: int) -> list[Target]:
    """`n` endpoint targets scanned every minute (their requests' lease is the 10-minute minimum)."""
    return [Target(host=f"fast-{i}.example.test", port=443, interval_seconds=60) for i in range(n)]


def hosts(n: int) -> list[Target]:
    """`n` configured endpoint targets scanned hourly."""
    return [Target(host=f"host-{i}.example.test", port=443, interval_seconds=3600) for i in range(n)]


def targets_of(requests: list[ScanRequested]) -> list[Target]:
    """The targets of claimed scan requests, in claim order."""
    return [r.target for r in requests]


def observed(
    target: Target, error: ObservationError | None = None, *, at: dt.datetime = NOW
) -> tuple[Observation, CloudEvent]:
    """An observation of `target` at `at` and the event that carries it (an event id of its own)."""
    observation = Observation(target=target, observed_at=at, error=error)
    return observation, make_event("certificate.observed.v1", observation, source="test", subject=target.key)


def scan_record(
    event_id: str,
    target: Target,
    *,
    due_at: dt.datetime = NOW,
    error: ObservationError | None = None,
    at: dt.datetime = NOW,
) -> ScanRecord:
    """What recording request `event_id` (of `target`'s slot `due_at`) takes, observed at `at`."""
    return ScanRecord(event_id, due_at, *observed(target, error, at=at))


class TestTargetStoreContract:
    """The behaviour every TargetStore adapter promises."""

    async def test_sync_adds_targets_due_now(self, under_test: StoreUnderTest) -> None:
        """New targets are enabled and due at `now`, not a moment before."""
        store = under_test.store
        summary = await store.sync(hosts(3), now=NOW)
        assert (summary.configured, summary.disabled) == (3, 0)
        assert await store.claim_due(NOW - TICK, 10) == []
        assert targets_of(await store.claim_due(NOW, 10)) == hosts(3)

    async def test_sync_disables_targets_no_longer_configured(self, under_test: StoreUnderTest) -> None:
        """A target dropped from the config is disabled, not deleted, and re-enabled when it comes back."""
        store = under_test.store
        await store.sync(hosts(3), now=NOW)
        summary = await store.sync(hosts(1), now=NOW)
        assert (summary.configured, summary.disabled) == (1, 2)
        assert await store.make_all_due(NOW) == 1
        await store.sync(hosts(2), now=NOW)
        assert targets_of(await store.claim_due(NOW, 10)) == hosts(2)

    async def test_sync_reads_more_targets_than_a_chunk_once_and_disables_the_rest(
        self, under_test: StoreUnderTest
    ) -> None:
        """Targets given as a generator (read once), more than one chunk of them, are all upserted; only the
        targets not among them are disabled."""
        store, estate = under_test.store, hosts(SYNC_CHUNK + 3)
        await store.sync(minutely(2) + estate[:5], now=NOW)
        summary = await store.sync((target for target in estate), now=NOW)
        assert (summary.configured, summary.disabled) == (SYNC_CHUNK + 3, 2)
        claimed = await store.claim_due(NOW, 2 * SYNC_CHUNK)
        assert sorted(r.target.key for r in claimed) == sorted(t.key for t in estate)

    async def test_sync_stores_a_changed_target_and_pulls_in_a_shorter_interval(
        self, under_test: StoreUnderTest
    ) -> None:
        """Changed settings are what the next claim returns; a shorter interval brings that claim forward."""
        store = under_test.store
        daily = Target(host="a.example.test", interval_seconds=86400)
        await store.sync([daily], now=NOW)
        await store.claim_due(NOW, 10)
        later = NOW + dt.timedelta(hours=1)
        quarter = daily.model_copy(update={"interval_seconds": 900})
        await store.sync([quarter], now=later)
        due = next_due(daily.key, 900, later)
        assert await store.claim_due(due - TICK, 10) == []
        assert targets_of(await store.claim_due(due, 10)) == [quarter]

    async def test_claim_due_returns_each_due_target_once(self, under_test: StoreUnderTest) -> None:
        """A claim reschedules its targets one interval (plus jitter) on, so they are not claimed again until then."""
        store, targets = under_test.store, hosts(3)
        await store.sync(targets, now=NOW)
        assert targets_of(await store.claim_due(NOW, 10)) == targets
        assert await store.claim_due(NOW, 10) == []
        first = min(next_due(t.key, 3600, NOW) for t in targets)
        assert await store.claim_due(first - TICK, 10) == []
        again = max(next_due(t.key, 3600, NOW) for t in targets)
        assert sorted(r.target.key for r in await store.claim_due(again, 10)) == sorted(t.key for t in targets)

    async def test_claim_due_skips_disabled_targets_and_stops_at_the_limit(self, under_test: StoreUnderTest) -> None:
        """Only enabled targets are claimed, at most `limit` per claim."""
        store = under_test.store
        await store.sync(hosts(5), now=NOW)
        await store.sync(hosts(4), now=NOW)
        assert len(await store.claim_due(NOW, 3)) == 3
        assert len(await store.claim_due(NOW, 3)) == 1

    async def test_each_claim_enqueues_one_scan_request(self, under_test: StoreUnderTest) -> None:
        """The outbox gets exactly one `scan.requested.v1` per claimed target, with the slot it was due in."""
        store, targets = under_test.store, hosts(2)
        await store.sync(targets, now=NOW)
        await store.claim_due(NOW, 10)
        events = await under_test.outbox()
        assert [(e.routing_key, e.source) for e in events] == [("scan.requested.v1", "certmon/scanner")] * 2
        requests = [ScanRequested.model_validate(e.data) for e in events]
        assert [(r.target, r.due_at) for r in requests] == [(t, NOW) for t in targets]
        assert [e.subject for e in events] == [t.key for t in targets]
        assert len({e.id for e in events}) == 2

    async def test_concurrent_claimers_never_share_a_target(self, under_test: StoreUnderTest) -> None:
        """Two replicas claiming in parallel split the due targets between them, none twice."""
        targets = hosts(40)
        await under_test.store.sync(targets, now=NOW)

        async def claim_all(store: TargetStore) -> list[str]:
            keys: list[str] = []
            while batch := await store.claim_due(NOW, 5):
                keys += [r.target.key for r in batch]
                await asyncio.sleep(0)
            return keys

        first, second = await asyncio.gather(claim_all(under_test.store), claim_all(under_test.replica()))
        assert set(first).isdisjoint(second)
        assert sorted(first + second) == sorted(t.key for t in targets)
        assert len(await under_test.outbox()) == 40

    async def test_a_pending_target_is_not_claimed_again_until_its_request_is_recorded(
        self, under_test: StoreUnderTest
    ) -> None:
        """Due again while its request is unobserved, a target waits; once recorded, it is claimed for the slot
        it was due in (so its lateness counts the wait)."""
        store, (target,) = under_test.store, minutely(1)
        await store.sync([target], now=NOW)
        (first,) = await store.claim_due(NOW, 10)
        slot = next_due(target.key, 60, NOW)
        later = slot + dt.timedelta(minutes=2)
        assert await store.claim_due(later, 10) == []
        assert await store.record_observation(CONSUMER, "request-1", *observed(target), due_at=first.due_at)
        assert [(r.target, r.due_at) for r in await store.claim_due(later, 10)] == [(target, slot)]
        assert len(await under_test.outbox()) == 3  # two requests and the observation

    async def test_pending_counts_the_requests_claimed_not_observed_and_within_their_lease(
        self, under_test: StoreUnderTest
    ) -> None:
        """Claimed requests are pending until observed, or until their lease runs out."""
        store, targets = under_test.store, minutely(3)
        await store.sync(targets, now=NOW)
        assert await store.pending(NOW) == 0
        first, *_ = await store.claim_due(NOW, 10)
        assert await store.pending(NOW) == 3
        await store.record_observation(CONSUMER, "request-1", *observed(first.target), due_at=first.due_at)
        assert await store.pending(NOW) == 2
        assert await store.pending(NOW + dt.timedelta(hours=1)) == 0  # past the lease: counted lost

    async def test_a_pending_request_not_recorded_within_its_lease_is_requested_again(
        self, under_test: StoreUnderTest
    ) -> None:
        """A lost request holds its target for the lease (at least 10 minutes), then a new request is enqueued."""
        store, (target,) = under_test.store, minutely(1)
        await store.sync([target], now=NOW)
        await store.claim_due(NOW, 10)
        assert await store.claim_due(NOW + MIN_REQUEST_LEASE - TICK, 10) == []
        (again,) = await store.claim_due(NOW + MIN_REQUEST_LEASE, 10)
        assert again.due_at == next_due(target.key, 60, NOW)
        events = await under_test.outbox()
        assert len({e.id for e in events}) == 2

    async def test_the_observation_of_an_older_request_leaves_the_newer_one_pending(
        self, under_test: StoreUnderTest
    ) -> None:
        """After a lease ran out, a late observation of the first request does not release the second one;
        the second's does."""
        store, (target,) = under_test.store, minutely(1)
        await store.sync([target], now=NOW)
        (first,) = await store.claim_due(NOW, 10)
        renewed = NOW + MIN_REQUEST_LEASE
        (second,) = await store.claim_due(renewed, 10)
        assert await store.record_observation(CONSUMER, "request-1", *observed(target), due_at=first.due_at)
        due = next_due(target.key, 60, renewed)
        assert await store.claim_due(due, 10) == []
        assert await store.record_observation(CONSUMER, "request-2", *observed(target), due_at=second.due_at)
        assert targets_of(await store.claim_due(due, 10)) == [target]

    async def test_a_redelivered_request_neither_records_nor_releases_twice(self, under_test: StoreUnderTest) -> None:
        """Recording a request again after its target was claimed anew changes nothing: the new request stays
        pending and no second observation is enqueued."""
        store, (target,) = under_test.store, minutely(1)
        await store.sync([target], now=NOW)
        (first,) = await store.claim_due(NOW, 10)
        observation, outgoing = observed(target)
        assert await store.record_observation(CONSUMER, "request-1", observation, outgoing, due_at=first.due_at)
        due = next_due(target.key, 60, NOW)
        assert len(await store.claim_due(due, 10)) == 1
        failed = ObservationError(kind="timeout", message="too slow")
        # Even naming the slot now pending, a redelivery is stopped by its processed id.
        assert not await store.record_observation(CONSUMER, "request-1", *observed(target, failed), due_at=due)
        assert await under_test.last_result(target.key) == (NOW, None)
        assert await store.claim_due(next_due(target.key, 60, due), 10) == []
        assert [e.routing_key for e in await under_test.outbox()].count("certificate.observed.v1") == 1

    async def test_make_all_due_brings_every_enabled_target_forward(self, under_test: StoreUnderTest) -> None:
        """`make_all_due` makes already-claimed enabled targets claimable again, their pending requests forgotten
        (an operator's "scan now" wins), and counts them."""
        store = under_test.store
        await store.sync(hosts(3), now=NOW)
        await store.claim_due(NOW, 10)
        later = NOW + dt.timedelta(minutes=1)
        assert await store.make_all_due(later) == 3
        assert len(await store.claim_due(later, 10)) == 3

    async def test_discovered_targets_survive_a_sync_and_yield_to_configured_ones(
        self, under_test: StoreUnderTest
    ) -> None:
        """A sync never disables a discovered target; a configured target with the same key stays as configured."""
        store = under_test.store
        configured = Target(host="10.0.0.1", owner="config-team")
        found = [Target(host=host, owner="lab-team", discovered_by="lab") for host in ("10.0.0.1", "10.0.0.2")]
        await store.sync([configured], now=NOW)
        await store.register_discovered(found, now=NOW)
        assert (await store.sync([configured], now=NOW)).disabled == 0
        assert targets_of(await store.claim_due(NOW, 10)) == [configured, found[1]]

    async def test_discovery_takes_over_a_target_the_config_dropped(self, under_test: StoreUnderTest) -> None:
        """A configured target disabled by a later sync is re-enabled, as discovered, when a sweep finds it."""
        store = under_test.store
        dropped = Target(host="10.0.0.1")
        await store.sync([dropped], now=NOW)
        await store.sync([], now=NOW)
        found = dropped.model_copy(update={"discovered_by": "lab"})
        await store.register_discovered([found], now=NOW)
        assert targets_of(await store.claim_due(NOW, 10)) == [found]

    async def test_record_observation_takes_effect_once_per_request(self, under_test: StoreUnderTest) -> None:
        """The first record marks the request processed, notes the result and enqueues; a repeat changes nothing."""
        store, (target,) = under_test.store, hosts(1)
        await store.sync([target], now=NOW)
        observation, outgoing = observed(target)
        assert await store.record_observation(CONSUMER, "request-1", observation, outgoing, due_at=NOW)
        failed = ObservationError(kind="dns", message="no such host")
        assert not await store.record_observation(CONSUMER, "request-1", *observed(target, failed), due_at=NOW)
        assert [e.id for e in await under_test.outbox()] == [outgoing.id]
        assert await under_test.last_result(target.key) == (NOW, None)
        another, other_outgoing = observed(target)
        assert await store.record_observation("another.consumer", "request-1", another, other_outgoing, due_at=NOW)

    async def test_record_observation_notes_the_error_of_a_failed_scan(self, under_test: StoreUnderTest) -> None:
        """A failed scan's error is noted on its target as `kind: message`."""
        store, (target,) = under_test.store, hosts(1)
        await store.sync([target], now=NOW)
        failed = ObservationError(kind="dns", message="no such host")
        assert await store.record_observation(CONSUMER, "request-1", *observed(target, failed), due_at=NOW)
        assert await under_test.last_result(target.key) == (NOW, "dns: no such host")

    async def test_record_observation_of_an_unknown_target_still_enqueues(self, under_test: StoreUnderTest) -> None:
        """A request for a target the store does not schedule (a one-off) is still recorded and published."""
        observation, outgoing = observed(Target(host="one-off.example.test"))
        assert await under_test.store.record_observation(CONSUMER, "request-1", observation, outgoing, due_at=NOW)
        assert [e.id for e in await under_test.outbox()] == [outgoing.id]

    async def test_record_observations_records_each_request_id_once(self, under_test: StoreUnderTest) -> None:
        """In a batch, a request recorded before changes nothing and a request repeated is recorded by its first
        record only; the others note their results and are enqueued, in order."""
        store, targets = under_test.store, hosts(3)
        await store.sync(targets, now=NOW)
        before = scan_record("request-0", targets[0])
        assert await store.record_observations(CONSUMER, [before]) == [True]
        failed = ObservationError(kind="dns", message="no such host")
        batch = [
            scan_record("request-1", targets[1]),
            scan_record("request-0", targets[0], error=failed),
            scan_record("request-2", targets[2]),
            scan_record("request-1", targets[1], error=failed),
        ]
        assert await store.record_observations(CONSUMER, batch) == [True, False, True, False]
        assert [e.id for e in await under_test.outbox()] == [r.outgoing.id for r in (before, batch[0], batch[2])]
        assert [await under_test.last_result(t.key) for t in targets] == [(NOW, None)] * 3

    async def test_record_observations_leave_a_target_the_result_of_its_last_record(
        self, under_test: StoreUnderTest
    ) -> None:
        """Two requests of one target in a batch are both recorded and enqueued; the target notes the result of the
        later record in the batch, even though it was observed earlier."""
        store, (target,) = under_test.store, hosts(1)
        await store.sync([target], now=NOW)
        failed = ObservationError(kind="timeout", message="too slow")
        batch = [
            scan_record("request-1", target, at=NOW + dt.timedelta(minutes=1)),
            scan_record("request-2", target, error=failed),
        ]
        assert await store.record_observations(CONSUMER, batch) == [True, True]
        assert [e.id for e in await under_test.outbox()] == [r.outgoing.id for r in batch]
        assert await under_test.last_result(target.key) == (NOW, "timeout: too slow")

    async def test_record_observations_clear_the_pending_requests_recorded_in_them(
        self, under_test: StoreUnderTest
    ) -> None:
        """A batch clears a target's pending request when it records the request of its slot, before or after one
        of another slot; a record of another slot, or a repeat of a request recorded before, leaves it pending."""
        store, targets = under_test.store, minutely(4)
        await store.sync(targets, now=NOW)
        await store.claim_due(NOW, 10)
        older = NOW - dt.timedelta(minutes=1)
        assert await store.record_observations(CONSUMER, [scan_record("request-2", targets[2], due_at=older)]) == [True]
        batch = [
            scan_record("request-0", targets[0], due_at=NOW),
            scan_record("request-0-older", targets[0], due_at=older),
            scan_record("request-1-older", targets[1], due_at=older),
            scan_record("request-1", targets[1], due_at=NOW),
            scan_record("request-2", targets[2], due_at=NOW),
        ]
        assert await store.record_observations(CONSUMER, batch) == [True, True, True, True, False]
        assert await store.pending(NOW) == 2
        # Every target is due again, within the lease of the requests still pending.
        due = max(next_due(t.key, 60, NOW) for t in targets)
        assert targets_of(await store.claim_due(due, 10)) == targets[:2]

    async def test_concurrent_batches_on_the_same_targets_neither_deadlock_nor_record_twice(
        self, under_test: StoreUnderTest
    ) -> None:
        """Two replicas recording batches on the same targets in opposite orders at once both commit; a request in
        both batches is recorded by one of them."""
        store, targets = under_test.store, hosts(50)
        await store.sync(targets, now=NOW)

        def batch(replica: str) -> list[ScanRecord]:
            own = [scan_record(f"request-{replica}-{i}", t) for i, t in enumerate(targets)]
            return own + [scan_record(f"request-both-{i}", t) for i, t in enumerate(targets)]

        async with asyncio.timeout(20):
            first, second = await asyncio.gather(
                store.record_observations(CONSUMER, batch("a")),
                under_test.replica().record_observations(CONSUMER, batch("b")[::-1]),
            )
        second = second[::-1]
        assert first[:50] == second[:50] == [True] * 50
        assert [a + b for a, b in zip(first[50:], second[50:], strict=True)] == [1] * 50
        assert len(await under_test.outbox()) == 150
