"""The scheduler on the in-memory target store: what a tick claims, enqueues and kicks."""

import datetime as dt

from services.scanner.adapters.memory import InMemoryTargetStore
from services.scanner.service_layer.scheduler import BATCH, Scheduler
from shared.events import ScanRequested, Target

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
