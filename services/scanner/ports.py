"""What the scanner's handler, scheduler and sweeper need from storage: a target store and a discovery store.

Each port has two adapters that pass the same contract tests: PostgreSQL (`adapters.targets_repo`,
`adapters.discovery_repo`) and an in-memory twin (`adapters.memory`) for unit tests. A store's writes and the
events they cause commit together: claiming a target enqueues its scan request in the store's outbox, and
recording an observation enqueues the observation, so a crash never loses one nor publishes it twice.

Errors: `StoreUnavailable` when the store cannot be reached, raised where a caller must tell it apart (a
sweep releasing its claim after a failure); anything else a store raises is a bug or an outage to retry later.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from services.scanner.domain.discovery import EndpointChange, KnownEndpoint
from shared.events import CloudEvent, Observation, ScanRequested, Target, derived_id, make_event

#: The CloudEvents `source` of everything the scanner publishes.
SOURCE = "certmon/scanner"


class StoreUnavailable(Exception):
    """The store could not be reached; what was asked of it did not happen."""


@dataclass(frozen=True)
class SyncSummary:
    """What a sync did: how many targets are configured (upserted) and how many were disabled."""

    configured: int
    disabled: int


@dataclass(frozen=True)
class SweepSchedule:
    """A sweep as the schedule knows it: how often it runs and how long one run may hold its claim."""

    name: str
    interval_seconds: int
    lease: timedelta


@dataclass(frozen=True)
class ScanRecord:
    """What recording one scan request's result takes: the request's id and slot (`due_at`), the observation,
    and the event that carries it downstream."""

    event_id: str
    due_at: datetime
    observation: Observation
    outgoing: CloudEvent


def scan_request(target: Target, due_at: datetime) -> CloudEvent:
    """The `scan.requested.v1` a store enqueues for `target` claimed in the slot due at `due_at`; its id is
    derived from both, so the request of one slot has one id."""
    return make_event(
        "scan.requested.v1",
        ScanRequested(target=target, due_at=due_at),
        source=SOURCE,
        subject=target.key,
        event_id=derived_id("scan", target.key, due_at.isoformat()),
    )


class TargetStore(Protocol):
    """The scheduled targets, the scan requests processed, and the outbox of the events they cause."""

    async def sync(self, targets: Iterable[Target], *, now: datetime) -> SyncSummary:
        """Upsert the configured targets (new ones due at `now`) and disable, never delete, the others.

        `targets` is read once, a chunk at a time, keeping only their keys: it may be a generator that builds
        each target as it is read, so a sync holds no more of an estate at once than a chunk. (The PostgreSQL
        store reads each chunk in a worker thread: building targets lists directories.)

        A target whose interval shrank is due no later than one new interval from `now`, and its pending request
        holds it no longer than the new lease. Targets a discovery sweep registered are not configured, so they
        are left alone rather than disabled.
        """
        ...

    async def register_discovered(self, targets: list[Target], *, now: datetime) -> None:
        """Upsert targets a discovery sweep found (new ones due at `now`), enabled; a configured target with
        the same key wins and is left as it is, unless the config dropped it (then discovery takes it over)."""
        ...

    async def claim_due(self, now: datetime, limit: int) -> list[ScanRequested]:
        """Claim up to `limit` enabled targets due at `now`, earliest first: reschedule them, mark their requests
        pending and enqueue them, atomically; returns the requests (each `due_at` is the slot it was due in).

        A target whose previous request is pending (not yet observed) is not claimed until that request is
        observed or its lease (`domain.schedule.request_lease`) runs out; its due time stays where it was, so
        its claim counts the wait as lateness. Of concurrent claimers each due target is claimed by exactly one.
        """
        ...

    async def pending(self, now: datetime) -> int:
        """How many scan requests are pending at `now`: claimed, not yet observed, their lease not run out."""
        ...

    async def make_all_due(self, now: datetime) -> int:
        """Make every enabled target due at `now` (a "scan everything now"); returns how many.

        An operator's "scan now" wins over pending requests: they are forgotten, so every enabled target is
        requested again, even one whose earlier request is still queued (that one is scanned too) or was lost.
        """
        ...

    async def record_observation(
        self, consumer: str, event_id: str, observation: Observation, outgoing: CloudEvent, *, due_at: datetime
    ) -> bool:
        """Atomically: mark `event_id` (the scan request) processed, note the target's last result, clear its
        pending request if it is this one (the request of slot `due_at`), and enqueue `outgoing`.

        Returns False (and changes nothing) when the event was already processed.
        """
        ...

    async def record_observations(self, consumer: str, records: list[ScanRecord]) -> list[bool]:
        """Atomically, `record_observation` of each record, in their order; returns what each one returned (a
        request id repeated among them is recorded by its first record only).

        Rows are locked in the order of their target keys, so concurrent recorders never deadlock.
        """
        ...


class DiscoveryStore(Protocol):
    """The configured sweeps with their schedule and claim, and the endpoints each sweep found."""

    async def sync_sweeps(self, sweeps: list[SweepSchedule], *, now: datetime) -> int:
        """Upsert the configured sweeps (new ones due at `now`) and disable the others; returns how many disabled.

        A sweep whose interval shrank is due no later than one new interval from `now`.
        """
        ...

    async def claim_due(self, now: datetime) -> str | None:
        """Claim one enabled sweep due at `now` that no replica is running; returns its name, or None.

        The claim moves its next due time on and holds it for its lease: until `finish`, `release` or the lease
        runs out, no other claimer gets it.
        """
        ...

    async def known(self, sweep: str) -> list[KnownEndpoint]:
        """Every endpoint `sweep` has found before, with its recorded state."""
        ...

    async def finish(self, sweep: str, changes: list[tuple[EndpointChange, str]], *, now: datetime) -> None:
        """Atomically: record each endpoint's change (with its target key) and release the sweep's claim."""
        ...

    async def release(self, sweep: str) -> None:
        """Give up a claim without recording results (the sweep failed); it runs again when next due.

        Raises `StoreUnavailable` when the store cannot be reached.
        """
        ...
