"""One observation of one target, endpoint or file: what `certmon check` and the scan handler both call.

`expiry` is one handshake (the chain and the negotiated parameters). `full` is that handshake plus the
enumeration of versions, cipher suites, server preference and key-exchange groups (`probes`).
"""

import asyncio
from datetime import datetime

import structlog

from services.scanner.domain.limits import DEFAULT_LIMITS, ProbeLimits
from services.scanner.probes.enumeration import complete_full
from services.scanner.probes.files.source import observe_file
from services.scanner.probes.handshake.endpoint import observe_endpoint
from shared.events import Observation, Target

log = structlog.get_logger(__name__)


async def observe(target: Target, *, now: datetime, limits: ProbeLimits = DEFAULT_LIMITS) -> Observation:
    """Observe a file target (read off the event loop) or an endpoint; never raises for bad peers or files."""
    if target.file is not None:
        observation = await asyncio.to_thread(observe_file, target, now=now, limits=limits)
        # Logged here, as `observe_endpoint` logs a handshake, and not in `observe_file`: `certmon check --file DIR`
        # writes each file's result, and a log call per file costs it about 20 µs even when filtered out.
        error = observation.error
        log.info(
            "file_observed",
            target=target.key,
            certificates=len(observation.chain),
            error_kind=error.kind if error else None,
        )
        return observation
    observation = await observe_endpoint(target, now=now, limits=limits)
    if target.profile == "full":
        return await complete_full(observation, limits=limits)
    return observation
