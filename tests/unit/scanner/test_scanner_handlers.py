"""The scan-request handler on the in-memory target store, observing certificate files on local disk."""

import asyncio
import datetime as dt
from pathlib import Path

from structlog.testing import capture_logs

from services.scanner.adapters.memory import InMemoryTargetStore
from services.scanner.domain.limits import DEFAULT_LIMITS
from services.scanner.handlers import ScanRequestHandler
from services.scanner.service_layer.observe import Observer
from services.scanner.service_layer.scan_limiter import ScanLimiter
from shared.broker import Message
from shared.events import Observation, ScanRequested, Target, derived_id, make_event
from tests.support.pki import Issued

WHEN = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def handler_on(store: InMemoryTargetStore, kicks: list[str]) -> ScanRequestHandler:
    """The handler as bootstrap wires it, on the twin, with a fixed clock; `kicks` notes each relay kick."""
    return ScanRequestHandler(
        store,
        observer=Observer(DEFAULT_LIMITS, ScanLimiter(total=4, per_host=2)),
        clock=lambda: WHEN,
        on_enqueued=lambda: kicks.append("kick"),
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
    store, kicks = InMemoryTargetStore(), []
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
    store, kicks = InMemoryTargetStore(), []
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
    store, kicks = InMemoryTargetStore(), []
    handler, message = handler_on(store, kicks), request(Target(file=str(tmp_path / "leaf.pem")))
    with capture_logs() as logs:
        await asyncio.gather(handler(message), handler(message))
    outcomes = sorted(entry["event"] for entry in logs if entry["event"].startswith("scan_"))
    assert outcomes == ["scan_completed", "scan_request_duplicate"]
    assert (len(store.outbox), kicks) == (1, ["kick"])
