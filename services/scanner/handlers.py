"""The scanner's one consumer: `scan.requested.v1` → observe the target → `certificate.observed.v1`.

The observation is published through the outbox, in the same transaction that records the request as
processed, so a crash between the two neither loses the observation nor publishes it twice; its event id is
derived from the request's, so a redelivered request yields the same observation id downstream. A redelivery is
only told apart when it is recorded: it is scanned again and then changes nothing, which costs a scan in the rare
case (a scanner that stopped between commit and ack) to save every first delivery a round trip. Recording clears
the target's pending request, so the scheduler may request it again. The bus validates each request before the
handler sees it; a malformed one is dead-lettered there.

Each request is scanned, recorded and acknowledged on its own, so an endpoint that does not answer (10 s to its
handshake timeout) holds back its own request only. Only the recording is shared: the records of the scans that
finish together are group-committed (`shared.gather`) in one transaction, which is what lets a scanner keep up with
thousands of certificate files a second.
"""

from collections.abc import Callable, Sequence

import structlog

from services.scanner.ports import SOURCE, ScanRecord, TargetStore
from services.scanner.service_layer.observe import Observer
from shared.broker import Message, Subscription
from shared.clock import Clock
from shared.events import ScanRequested, derived_id, make_event
from shared.gather import Gatherer

log = structlog.get_logger(__name__)

QUEUE = "certmon.scanner.scan-requests"
CONSUMER = "scanner.scan-requests"

#: The most records one transaction takes. A batch holds at most the scans in flight (the scan concurrency, 64 by
#: default); this only bounds one statement, its row locks and a failed batch's replay one by one, for a scanner
#: configured with a far larger concurrency.
RECORD_BATCH = 200


class ScanRequestHandler:
    """Handles one `scan.requested.v1` event per call; calls may run concurrently, and those whose scans finish
    together are recorded in one transaction."""

    def __init__(
        self,
        repo: TargetStore,
        *,
        observer: Observer,
        clock: Clock,
        on_enqueued: Callable[[], None],
    ) -> None:
        self._repo, self._observer, self._clock, self._on_enqueued = repo, observer, clock, on_enqueued
        self._records = Gatherer[ScanRecord, bool](
            "scanner:records", self._record, self._record_alone, max_size=RECORD_BATCH
        )

    async def __call__(self, message: Message[ScanRequested]) -> None:
        """Observe the requested target and enqueue its observation (once per request id)."""
        record = await self._scan(message)
        if await self._records.submit(record):
            error = record.observation.error
            log.info("scan_completed", error_kind=error.kind if error else None)
        else:
            log.info("scan_request_duplicate")

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

    async def _record(self, records: Sequence[ScanRecord]) -> list[bool]:
        """Record the observations in one transaction, then have the relay publish what was enqueued; which
        records were firsts (not duplicates)."""
        firsts = await self._repo.record_observations(CONSUMER, list(records))
        if any(firsts):
            self._on_enqueued()
        return firsts

    async def _record_alone(self, record: ScanRecord) -> bool:
        """`_record` of one record (a lone scan, or one of a batch that failed)."""
        (first,) = await self._record([record])
        return first


def subscriptions(handler: ScanRequestHandler, *, prefetch: int) -> list[Subscription]:
    """The scanner's one queue: scan requests, as many at once as the scan concurrency allows."""
    return [Subscription("scanner", QUEUE, {"scan.requested.v1": handler}, prefetch=prefetch)]
