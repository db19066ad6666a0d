"""The scanner's one consumer: `scan.requested.v1` → observe the target → `certificate.observed.v1`.

The observation is published through the outbox, in the same transaction that records the request as
processed, so a crash between the two neither loses the observation nor publishes it twice; its event id is
derived from the request's, so a redelivered request yields the same observation id downstream.
A malformed request raises (the bus rejects it and, after the delivery limit, dead-letters it).
"""

from collections.abc import Callable

import structlog

from services.scanner.adapters.targets_repo import SOURCE, TargetsRepository
from services.scanner.domain.limits import ProbeLimits
from services.scanner.service_layer.observe import observe
from services.scanner.service_layer.scan_limiter import ScanLimiter
from shared.clock import Clock
from shared.events import CloudEvent, ScanRequested, derived_id, make_event

log = structlog.get_logger(__name__)

QUEUE = "certmon.scanner.scan-requests"
CONSUMER = "scanner.scan-requests"


class ScanRequestHandler:
    """Handles one `scan.requested.v1` event at a time per call; calls may run concurrently."""

    def __init__(
        self,
        repo: TargetsRepository,
        *,
        limiter: ScanLimiter,
        limits: ProbeLimits,
        clock: Clock,
        on_enqueued: Callable[[], None],
    ) -> None:
        self._repo, self._limiter = repo, limiter
        self._limits, self._clock, self._on_enqueued = limits, clock, on_enqueued

    async def __call__(self, event: CloudEvent) -> None:
        """Observe the requested target and enqueue its observation (once per request id)."""
        request = ScanRequested.model_validate(event.data)
        target = request.target
        bound = log.bind(event_id=event.id, routing_key=event.routing_key, target=target.key)
        if await self._repo.already_processed(CONSUMER, event.id):
            bound.info("scan_request_duplicate")
            return
        async with self._limiter.slot((target.host or target.file or target.key).lower()):
            observation = await observe(target, now=self._clock(), limits=self._limits)
        outgoing = make_event(
            "certificate.observed.v1",
            observation,
            source=SOURCE,
            subject=target.key,
            event_id=derived_id(event.id, "observed"),
        )
        if await self._repo.record_observation(CONSUMER, event.id, observation, outgoing):
            self._on_enqueued()
            bound.info("scan_completed", error_kind=observation.error.kind if observation.error else None)
        else:
            bound.info("scan_request_duplicate")
