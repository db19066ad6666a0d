"""The scheduler loop: every tick, claim the due targets (which enqueues their scan requests) and kick the relay.

Several replicas may run it at once; `TargetStore.claim_due` guarantees each due target is claimed once, and
holds a target back while its previous request is pending. How late each claim came is
`certmon_schedule_lateness_seconds`; the worst of a tick is in its `scans_scheduled` line.
"""

from collections.abc import Callable

import structlog

from services.scanner.ports import TargetStore
from services.scanner.service_layer.metrics import SCHEDULE_LATENESS
from shared.clock import Clock
from shared.periodic import PeriodicTask

log = structlog.get_logger(__name__)

#: Targets claimed per statement: a batch is one transaction of two statements, whatever its size.
BATCH = 500
#: Scan requests pending at once, across replicas (each replica's tick tops them up to this). Requests and the
#: observations they cause leave through the same outbox, in order: claiming a whole estate at once (every target
#: is due at the first start) would queue every observation behind every request. Bounded, the requests leave a
#: few seconds' work ahead of the scanners and the targets held back wait, visibly, as lateness.
MAX_PENDING = 10_000


class Scheduler:
    """Claims due targets every `tick_seconds` until stopped; `on_enqueued` runs after a claim enqueued requests."""

    def __init__(
        self,
        repo: TargetStore,
        *,
        on_enqueued: Callable[[], None],
        clock: Clock,
        tick_seconds: float,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._repo, self._on_enqueued, self._clock, self._max_pending = repo, on_enqueued, clock, max_pending
        # The database may be away; the next tick retries, and a failed tick claimed nothing.
        self._loop = PeriodicTask(
            "scanner:scheduler",
            self.tick,
            interval=tick_seconds,
        )

    async def tick(self) -> int:
        """Claim the targets due now, in batches, up to `max_pending` requests pending in all; returns how many
        scan requests were enqueued."""
        total, worst = 0, 0.0
        room = self._max_pending - await self._repo.pending(self._clock())
        while room > 0:
            now = self._clock()
            limit = min(BATCH, room)
            claimed = await self._repo.claim_due(now, limit)
            total += len(claimed)
            room -= len(claimed)
            for request in claimed:
                lateness = (now - request.due_at).total_seconds()
                SCHEDULE_LATENESS.observe(lateness)
                worst = max(worst, lateness)
            if claimed:
                self._on_enqueued()
            if len(claimed) < limit:
                break
        if total:
            log.info("scans_scheduled", count=total, worst_lateness_seconds=round(worst, 3))
        return total

    async def trigger_now(self) -> int:
        """Make every enabled target due and schedule them at once; returns how many were scheduled."""
        await self._repo.make_all_due(self._clock())
        return await self.tick()

    async def start(self) -> None:
        """Start ticking in the background."""
        await self._loop.start()

    async def stop(self) -> None:
        """Stop ticking (a tick in progress is cancelled; its transaction rolls back)."""
        await self._loop.stop()
