"""The scanner's one consumer: `scan.requested.v1` → observe the target → `certificate.observed.v1`.

The observation is published through the outbox, in the same transaction that records the request as
processed, so a crash between the two neither loses the observation nor publishes it twice; its event id is
derived from the request's, so a redelivered request yields the same observation id downstream. A redelivery is
only told apart when it is recorded: it is scanned again and then changes nothing, which costs a scan in the rare
case (a scanner that stopped between commit and ack) to save every first delivery a round trip. Recording clears
the target's pending request, so the scheduler may request it again. The bus validates each request before the
handler sees it; a malformed one is dead-lettered there.

The requests that arrive together reach `handle_batch`: their targets are observed concurrently and their
observations recorded in one transaction (a single request is a batch of one), which is what lets a scanner keep up
with thousands of certificate files a second.
"""

import asyncio
from collections.abc import Callable, Sequence

import structlog

from services.scanner.ports import SOURCE, ScanRecord, TargetStore
from services.scanner.service_layer.observe import Observer
from shared.broker import Message, Subscription
from shared.clock import Clock
from shared.events import ScanRequested, derived_id, make_event

log = structlog.get_logger(__name__)

QUEUE = "certmon.scanner.scan-requests"
CONSUMER = "scanner.scan-requests"
SCAN_REQUESTED = "scan.requested.v1"

#: How long the observations of a batch that are done wait for the others before they are recorded without them.
#: Files are read in milliseconds, so a batch of them (the bulk of the requests) is recorded in one transaction; an
#: endpoint that times out (10 s by default) holds the rest of its batch back this long at most, and is recorded later
#: with the others that were late. Shorter would cost more transactions per batch of endpoints for little: a second is
#: nothing beside a scan interval. (The batch's acknowledgements, and the next batch, still wait for its slowest scan.)
RECORD_WINDOW_SECONDS = 1.0


class ScanRequestHandler:
    """Handles `scan.requested.v1` events, one per call or a batch per `handle_batch`; calls may run concurrently."""

    def __init__(
        self,
        repo: TargetStore,
        *,
        observer: Observer,
        clock: Clock,
        on_enqueued: Callable[[], None],
        record_window: float = RECORD_WINDOW_SECONDS,
    ) -> None:
        self._repo, self._observer, self._clock, self._on_enqueued = repo, observer, clock, on_enqueued
        self._record_window = record_window

    async def __call__(self, message: Message[ScanRequested]) -> None:
        """Observe the requested target and enqueue its observation (once per request id)."""
        await self.handle_batch([message])

    async def handle_batch(self, messages: Sequence[Message[ScanRequested]]) -> None:
        """Observe the requested targets concurrently and enqueue their observations (once per request id), those
        done within `record_window` of each other in one transaction, in the order of their requests."""
        # Tasks of our own, not a TaskGroup: it would wrap a failure in an ExceptionGroup, and the bus must see a
        # database that is away as itself to retry the batch rather than reject its messages.
        scans = [asyncio.create_task(self._scan(message)) for message in messages]
        try:
            pending = set(scans)
            while pending:
                done, pending = await asyncio.wait(pending, timeout=self._record_window)
                if done:
                    await self._record([task.result() for task in scans if task in done])
        finally:  # a failure, or the bus closing, ends the batch: the scans still running are not wanted
            for task in scans:
                task.cancel()
            await asyncio.gather(*scans, return_exceptions=True)

    async def _scan(self, message: Message[ScanRequested]) -> ScanRecord:
        """Observe the requested target; what recording the observation takes."""
        event, request = message.event, message.payload
        observation = await self._observer.observe(request.target, now=self._clock())
        outgoing = make_event(
            "certificate.observed.v1",
            observation,
            source=SOURCE,
            subject=request.target.key,
            event_id=derived_id(event.id, "observed"),
        )
        return ScanRecord(event.id, request.due_at, observation, outgoing)

    async def _record(self, records: list[ScanRecord]) -> None:
        """Record the observations in one transaction, then have the relay publish what was enqueued."""
        firsts = await self._repo.record_observations(CONSUMER, records)
        if any(firsts):
            self._on_enqueued()
        for record, first in zip(records, firsts, strict=True):
            # Named here: the bus binds a message's event id and target for a single message, not for a batch.
            about = {"event_id": record.event_id, "target": record.observation.target.key}
            if first:
                error = record.observation.error
                log.info("scan_completed", **about, error_kind=error.kind if error else None)
            else:
                log.info("scan_request_duplicate", **about)


def subscriptions(handler: ScanRequestHandler, *, prefetch: int) -> list[Subscription]:
    """The scanner's one queue: scan requests, as many at once as the scan concurrency allows (`prefetch`), handed
    to the handler in batches of up to as many, so that one batch can hold every request in flight."""
    return [
        Subscription(
            "scanner",
            QUEUE,
            {SCAN_REQUESTED: handler},
            prefetch=prefetch,
            batch_handlers={SCAN_REQUESTED: handler.handle_batch},
            batch_size=prefetch,
        )
    ]
