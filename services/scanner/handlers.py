"""The scanner's one consumer: `scan.requested.v1` → observe the target → `certificate.observed.v1`.

The observation is published through the outbox, in the same transaction that records the request as
processed, so a crash between the two neither loses the observation nor publishes it twice; its event id is
derived from the request's, so a redelivered request yields the same observation id downstream. A redelivery is
only told apart when it is recorded: it is scanned again and then changes nothing, which costs a scan in the rare
case (a scanner that stopped between commit and ack) to save every first delivery a round trip. Recording clears
the target's pending request, so the scheduler may request it again. The bus validates each request before the
handler sees it; a malformed one is dead-lettered there.
"""

from collections.abc import Callable

import structlog

from services.scanner.ports import SOURCE, TargetStore
from services.scanner.service_layer.observe import Observer
from shared.broker import Message, Subscription
from shared.clock import Clock
from shared.events import ScanRequested, derived_id, make_event

log = structlog.get_logger(__name__)

QUEUE = "certmon.scanner.scan-requests"
CONSUMER = "scanner.scan-requests"


class ScanRequestHandler:
    """Handles one `scan.requested.v1` event at a time per call; calls may run concurrently."""

    def __init__(
        self,
        repo: TargetStore,
        *,
        observer: Observer,
        clock: Clock,
        on_enqueued: Callable[[], None],
    ) -> None:
        self._repo, self._observer, self._clock, self._on_enqueued = repo, observer, clock, on_enqueued

    async def __call__(self, message: Message[ScanRequested]) -> None:
        """Observe the requested target and enqueue its observation (once per request id)."""
        event, target = message.event, message.payload.target
        observation = await self._observer.observe(target, now=self._clock())
        outgoing = make_event(
            "certificate.observed.v1",
            observation,
            source=SOURCE,
            subject=target.key,
            event_id=derived_id(event.id, "observed"),
        )
        if await self._repo.record_observation(
            CONSUMER, event.id, observation, outgoing, due_at=message.payload.due_at
        ):
            self._on_enqueued()
            log.info("scan_completed", error_kind=observation.error.kind if observation.error else None)
        else:
            log.info("scan_request_duplicate")


def subscriptions(handler: ScanRequestHandler, *, prefetch: int) -> list[Subscription]:
    """The scanner's one queue: scan requests, as many at once as the scan concurrency allows."""
    return [Subscription("scanner", QUEUE, {"scan.requested.v1": handler}, prefetch=prefetch)]
