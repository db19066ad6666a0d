"""Discovery's pure rules: which addresses and ports a sweep probes, which sweeps are refused, and what a
sweep's results mean for the endpoints found before (new, still present, missing, gone, back again).

No I/O and no clock: every time and every policy is an argument.
"""

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, collapse_addresses, ip_address, ip_network
from typing import Literal

from services.scanner.domain.limits import ProbeLimits, address_allowed
from shared.config import CertmonConfig, server_for
from shared.config.schema import WELL_KNOWN_STARTTLS_PORTS, DiscoverySweep, Scanning
from shared.events import Target

#: The most probes (addresses x ports) one sweep may make; a /16 on one port is the largest that fits.
MAX_SWEEP_PROBES = 65_536
#: An endpoint missing from this many consecutive sweeps is reported gone.
GONE_AFTER_SWEEPS = 2
#: Slack added to a sweep's worst-case duration for its bookkeeping in PostgreSQL.
LEASE_MARGIN = timedelta(minutes=1)

EndpointState = Literal["present", "gone"]
ChangeEvent = Literal["new", "reappeared", "disappeared"]
Network = IPv4Network | IPv6Network


class SweepRefused(ValueError):
    """A configured sweep the scanner will not run; the message names it by its config path and says why."""


@dataclass(frozen=True, order=True)
class Endpoint:
    """One address and TCP port a sweep probes (the address in its canonical text form)."""

    address: str
    port: int


@dataclass(frozen=True)
class KnownEndpoint:
    """An endpoint a sweep found before, as last recorded."""

    endpoint: Endpoint
    state: EndpointState
    missing_sweeps: int


@dataclass(frozen=True)
class EndpointChange:
    """What one sweep means for one endpoint: its new record and the transition to report, if any."""

    endpoint: Endpoint
    state: EndpointState
    missing_sweeps: int
    seen: bool
    event: ChangeEvent | None = None


def sweep_networks(sweep: DiscoverySweep) -> list[Network]:
    """The sweep's CIDRs with overlaps merged, so no address is probed twice."""
    nets = [ip_network(cidr, strict=False) for cidr in sweep.cidrs]
    v4 = [n for n in nets if isinstance(n, IPv4Network)]
    v6 = [n for n in nets if isinstance(n, IPv6Network)]
    return [*collapse_addresses(v4), *collapse_addresses(v6)]


def sweep_ports(sweep: DiscoverySweep) -> list[int]:
    """The sweep's ports, deduplicated and sorted."""
    return sorted(set(sweep.ports))


def sweep_size(sweep: DiscoverySweep) -> int:
    """How many probes the sweep makes at most: addresses in its CIDRs x its ports."""
    return sum(net.num_addresses for net in sweep_networks(sweep)) * len(sweep_ports(sweep))


def check_sweep(sweep: DiscoverySweep, index: int) -> None:
    """Raise `SweepRefused` with a config-level message when the sweep is empty, malformed or too large."""
    where = f"discovery[{index}] ({sweep.name!r})"
    bad_ports = [p for p in sweep.ports if not 1 <= p <= 65535]
    if bad_ports:
        raise SweepRefused(f"{where}: ports {bad_ports} are not TCP ports (1-65535)")
    if not sweep.cidrs or not sweep.ports:
        raise SweepRefused(f"{where}: nothing to sweep (it needs at least one CIDR and one port)")
    size = sweep_size(sweep)
    if size > MAX_SWEEP_PROBES:
        addresses = size // len(sweep_ports(sweep))
        raise SweepRefused(
            f"{where}: {addresses:,} addresses x {len(sweep_ports(sweep))} ports is {size:,} probes, "
            f"more than the limit of {MAX_SWEEP_PROBES:,}; split the ranges into smaller sweeps or list fewer ports"
        )


def plan_sweeps(sweeps: list[DiscoverySweep]) -> tuple[list[DiscoverySweep], list[SweepRefused]]:
    """Split the configured sweeps into those to run and those refused (a repeated name is refused too)."""
    accepted: list[DiscoverySweep] = []
    refused: list[SweepRefused] = []
    names: set[str] = set()
    for index, sweep in enumerate(sweeps):
        try:
            if sweep.name in names:
                raise SweepRefused(f"discovery[{index}] ({sweep.name!r}): another sweep already has this name")
            check_sweep(sweep, index)
        except SweepRefused as problem:
            refused.append(problem)
            continue
        names.add(sweep.name)
        accepted.append(sweep)
    return accepted, refused


def policy_limits(limits: ProbeLimits, scanning: Scanning) -> ProbeLimits:
    """`limits` with the config's deny/allow CIDRs added, so probes and sweeps obey `scanning:`."""
    return replace(
        limits,
        deny_networks=(*limits.deny_networks, *(ip_network(c, strict=False) for c in scanning.deny)),
        allow_networks=(*limits.allow_networks, *(ip_network(c, strict=False) for c in scanning.allow)),
    )


def probe_endpoints(sweep: DiscoverySweep, limits: ProbeLimits) -> Iterator[Endpoint]:
    """Every address x port the sweep may probe, lazily, skipping addresses the scan policy denies.

    IPv4 network and broadcast addresses are skipped (`hosts()`); a /31 or /32 keeps all its addresses.
    """
    ports = sweep_ports(sweep)
    for net in sweep_networks(sweep):
        for host in net.hosts():
            address = str(host)
            if not address_allowed(address, limits):
                continue
            for port in ports:
                yield Endpoint(address, port)


def in_scope(sweep: DiscoverySweep, endpoint: Endpoint, limits: ProbeLimits) -> bool:
    """Whether the sweep, as configured now, probes `endpoint` (so its absence from the results means something)."""
    addr = ip_address(endpoint.address)
    return (
        endpoint.port in sweep.ports
        and any(_probed(addr, net) for net in sweep_networks(sweep))
        and address_allowed(endpoint.address, limits)
    )


def _probed(addr: IPv4Address | IPv6Address, net: Network) -> bool:
    """Whether `net.hosts()` yields `addr` (it leaves out network, broadcast and subnet-router addresses)."""
    if addr not in net:
        return False
    if net.num_addresses <= 2:
        return True
    if isinstance(net, IPv4Network):
        return addr not in (net.network_address, net.broadcast_address)
    return addr != net.network_address


def reconcile(
    found: Iterable[Endpoint], known: Iterable[KnownEndpoint], *, gone_after: int = GONE_AFTER_SWEEPS
) -> list[EndpointChange]:
    """Compare a sweep's TLS endpoints with the known ones: found ones are present (new, or back again);
    known ones not found miss one more sweep, and turn `gone` (reported once) at `gone_after` misses."""
    seen = set(found)
    before = {k.endpoint: k for k in known}
    changes: list[EndpointChange] = []
    for endpoint in sorted(seen | before.keys()):
        previous = before.get(endpoint)
        if endpoint in seen:
            event: ChangeEvent | None = None
            if previous is None:
                event = "new"
            elif previous.state == "gone":
                event = "reappeared"
            changes.append(EndpointChange(endpoint, "present", 0, seen=True, event=event))
            continue
        assert previous is not None  # every endpoint in the union is found or known
        missing = previous.missing_sweeps + 1
        state: EndpointState = "gone" if missing >= gone_after else "present"
        event = "disappeared" if state == "gone" and previous.state == "present" else None
        changes.append(EndpointChange(endpoint, state, missing, seen=False, event=event))
    return changes


def discovered_target(sweep: DiscoverySweep, endpoint: Endpoint, config: CertmonConfig) -> Target:
    """The scan target for a TLS endpoint a sweep found: the sweep's owner and profile, its server or else
    the server whose addresses include the endpoint's, and the protocol its port implies."""
    target = Target(
        host=endpoint.address,
        port=endpoint.port,
        protocol=WELL_KNOWN_STARTTLS_PORTS.get(endpoint.port, "tls"),
        owner=sweep.owner,
        profile=sweep.profile or config.defaults.profile,
        interval_seconds=config.defaults.interval,
        discovered_by=sweep.name,
    )
    return target.model_copy(update={"server": sweep.server or server_for(config, target, endpoint.address)})


def sweep_lease(probes: int, *, concurrency: int, connect_seconds: float, target_seconds: float) -> timedelta:
    """The longest a sweep can take when every probe runs to its timeouts: waves of `concurrency` probes,
    each a connect and a whole TLS observation, plus a margin. A sweep holds its claim this long at most."""
    waves = math.ceil(max(probes, 1) / max(concurrency, 1))
    return timedelta(seconds=math.ceil(waves * (connect_seconds + target_seconds))) + LEASE_MARGIN
