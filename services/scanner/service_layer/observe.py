"""One observation of one target, endpoint or file: what `certmon check` and the scan handler both call.

The target's probes (`probe_kinds`) run in order from the registry, each completing the observation of the one
before: a file is read; `expiry` is one handshake (the chain and the negotiated parameters); `full` is that
handshake plus the enumeration of versions, cipher suites, server preference and key-exchange groups.
"""

from datetime import datetime

from services.scanner.domain.limits import DEFAULT_LIMITS, ProbeLimits
from services.scanner.domain.probe_kinds import probe_kinds
from services.scanner.probes.registry import PROBES
from shared.events import Observation, Target


async def observe(target: Target, *, now: datetime, limits: ProbeLimits = DEFAULT_LIMITS) -> Observation:
    """Observe a file target (read off the event loop) or an endpoint; never raises for bad peers or files."""
    first, *rest = probe_kinds(target)
    observation = await PROBES[first](target, None, now=now, limits=limits)
    for kind in rest:
        observation = await PROBES[kind](target, observation, now=now, limits=limits)
    return observation
