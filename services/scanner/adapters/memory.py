"""The in-memory twins of the scanner's PostgreSQL stores: same semantics, no database, state a test can read.

Each method runs without awaiting in between, so on one event loop it is as atomic as the PostgreSQL
transaction it stands for: of concurrent claimers each due target or sweep is claimed by exactly one. Claimed
targets tie by key, as in PostgreSQL; the sweep twin orders ties the way they were inserted, where PostgreSQL
leaves them unordered.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.scanner.domain.discovery import Endpoint, EndpointChange, KnownEndpoint
from services.scanner.domain.schedule import next_due, request_lease, sweep_next_due
from services.scanner.ports import ScanRecord, SweepSchedule, SyncSummary, scan_request
from shared.events import CloudEvent, Observation, ScanRequested, Target


@dataclass
class TargetRow:
    """A stored target: its schedule, its pending request (the slot it was due in, and until when it holds off
    the next one) and the last result recorded for it."""

    target: Target
    next_due: datetime
    enabled: bool = True
    last_observed_at: datetime | None = None
    last_error: str | None = None
    pending_due_at: datetime | None = None
    pending_until: datetime | None = None

    @property
    def claimable_at(self) -> datetime:
        """When it may be claimed: once due, and once a pending request's lease ran out."""
        return self.next_due if self.pending_until is None else max(self.next_due, self.pending_until)


class InMemoryTargetStore:
    """A `TargetStore` in memory. `outbox` holds the events committed, in order; `targets` the rows by key."""

    def __init__(self) -> None:
        self.targets: dict[str, TargetRow] = {}
        self.outbox: list[CloudEvent] = []
        self.processed: set[tuple[str, str]] = set()

    async def sync(self, targets: Iterable[Target], *, now: datetime) -> SyncSummary:
        """Upsert the configured targets and disable the other configured ones (see `TargetStore.sync`); reads
        `targets` once, on the event loop."""
        keys: list[str] = []
        for target in targets:
            self._upsert(target, now)
            keys.append(target.key)
        configured = set(keys)
        dropped = [
            row
            for key, row in self.targets.items()
            if row.enabled and key not in configured and row.target.discovered_by is None
        ]
        for row in dropped:
            row.enabled = False
        return SyncSummary(configured=len(keys), disabled=len(dropped))

    async def register_discovered(self, targets: list[Target], *, now: datetime) -> None:
        """Upsert discovered targets, leaving enabled configured ones as they are."""
        for target in targets:
            row = self.targets.get(target.key)
            if row is None or row.target.discovered_by is not None or not row.enabled:
                self._upsert(target, now)

    async def claim_due(self, now: datetime, limit: int) -> list[ScanRequested]:
        """Claim up to `limit` claimable targets at `now`, earliest claimable first: reschedule them, mark their
        requests pending and enqueue them; returns the requests in the order of their slots."""
        claimable = sorted(
            ((key, row) for key, row in self.targets.items() if row.enabled and row.claimable_at <= now),
            key=lambda pair: (pair[1].claimable_at, pair[0]),
        )
        claimed = []
        for key, row in sorted(claimable[:limit], key=lambda pair: (pair[1].next_due, pair[0])):
            interval = row.target.interval_seconds
            claimed.append(ScanRequested(target=row.target, due_at=row.next_due))
            self._enqueue(scan_request(row.target, row.next_due))
            row.pending_due_at, row.pending_until = row.next_due, now + request_lease(interval)
            row.next_due = next_due(key, interval, now)
        return claimed

    async def pending(self, now: datetime) -> int:
        """Requests claimed and not yet observed whose lease has not run out."""
        return sum(1 for row in self.targets.values() if row.pending_until is not None and row.pending_until > now)

    async def make_all_due(self, now: datetime) -> int:
        """Make every enabled target due at `now`, forgetting pending requests; returns how many."""
        enabled = [row for row in self.targets.values() if row.enabled]
        for row in enabled:
            row.next_due, row.pending_due_at, row.pending_until = now, None, None
        return len(enabled)

    async def record_observation(
        self, consumer: str, event_id: str, observation: Observation, outgoing: CloudEvent, *, due_at: datetime
    ) -> bool:
        """Mark `event_id` processed, note the target's last result (clearing its pending request of slot
        `due_at`) and enqueue `outgoing`; False if done before."""
        (first,) = await self.record_observations(consumer, [ScanRecord(event_id, due_at, observation, outgoing)])
        return first

    async def record_observations(self, consumer: str, records: list[ScanRecord]) -> list[bool]:
        """`record_observation` of each record in order; what each returned."""
        return [self._record(consumer, record) for record in records]

    def _record(self, consumer: str, record: ScanRecord) -> bool:
        if (consumer, record.event_id) in self.processed:
            return False
        self.processed.add((consumer, record.event_id))
        row = self.targets.get(record.observation.target.key)
        if row is not None:
            error = record.observation.error
            row.last_observed_at = record.observation.observed_at
            row.last_error = f"{error.kind}: {error.message}" if error else None
            if row.pending_due_at == record.due_at:
                row.pending_due_at, row.pending_until = None, None
        self._enqueue(record.outgoing)
        return True

    def _upsert(self, target: Target, now: datetime) -> None:
        row = self.targets.get(target.key)
        if row is None:
            self.targets[target.key] = TargetRow(target, now)
            return
        row.target, row.enabled = target, True
        row.next_due = min(row.next_due, next_due(target.key, target.interval_seconds, now))
        if row.pending_until is not None:
            row.pending_until = min(row.pending_until, now + request_lease(target.interval_seconds))

    def _enqueue(self, event: CloudEvent) -> None:
        # Like the outbox table's primary key: an event id enqueued twice is kept once.
        if all(queued.id != event.id for queued in self.outbox):
            self.outbox.append(event)


@dataclass
class SweepRow:
    """A stored sweep: its schedule and, while claimed, until when its claim holds."""

    interval_seconds: int
    lease: timedelta
    next_due: datetime
    enabled: bool = True
    running_until: datetime | None = None


class InMemoryDiscoveryStore:
    """A `DiscoveryStore` in memory: `sweeps` by name, `endpoints` by sweep and endpoint."""

    def __init__(self) -> None:
        self.sweeps: dict[str, SweepRow] = {}
        self.endpoints: dict[tuple[str, Endpoint], KnownEndpoint] = {}

    async def sync_sweeps(self, sweeps: list[SweepSchedule], *, now: datetime) -> int:
        """Upsert the configured sweeps and disable the others; returns how many were disabled."""
        for sweep in sweeps:
            # PostgreSQL keeps the lease in whole seconds.
            lease = timedelta(seconds=int(sweep.lease.total_seconds()))
            row = self.sweeps.get(sweep.name)
            if row is None:
                self.sweeps[sweep.name] = SweepRow(sweep.interval_seconds, lease, now)
                continue
            row.interval_seconds, row.lease, row.enabled = sweep.interval_seconds, lease, True
            row.next_due = min(row.next_due, sweep_next_due(sweep.name, sweep.interval_seconds, now))
        names = {s.name for s in sweeps}
        dropped = [row for name, row in self.sweeps.items() if row.enabled and name not in names]
        for row in dropped:
            row.enabled = False
        return len(dropped)

    async def claim_due(self, now: datetime) -> str | None:
        """Claim the earliest enabled sweep due at `now` whose claim is free or expired; returns its name."""
        free = [
            (row.next_due, name)
            for name, row in self.sweeps.items()
            if row.enabled and row.next_due <= now and (row.running_until is None or row.running_until <= now)
        ]
        if not free:
            return None
        _, name = min(free, key=lambda pair: pair[0])
        row = self.sweeps[name]
        row.next_due = sweep_next_due(name, row.interval_seconds, now)
        row.running_until = now + row.lease
        return name

    async def known(self, sweep: str) -> list[KnownEndpoint]:
        """Every endpoint recorded for `sweep`."""
        return [known for (name, _), known in self.endpoints.items() if name == sweep]

    async def finish(self, sweep: str, changes: list[tuple[EndpointChange, str]], *, now: datetime) -> None:
        """Record each endpoint's new state and release the sweep's claim."""
        for change, _ in changes:
            self.endpoints[(sweep, change.endpoint)] = KnownEndpoint(
                change.endpoint, change.state, change.missing_sweeps
            )
        await self.release(sweep)

    async def release(self, sweep: str) -> None:
        """Free the sweep's claim."""
        if sweep in self.sweeps:
            self.sweeps[sweep].running_until = None
