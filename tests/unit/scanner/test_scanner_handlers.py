"""The scan-request handler on the in-memory target store, observing certificate files on local disk (and, where
a slow scan is needed, a silent endpoint on 127.0.0.1)."""

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from services.scanner.adapters.memory import InMemoryTargetStore
from services.scanner.domain.limits import DEFAULT_LIMITS
from services.scanner.handlers import ScanRequestHandler, subscriptions
from services.scanner.ports import ScanRecord
from services.scanner.service_layer.observe import Observer
from services.scanner.service_layer.scan_limiter import ScanLimiter
from shared.broker import Message
from shared.events import Observation, ScanRequested, Target, derived_id, make_event
from tests.support.pki import Issued
from tests.support.tls_server import raw_server

WHEN = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


class CountingStore(InMemoryTargetStore):
    """The twin, noting the size of each batch of observations recorded (each one transaction in PostgreSQL);
    once `hold_until` is set, each transaction waits for it, as a database round trip gives the scans that finish
    meanwhile time to gather."""

    def __init__(self) -> None:
        super().__init__()
        self.transactions: list[int] = []
        self.hold_until: asyncio.Event | None = None

    async def record_observations(self, consumer: str, records: list[ScanRecord]) -> list[bool]:
        if self.hold_until is not None:
            await self.hold_until.wait()
        self.transactions.append(len(records))
        return await super().record_observations(consumer, records)


class TallyingObserver(Observer):
    """The observer bootstrap wires, telling (`all_observed`) when it has made `n` observations."""

    def __init__(self, n: int) -> None:
        super().__init__(DEFAULT_LIMITS, ScanLimiter(total=4, per_host=2))
        self.all_observed, self._left = asyncio.Event(), n

    async def observe(self, target: Target, *, now: dt.datetime) -> Observation:
        observation = await super().observe(target, now=now)
        self._left -= 1
        if not self._left:
            self.all_observed.set()
        return observation


def handler_on(store: InMemoryTargetStore, kicks: list[str], observer: Observer | None = None) -> ScanRequestHandler:
    """The handler as bootstrap wires it, on the twin, with a fixed clock; `kicks` notes each relay kick."""
    return ScanRequestHandler(
        store,
        observer=observer or Observer(DEFAULT_LIMITS, ScanLimiter(total=4, per_host=2)),
        clock=lambda: WHEN,
        on_enqueued=lambda: kicks.append("kick"),
    )


def recorded_once_all_observed(store: CountingStore, kicks: list[str], n: int) -> ScanRequestHandler:
    """A handler whose store holds each transaction until the handler's next `n` scans are done: the scans that
    finish first are recorded together, and all the others in one transaction after them."""
    observer = TallyingObserver(n)
    store.hold_until = observer.all_observed
    return handler_on(store, kicks, observer)


def request(target: Target) -> Message[ScanRequested]:
    """A scan request for `target` as the bus hands it over, validated."""
    payload = ScanRequested(target=target, due_at=WHEN)
    return Message(make_event("scan.requested.v1", payload, source="test", subject=target.key), payload)


async def test_a_requested_file_is_observed_and_its_observation_enqueued(
    tmp_path: Path, chain: tuple[Issued, Issued]
) -> None:
    """The file's chain is observed now and enqueued once, with an id derived from the request's."""
    leaf, ca = chain
    (tmp_path / "bundle.pem").write_bytes(leaf.pem + ca.pem)
    target = Target(file=str(tmp_path / "bundle.pem"))
    store, kicks = InMemoryTargetStore(), list[str]()
    await store.sync([target], now=WHEN)
    message = request(target)
    await handler_on(store, kicks)(message)
    (event,) = store.outbox
    assert (event.routing_key, event.source, event.subject) == (
        "certificate.observed.v1",
        "certmon/scanner",
        target.key,
    )
    assert event.id == derived_id(message.event.id, "observed")
    observation = Observation.model_validate(event.data)
    assert (observation.chain, observation.observed_at, observation.error) == ([leaf.b64, ca.b64], WHEN, None)
    assert (store.targets[target.key].last_observed_at, store.targets[target.key].last_error) == (WHEN, None)
    assert kicks == ["kick"]


async def test_a_missing_file_is_an_observation_with_its_error(tmp_path: Path) -> None:
    """A file that is not there is still observed: the observation carries a `file` error, noted on the target."""
    target = Target(file=str(tmp_path / "gone.pem"))
    store = InMemoryTargetStore()
    await store.sync([target], now=WHEN)
    await handler_on(store, [])(request(target))
    (event,) = store.outbox
    error = Observation.model_validate(event.data).error
    assert error is not None and error.kind == "file"
    assert store.targets[target.key].last_error == f"file: {error.message}"


async def test_a_redelivered_request_changes_nothing(tmp_path: Path, chain: tuple[Issued, Issued]) -> None:
    """A request handled before is scanned again but logged as a duplicate: nothing enqueued, noted or kicked."""
    (tmp_path / "leaf.pem").write_bytes(chain[0].pem)
    target = Target(file=str(tmp_path / "leaf.pem"))
    store, kicks = InMemoryTargetStore(), list[str]()
    await store.sync([target], now=WHEN)
    handler, message = handler_on(store, kicks), request(target)
    await handler(message)
    (tmp_path / "leaf.pem").unlink()  # a second scan would now note a `file` error
    with capture_logs() as logs:
        await handler(message)
    assert [entry["event"] for entry in logs if entry["event"].startswith("scan_")] == ["scan_request_duplicate"]
    assert (len(store.outbox), kicks) == (1, ["kick"])
    assert store.targets[target.key].last_error is None


async def test_recording_a_claimed_request_clears_its_pending_mark(tmp_path: Path) -> None:
    """The target's request claimed by the scheduler is pending until its observation is recorded, then cleared."""
    target = Target(file=str(tmp_path / "gone.pem"))
    store = InMemoryTargetStore()
    await store.sync([target], now=WHEN)
    (claimed,) = await store.claim_due(WHEN, 10)
    assert store.targets[target.key].pending_due_at == WHEN
    payload = ScanRequested(target=target, due_at=claimed.due_at)
    await handler_on(store, [])(Message(store.outbox[0], payload))
    assert (store.targets[target.key].pending_due_at, store.targets[target.key].pending_until) == (None, None)


async def test_concurrent_deliveries_of_one_request_enqueue_one_observation(
    tmp_path: Path, chain: tuple[Issued, Issued]
) -> None:
    """Two deliveries of one request both scanned at once: the first to record wins, the other is a duplicate."""
    (tmp_path / "leaf.pem").write_bytes(chain[0].pem)
    store, kicks = InMemoryTargetStore(), list[str]()
    handler, message = handler_on(store, kicks), request(Target(file=str(tmp_path / "leaf.pem")))
    with capture_logs() as logs:
        await asyncio.gather(handler(message), handler(message))
    outcomes = sorted(entry["event"] for entry in logs if entry["event"].startswith("scan_"))
    assert outcomes == ["scan_completed", "scan_request_duplicate"]
    assert (len(store.outbox), kicks) == (1, ["kick"])


def leaf_files(directory: Path, leaf: Issued, n: int) -> list[Target]:
    """`n` certificate files of `leaf` in `directory`, as targets."""
    for i in range(n):
        (directory / f"{i}.pem").write_bytes(leaf.pem)
    return [Target(file=str(directory / f"{i}.pem")) for i in range(n)]


async def test_scans_that_finish_together_are_recorded_in_one_transaction(
    tmp_path: Path, chain: tuple[Issued, Issued]
) -> None:
    """Concurrent calls each observe their own target; the records of those that finish while a transaction is
    under way are group-committed in the next, each observation enqueued once, with one relay kick a transaction."""
    targets = leaf_files(tmp_path, chain[0], 10)
    store, kicks = CountingStore(), list[str]()
    await store.sync(targets, now=WHEN)
    messages = [request(target) for target in targets]
    handler = recorded_once_all_observed(store, kicks, 10)
    with capture_logs() as logs:
        await asyncio.gather(*(handler(m) for m in messages))
    assert sum(store.transactions) == 10 and len(store.transactions) <= 2
    assert sorted(e.id for e in store.outbox) == sorted(derived_id(m.event.id, "observed") for m in messages)
    assert {Observation.model_validate(e.data).target.key for e in store.outbox} == {t.key for t in targets}
    assert all(store.targets[t.key].last_observed_at == WHEN for t in targets)
    assert len(kicks) == len(store.transactions)
    assert [e["event"] for e in logs if e["event"].startswith("scan_")] == ["scan_completed"] * 10


async def test_duplicates_among_concurrent_calls_and_redeliveries_are_logged_as_duplicates(
    tmp_path: Path, chain: tuple[Issued, Issued]
) -> None:
    """A redelivered request and a request delivered twice at once are duplicates, though recorded together:
    each request id enqueues one observation, and each duplicate call logs one."""
    first, second = (request(target) for target in leaf_files(tmp_path, chain[0], 2))
    store, kicks = CountingStore(), list[str]()
    await handler_on(store, kicks)(first)
    handler = recorded_once_all_observed(store, kicks, 4)
    with capture_logs() as logs:
        await asyncio.gather(handler(first), handler(second), handler(second), handler(first))
    together = store.transactions[1:]
    assert sum(together) == 4 and len(together) <= 2
    outcomes = sorted(e["event"] for e in logs if e["event"].startswith("scan_"))
    assert outcomes == ["scan_completed"] + ["scan_request_duplicate"] * 3
    assert [e.id for e in store.outbox] == [derived_id(m.event.id, "observed") for m in (first, second)]
    assert kicks == ["kick", "kick"]


async def test_calls_that_enqueue_nothing_kick_no_relay(tmp_path: Path, chain: tuple[Issued, Issued]) -> None:
    """Calls recorded together that enqueue nothing (every request recorded before) do not wake the relay."""
    messages = [request(target) for target in leaf_files(tmp_path, chain[0], 3)]
    store, kicks = CountingStore(), list[str]()
    await asyncio.gather(*(handler_on(store, kicks)(m) for m in messages))
    kicked, recorded = len(kicks), len(store.transactions)
    handler = recorded_once_all_observed(store, kicks, 3)
    await asyncio.gather(*(handler(m) for m in messages))
    together = store.transactions[recorded:]
    assert sum(together) == 3 and len(together) <= 2
    assert (len(store.outbox), len(kicks)) == (3, kicked)


async def test_a_silent_endpoint_does_not_hold_back_the_calls_for_files(
    tmp_path: Path, chain: tuple[Issued, Issued]
) -> None:
    """The calls for files return, recorded, while the call for an endpoint that does not answer still waits on its
    handshake; that one is recorded on its own once its scan ends."""
    files = leaf_files(tmp_path, chain[0], 3)
    answer = asyncio.Event()

    async def silent_until_told(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer.wait()  # then hangs up: the handshake fails at once

    store, kicks = CountingStore(), list[str]()
    handler = handler_on(store, kicks)
    async with raw_server(silent_until_told) as port:
        endpoint = Target(host="127.0.0.1", port=port)
        slow = asyncio.create_task(handler(request(endpoint)))
        async with asyncio.timeout(5):
            await asyncio.gather(*(handler(request(t)) for t in files))
        assert sorted(Observation.model_validate(e.data).target.key for e in store.outbox) == sorted(
            t.key for t in files
        )
        assert not slow.done()
        answer.set()
        async with asyncio.timeout(5):
            await slow
    assert sum(store.transactions) == 4 and store.transactions[-1] == 1
    observed = Observation.model_validate(store.outbox[-1].data)
    assert (observed.target, observed.error is not None) == (endpoint, True)


class UnreachableStore(InMemoryTargetStore):
    """The twin with its database away: recording fails as a lost connection does."""

    async def record_observations(self, consumer: str, records: list[ScanRecord]) -> list[bool]:
        raise ConnectionResetError("the database went away")


@pytest.mark.parametrize("calls", [1, 3])
async def test_the_store_error_reaches_each_caller_unwrapped(
    tmp_path: Path, chain: tuple[Issued, Issued], calls: int
) -> None:
    """The store's own error reaches the bus unwrapped, alone or recorded together (so it retries while the
    database is away, see `shared.transient`)."""
    handler = handler_on(UnreachableStore(), [])
    outcomes = await asyncio.gather(
        *(handler(request(t)) for t in leaf_files(tmp_path, chain[0], calls)), return_exceptions=True
    )
    assert [type(outcome) for outcome in outcomes] == [ConnectionResetError] * calls


def test_scan_requests_are_handled_one_per_call_as_many_at_once_as_the_prefetch() -> None:
    """The subscription hands each scan request to the handler itself, with no batch handler."""
    handler = handler_on(InMemoryTargetStore(), [])
    (subscription,) = subscriptions(handler, prefetch=16)
    assert subscription.handlers == {"scan.requested.v1": handler}
    assert (subscription.batch_handlers, subscription.prefetch) == ({}, 16)
