"""The scheduler on the in-memory target store: what a tick claims, enqueues and kicks."""

import datetime as dt

from structlog.testing import capture_logs

from services.scanner.adapters.memory import InMemoryTargetStore
from services.scanner.domain.schedule import next_due
from services.scanner.service_layer.scheduler import BATCH, Scheduler
from shared.events import Observation, ScanRequested, Target, make_event

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)


def files(n: int) -> list[Target]:
    """`n` certificate-file targets scanned hourly."""
    return [Target(file=f"/etc/ssl/certs/{i}.pem", interval_seconds=3600) for i in range(n)]


def scheduler_at(store: InMemoryTargetStore, when: dt.datetime, kicks: list[str]) -> Scheduler:
    """A scheduler whose clock reads `when`; `kicks` notes each relay kick."""
    return Scheduler(store, on_enqueued=lambda: kicks.append("kick"), clock=lambda: when, tick_seconds=60)


async def test_a_tick_claims_every_due_target_in_batches_and_kicks_after_each() -> None:
    """More due targets than one batch: one tick claims them all, one scan request each, a kick per batch."""
    store, kicks = InMemoryTargetStore(), []
    await store.sync(files(BATCH * 2 + 50), now=NOW)
    assert await scheduler_at(store, NOW, kicks).tick() == BATCH * 2 + 50
    assert len(store.outbox) == BATCH * 2 + 50
    assert {e.routing_key for e in store.outbox} == {"scan.requested.v1"}
    assert kicks == ["kick"] * 3


async def test_a_tick_tops_the_pending_requests_up_to_the_bound_and_no_further() -> None:
    """With 10 due targets and room for 4 pending requests, a tick claims 4; the next claims only as many as were
    observed meanwhile; the others stay due (and will count their wait as lateness)."""
    store, kicks = InMemoryTargetStore(), []
    await store.sync(files(10), now=NOW)
    bounded = Scheduler(
        store, on_enqueued=lambda: kicks.append("kick"), clock=lambda: NOW, tick_seconds=60, max_pending=4
    )
    assert await bounded.tick() == 4
    assert await bounded.tick() == 0
    for event in store.outbox[:3]:
        request = ScanRequested.model_validate(event.data)
        observation = Observation(target=request.target, observed_at=NOW)
        outgoing = make_event("certificate.observed.v1", observation, source="test", subject=request.target.key)
        await store.record_observation("test", event.id, observation, outgoing, due_at=request.due_at)
    assert await bounded.tick() == 3
    assert await store.pending(NOW) == 4


async def test_a_tick_with_nothing_due_enqueues_nothing_and_does_not_kick() -> None:
    """Before their due time targets are left alone, and the relay is not woken."""
    store, kicks = InMemoryTargetStore(), []
    await store.sync(files(3), now=NOW)
    assert await scheduler_at(store, NOW - dt.timedelta(seconds=1), kicks).tick() == 0
    assert (store.outbox, kicks) == ([], [])


async def test_trigger_now_schedules_every_enabled_target_again() -> None:
    """Right after a tick, `trigger_now` requests a new scan of each enabled target, due now; disabled ones wait."""
    store, kicks = InMemoryTargetStore(), []
    await store.sync(files(3), now=NOW)
    await scheduler_at(store, NOW, kicks).tick()
    await store.sync(files(2), now=NOW)
    later = NOW + dt.timedelta(minutes=1)
    assert await scheduler_at(store, later, kicks).trigger_now() == 2
    again = [ScanRequested.model_validate(e.data) for e in store.outbox[3:]]
    assert [(r.target, r.due_at) for r in again] == [(t, later) for t in files(2)]


async def test_a_tick_skips_a_target_whose_request_is_pending_and_logs_the_wait_as_lateness() -> None:
    """Of two minutely targets due again, the one whose request was observed is claimed, late by the time since its
    due time; the other, still pending, is left for later."""
    store, kicks = InMemoryTargetStore(), []
    done, waiting = [Target(file=f"/etc/ssl/certs/{i}.pem", interval_seconds=60) for i in range(2)]
    await store.sync([done, waiting], now=NOW)
    await scheduler_at(store, NOW, kicks).tick()
    observation = Observation(target=done, observed_at=NOW)
    outgoing = make_event("certificate.observed.v1", observation, source="test", subject=done.key)
    await store.record_observation("test", store.outbox[0].id, observation, outgoing, due_at=NOW)
    later = NOW + dt.timedelta(minutes=5)
    with capture_logs() as logs:
        assert await scheduler_at(store, later, kicks).tick() == 1
    lateness = (later - next_due(done.key, 60, NOW)).total_seconds()
    assert logs == [
        {"event": "scans_scheduled", "count": 1, "worst_lateness_seconds": round(lateness, 3), "log_level": "info"}
    ]
    assert ScanRequested.model_validate(store.outbox[-1].data).target == done
