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
    """The twin, noting the size of each batch of observations recorded (each one transaction in PostgreSQL)."""

    def __init__(self) -> None:
        super().__init__()
        self.transactions: list[int] = []

    async def record_observations(self, consumer: str, records: list[ScanRecord]) -> list[bool]:
        self.transactions.append(len(records))
        return await super().record_observations(consumer, records)


def handler_on(store: InMemoryTargetStore, kicks: list[str], *, record_window: float = 1.0) -> ScanRequestHandler:
    """The handler as bootstrap wires it, on the twin, with a fixed clock; `kicks` notes each relay kick."""
    return ScanRequestHandler(
        store,
        observer=Observer(DEFAULT_LIMITS, ScanLimiter(total=4, per_host=2)),
        clock=lambda: WHEN,
        on_enqueued=lambda: kicks.append("kick"),
        record_window=record_window,
    )


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


async def test_a_batch_is_observed_and_recorded_in_one_transaction_in_its_order(
    tmp_path: Path, chain: tuple[Issued, Issued]
) -> None:
    """Requests handed over together are recorded at once, each observation enqueued in the order of the requests,
    with one relay kick for them all."""
    targets = leaf_files(tmp_path, chain[0], 10)
    store, kicks = CountingStore(), list[str]()
    await store.sync(targets, now=WHEN)
    messages = [request(target) for target in targets]
    with capture_logs() as logs:
        await handler_on(store, kicks).handle_batch(messages)
    assert store.transactions == [10]
    assert [e.id for e in store.outbox] == [derived_id(m.event.id, "observed") for m in messages]
    assert [Observation.model_validate(e.data).target for e in store.outbox] == targets
    assert all(store.targets[t.key].last_observed_at == WHEN for t in targets)
    assert kicks == ["kick"]
    completed = [(e["event_id"], e["target"]) for e in logs if e["event"] == "scan_completed"]
    assert completed == [(m.event.id, m.payload.target.key) for m in messages]


async def test_a_batch_records_a_request_done_before_or_repeated_in_it_once(
    tmp_path: Path, chain: tuple[Issued, Issued]
) -> None:
    """In a batch, a redelivered request and a request delivered twice in it are duplicates: each request id
    enqueues one observation, and each duplicate is logged as one."""
    first, second = (request(target) for target in leaf_files(tmp_path, chain[0], 2))
    store, kicks = InMemoryTargetStore(), list[str]()
    handler = handler_on(store, kicks)
    await handler(first)
    with capture_logs() as logs:
        await handler.handle_batch([first, second, second])
    outcomes = [(e["event"], e["event_id"]) for e in logs if e["event"].startswith("scan_")]
    assert outcomes == [
        ("scan_request_duplicate", first.event.id),
        ("scan_completed", second.event.id),
        ("scan_request_duplicate", second.event.id),
    ]
    assert [e.id for e in store.outbox] == [derived_id(m.event.id, "observed") for m in (first, second)]
    assert kicks == ["kick", "kick"]


async def test_a_batch_of_duplicates_kicks_no_relay(tmp_path: Path, chain: tuple[Issued, Issued]) -> None:
    """A batch that enqueues nothing (every request recorded before) does not wake the relay."""
    messages = [request(target) for target in leaf_files(tmp_path, chain[0], 2)]
    store, kicks = InMemoryTargetStore(), list[str]()
    handler = handler_on(store, kicks)
    await handler.handle_batch(messages)
    await handler.handle_batch(messages)
    assert (len(store.outbox), kicks) == (2, ["kick"])


async def test_a_slow_scan_does_not_hold_back_the_batch_recorded_without_it(
    tmp_path: Path, chain: tuple[Issued, Issued]
) -> None:
    """An endpoint that does not answer leaves the files of its batch to be recorded after the record window;
    it is recorded on its own once its scan ends."""
    files = leaf_files(tmp_path, chain[0], 3)
    answer = asyncio.Event()

    async def silent_until_told(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer.wait()  # then hangs up: the handshake fails at once

    store, kicks = CountingStore(), list[str]()
    handler = handler_on(store, kicks, record_window=0.05)
    async with raw_server(silent_until_told) as port:
        endpoint = Target(host="127.0.0.1", port=port)
        batch = asyncio.create_task(handler.handle_batch([request(t) for t in (files[0], endpoint, *files[1:])]))
        async with asyncio.timeout(5):
            while not store.outbox:
                await asyncio.sleep(0.01)
        assert [Observation.model_validate(e.data).target for e in store.outbox] == files
        assert not batch.done()
        answer.set()
        async with asyncio.timeout(5):
            await batch
    assert store.transactions == [3, 1]
    observed = Observation.model_validate(store.outbox[-1].data)
    assert (observed.target, observed.error is not None) == (endpoint, True)
    assert kicks == ["kick", "kick"]


class UnreachableStore(InMemoryTargetStore):
    """The twin with its database away: recording fails as a lost connection does."""

    async def record_observations(self, consumer: str, records: list[ScanRecord]) -> list[bool]:
        raise ConnectionResetError("the database went away")


async def test_a_batch_the_store_cannot_record_fails_with_the_store_error_and_stops_its_scans(
    tmp_path: Path, chain: tuple[Issued, Issued]
) -> None:
    """The store's own error reaches the bus unwrapped (so it retries while the database is away, see
    `shared.transient`), and the scans of the batch still running are stopped."""
    hanging_up = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):  # the client hello, then nothing until the client hangs up
            pass
        hanging_up.set()

    handler = handler_on(UnreachableStore(), [], record_window=0.05)
    async with raw_server(silent) as port:
        batch = [request(t) for t in (*leaf_files(tmp_path, chain[0], 2), Target(host="127.0.0.1", port=port))]
        with pytest.raises(ConnectionResetError):
            await handler.handle_batch(batch)
        async with asyncio.timeout(5):
            await hanging_up.wait()  # the endpoint's scan hung up, long before its handshake timeout


def test_scan_requests_are_handed_over_in_batches_as_large_as_the_prefetch() -> None:
    """The subscription hands scan requests to the batch handler, up to as many as may be in flight at once."""
    handler = handler_on(InMemoryTargetStore(), [])
    (subscription,) = subscriptions(handler, prefetch=16)
    assert subscription.batch_handlers == {"scan.requested.v1": handler.handle_batch}
    assert (subscription.batch_size, subscription.prefetch) == (16, 16)
