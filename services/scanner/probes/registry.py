"""The probe registry: each `ProbeKind` mapped to its probe behind one signature, as sslyze maps each
`ScanCommand` to its plugin.

A probe observes a target, completing the observation made by the kinds run before it (None for the first),
and never raises for a bad peer or file: what went wrong is the observation's `error`.
"""

import asyncio
from collections.abc import Awaitable, Mapping
from datetime import datetime
from typing import Protocol

import structlog

from services.scanner.domain.limits import ProbeLimits
from services.scanner.domain.probe_kinds import ProbeKind
from services.scanner.probes.enumeration import complete_full
from services.scanner.probes.files.source import observe_file
from services.scanner.probes.handshake.endpoint import observe_endpoint
from shared.events import Observation, Target

log = structlog.get_logger(__name__)


class Probe(Protocol):
    """Observe `target`, completing `so_far`, the observation of the probes run before (None for the first)."""

    def __call__(
        self, target: Target, so_far: Observation | None, *, now: datetime, limits: ProbeLimits
    ) -> Awaitable[Observation]: ...


async def _files(target: Target, so_far: Observation | None, *, now: datetime, limits: ProbeLimits) -> Observation:
    """Read the target's file off the event loop."""
    observation = await asyncio.to_thread(observe_file, target, now=now, limits=limits)
    # Logged here, as `observe_endpoint` logs a handshake, and not in `observe_file`: `certmon check --file DIR`
    # calls that for each file and writes each result itself, where a log call per file is measurable even
    # when filtered out.
    error = observation.error
    log.info(
        "file_observed",
        target=target.key,
        certificates=len(observation.chain),
        error_kind=error.kind if error else None,
    )
    return observation


async def _handshake(target: Target, so_far: Observation | None, *, now: datetime, limits: ProbeLimits) -> Observation:
    """One handshake (two when the target also asks for the chain served without SNI)."""
    return await observe_endpoint(target, now=now, limits=limits)


async def _enumeration(
    target: Target, so_far: Observation | None, *, now: datetime, limits: ProbeLimits
) -> Observation:
    """Complete the handshake's observation with the enumeration of the address it connected to."""
    if so_far is None:
        raise ValueError("the enumeration completes a handshake's observation: run the handshake probe first")
    return await complete_full(so_far, limits=limits)


#: Every probe kind → its probe.
PROBES: Mapping[ProbeKind, Probe] = {
    ProbeKind.FILES: _files,
    ProbeKind.HANDSHAKE: _handshake,
    ProbeKind.ENUMERATION: _enumeration,
}
