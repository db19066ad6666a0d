"""One observation of one target, endpoint or file: what `certmon check` and the scan handler both call.

The target's probes (`probe_kinds`) run in order from the registry, each completing the observation of the one
before: a file is read; `expiry` is one handshake (the chain and the negotiated parameters); `full` is that
handshake plus the enumeration of versions, cipher suites, server preference and key-exchange groups.
"""

from dataclasses import dataclass
from datetime import datetime

from services.scanner.domain.limits import DEFAULT_LIMITS, ProbeLimits
from services.scanner.domain.probe_kinds import probe_kinds
from services.scanner.probes.registry import PROBES
from services.scanner.service_layer.metrics import timed_scan
from services.scanner.service_layer.scan_limiter import ScanLimiter
from shared.events import Observation, Target


async def observe(target: Target, *, now: datetime, limits: ProbeLimits = DEFAULT_LIMITS) -> Observation:
    """Observe a file target (read off the event loop) or an endpoint; never raises for bad peers or files."""
    first, *rest = probe_kinds(target)
    observation = await PROBES[first](target, None, now=now, limits=limits)
    for kind in rest:
        observation = await PROBES[kind](target, observation, now=now, limits=limits)
    return observation


@dataclass(frozen=True)
class Observer:
    """Observes targets within one process's probe limits and scan caps (the total, and per host or file); built
    by the scanner's bootstrap for the scan handler and for `certmon check` alike."""

    limits: ProbeLimits
    limiter: ScanLimiter

    async def observe(self, target: Target, *, now: datetime) -> Observation:
        """Observe `target` once a scan slot for it is free; counted and timed (`certmon_scans_total`,
        `certmon_scan_duration_seconds`, the wait for the slot left out)."""
        async with self.limiter.slot((target.host or target.file or target.key).lower()):
            with timed_scan(target) as result:
                result.append(await observe(target, now=now, limits=self.limits))
            return result[0]
