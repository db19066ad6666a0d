"""The scheduler loop: every tick, claim the due targets (which enqueues their scan requests) and kick the relay.

Several replicas may run it at once; `TargetsRepository.claim_due` guarantees each due target is claimed once.
"""

import asyncio
import contextlib

import asyncpg
import structlog

from services.scanner.adapters.targets_repo import TargetsRepository
from shared.clock import Clock
from shared.outbox import OutboxRelay

log = structlog.get_logger(__name__)

BATCH = 100


class Scheduler:
    """Claims due targets every `tick_seconds` until stopped."""

    def __init__(self, repo: TargetsRepository, relay: OutboxRelay, *, clock: Clock, tick_seconds: float) -> None:
        self._repo, self._relay, self._clock, self._tick = repo, relay, clock, tick_seconds
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> int:
        """Claim every target due now, in batches; returns how many scan requests were enqueued."""
        total = 0
        while True:
            claimed = await self._repo.claim_due(self._clock(), BATCH)
            total += len(claimed)
            if claimed:
                self._relay.kick()
            if len(claimed) < BATCH:
                break
        if total:
            log.info("scans_scheduled", count=total)
        return total

    async def trigger_now(self) -> int:
        """Make every enabled target due and schedule them at once; returns how many were scheduled."""
        await self._repo.make_all_due(self._clock())
        return await self.tick()

    async def start(self) -> None:
        """Start ticking in the background."""
        self._task = asyncio.create_task(self._run(), name="scanner:scheduler")

    async def stop(self) -> None:
        """Stop ticking (a tick in progress is cancelled; its transaction rolls back)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # The database is away; the next tick retries, and nothing was claimed by this one.
                log.warning("schedule_tick_failed", error=str(exc))
            await asyncio.sleep(self._tick)
