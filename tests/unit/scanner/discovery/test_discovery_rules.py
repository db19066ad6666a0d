"""Discovery's pure rules: sweep expansion, the size cap, the address policy, and new/present/gone endpoints."""

from datetime import timedelta
from ipaddress import ip_network

import pytest

from services.scanner.domain.discovery import (
    MAX_SWEEP_PROBES,
    Endpoint,
    EndpointChange,
    KnownEndpoint,
    SweepRefused,
    check_sweep,
    discovered_target,
    in_scope,
    plan_sweeps,
    policy_limits,
    probe_endpoints,
    reconcile,
    sweep_lease,
    sweep_size,
)
from services.scanner.domain.limits import ProbeLimits
from shared.config import parse_config
from shared.config.schema import DiscoverySweep, Scanning

OPEN = ProbeLimits()


def _sweep(cidrs: list[str], ports: list[int], **extra: object) -> DiscoverySweep:
    return DiscoverySweep.model_validate({"name": "lab", "cidrs": cidrs, "ports": ports, **extra})


def _known(address: str, port: int, state: str = "present", missing: int = 0) -> KnownEndpoint:
    return KnownEndpoint(Endpoint(address, port), state, missing)  # type: ignore[arg-type]


def test_expansion_crosses_every_host_with_every_port() -> None:
    """A /30 has two usable hosts; with two ports that is four probes, addresses first."""
    sweep = _sweep(["10.0.0.0/30"], [8443, 443])
    assert list(probe_endpoints(sweep, OPEN)) == [
        Endpoint("10.0.0.1", 443),
        Endpoint("10.0.0.1", 8443),
        Endpoint("10.0.0.2", 443),
        Endpoint("10.0.0.2", 8443),
    ]


def test_single_addresses_and_ipv6_are_expanded() -> None:
    """A /32 and a /128 are one address each; duplicate ports are probed once."""
    sweep = _sweep(["127.0.0.1/32", "::1/128"], [443, 443])
    assert list(probe_endpoints(sweep, OPEN)) == [Endpoint("127.0.0.1", 443), Endpoint("::1", 443)]


def test_overlapping_cidrs_probe_each_address_once() -> None:
    """A range inside another adds no probes."""
    sweep = _sweep(["10.0.0.0/29", "10.0.0.4/30", "10.0.0.5"], [443])
    endpoints = list(probe_endpoints(sweep, OPEN))
    assert len(endpoints) == len(set(endpoints)) == 6
    assert sweep_size(sweep) == 8


def test_denied_addresses_are_never_probed() -> None:
    """Addresses inside a denied CIDR are left out of the sweep, unless an allow CIDR lets them back in."""
    sweep = _sweep(["10.0.0.0/29"], [443])
    limits = ProbeLimits(deny_networks=(ip_network("10.0.0.0/30"),), allow_networks=(ip_network("10.0.0.2/32"),))
    assert [e.address for e in probe_endpoints(sweep, limits)] == ["10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"]


def test_policy_limits_add_the_configured_deny_and_allow_lists() -> None:
    """The sweep obeys `scanning.deny/allow` on top of the limits it was given."""
    limits = policy_limits(ProbeLimits(), Scanning(deny=["127.0.0.0/8"], allow=["127.0.0.2/32"]))
    assert limits.deny_networks == (ip_network("127.0.0.0/8"),)
    assert limits.allow_networks == (ip_network("127.0.0.2/32"),)
    assert [e.address for e in probe_endpoints(_sweep(["127.0.0.0/30"], [443]), limits)] == ["127.0.0.2"]


def test_default_policy_keeps_sweeps_off_link_local_addresses() -> None:
    """With the default `scanning:` section, a sweep over link-local space probes nothing."""
    limits = policy_limits(ProbeLimits(), Scanning())
    assert list(probe_endpoints(_sweep(["169.254.169.254/32"], [443]), limits)) == []


def test_a_slash_16_on_one_port_is_the_largest_sweep_allowed() -> None:
    """65,536 probes is at the cap and runs."""
    sweep = _sweep(["10.1.0.0/16"], [443])
    assert sweep_size(sweep) == MAX_SWEEP_PROBES
    check_sweep(sweep, 0)


def test_a_sweep_over_the_cap_is_refused_with_a_config_level_message() -> None:
    """A /16 on two ports is refused before it starts, naming the sweep, the size and what to do."""
    with pytest.raises(SweepRefused) as refused:
        check_sweep(_sweep(["10.1.0.0/16"], [443, 8443]), 3)
    message = str(refused.value)
    assert message.startswith("discovery[3] ('lab'): 65,536 addresses x 2 ports is 131,072 probes")
    assert "limit of 65,536" in message
    assert "split the ranges" in message


def test_a_huge_ipv6_range_is_refused_without_expanding_it() -> None:
    """A /64 is refused from its size alone; nothing is enumerated."""
    with pytest.raises(SweepRefused, match="18,446,744,073,709,551,616 addresses"):
        check_sweep(_sweep(["2001:db8::/64"], [443]), 0)


def test_ports_outside_the_tcp_range_are_refused() -> None:
    """Port 0 and ports above 65535 are configuration mistakes, reported as such."""
    with pytest.raises(SweepRefused, match=r"ports \[0, 70000\] are not TCP ports"):
        check_sweep(_sweep(["10.0.0.1"], [0, 443, 70000]), 0)


def test_an_empty_sweep_is_refused() -> None:
    """A sweep without CIDRs or ports has nothing to do and says so."""
    with pytest.raises(SweepRefused, match="nothing to sweep"):
        check_sweep(_sweep([], [443]), 0)


def test_plan_keeps_good_sweeps_and_refuses_bad_and_repeated_ones() -> None:
    """One bad sweep does not stop the others; a second sweep with the same name is refused."""
    good = _sweep(["10.0.0.1"], [443])
    too_big = _sweep(["10.0.0.0/8"], [443]).model_copy(update={"name": "big"})
    accepted, refused = plan_sweeps([good, too_big, good])
    assert accepted == [good]
    assert [str(r).split(":")[0] for r in refused] == ["discovery[1] ('big')", "discovery[2] ('lab')"]
    assert "already has this name" in str(refused[1])


def test_new_endpoints_are_present_and_reported_new() -> None:
    """An endpoint found for the first time is new."""
    assert reconcile([Endpoint("10.0.0.1", 443)], []) == [
        EndpointChange(Endpoint("10.0.0.1", 443), "present", 0, seen=True, event="new")
    ]


def test_found_again_is_still_present_without_a_report() -> None:
    """An endpoint found again stays present, and one missing once is back to zero misses quietly."""
    changes = reconcile(
        [Endpoint("10.0.0.1", 443), Endpoint("10.0.0.2", 443)],
        [_known("10.0.0.1", 443), _known("10.0.0.2", 443, missing=1)],
    )
    assert [(c.state, c.missing_sweeps, c.event) for c in changes] == [("present", 0, None), ("present", 0, None)]


def test_one_missed_sweep_is_not_yet_gone() -> None:
    """Missing once counts a miss but keeps the endpoint present (a reboot is not a disappearance)."""
    (change,) = reconcile([], [_known("10.0.0.1", 443)])
    assert (change.state, change.missing_sweeps, change.seen, change.event) == ("present", 1, False, None)


def test_two_missed_sweeps_make_it_gone_and_reported_once() -> None:
    """The second consecutive miss turns it gone and reports it; later misses only count."""
    (second,) = reconcile([], [_known("10.0.0.1", 443, missing=1)])
    assert (second.state, second.missing_sweeps, second.event) == ("gone", 2, "disappeared")
    (third,) = reconcile([], [_known("10.0.0.1", 443, state="gone", missing=2)])
    assert (third.state, third.missing_sweeps, third.event) == ("gone", 3, None)


def test_the_number_of_misses_before_gone_is_configurable() -> None:
    """With `gone_after=3`, two misses are still present."""
    (change,) = reconcile([], [_known("10.0.0.1", 443, missing=1)], gone_after=3)
    assert (change.state, change.event) == ("present", None)


def test_a_gone_endpoint_that_answers_again_reappears() -> None:
    """A gone endpoint found again is present with zero misses and reported back."""
    (change,) = reconcile([Endpoint("10.0.0.1", 443)], [_known("10.0.0.1", 443, state="gone", missing=5)])
    assert (change.state, change.missing_sweeps, change.event) == ("present", 0, "reappeared")


def test_scope_follows_the_sweep_as_configured_now() -> None:
    """Endpoints outside the sweep's ranges or ports, or now denied, are out of scope (not counted missing)."""
    sweep = _sweep(["10.0.0.0/30"], [443])
    assert in_scope(sweep, Endpoint("10.0.0.1", 443), OPEN)
    assert not in_scope(sweep, Endpoint("10.0.0.1", 8443), OPEN)
    assert not in_scope(sweep, Endpoint("10.0.0.9", 443), OPEN)
    assert not in_scope(sweep, Endpoint("10.0.0.0", 443), OPEN)  # the network address is never probed
    assert not in_scope(sweep, Endpoint("10.0.0.1", 443), ProbeLimits(deny_networks=(ip_network("10.0.0.0/8"),)))


def test_discovered_target_takes_owner_profile_and_server_by_address() -> None:
    """The sweep's owner and profile apply; the server is the one whose addresses include the endpoint."""
    config = parse_config(
        {
            "defaults": {"interval": "15m"},
            "servers": {"web-01": {"addresses": ["10.0.0.0/30"]}},
            "discovery": [{"name": "lab", "cidrs": ["10.0.0.0/24"], "owner": "platform-team", "profile": "full"}],
        }
    )
    target = discovered_target(config.discovery[0], Endpoint("10.0.0.2", 443), config)
    assert (target.host, target.port, target.protocol) == ("10.0.0.2", 443, "tls")
    assert (target.owner, target.profile, target.interval_seconds) == ("platform-team", "full", 900)
    assert (target.server, target.discovered_by, target.key) == ("web-01", "lab", "10.0.0.2:443")
    elsewhere = discovered_target(config.discovery[0], Endpoint("10.0.0.9", 443), config)
    assert elsewhere.server is None


def test_discovered_target_keeps_the_server_the_sweep_names_and_the_protocol_its_port_implies() -> None:
    """A sweep naming its server wins over address matching; port 587 implies SMTP STARTTLS."""
    config = parse_config(
        {
            "servers": {"web-01": {"addresses": ["10.0.0.2"]}, "mail": {}},
            "discovery": [{"name": "mail", "cidrs": ["10.0.0.0/24"], "ports": [587], "server": "mail"}],
        }
    )
    target = discovered_target(config.discovery[0], Endpoint("10.0.0.2", 587), config)
    assert (target.server, target.protocol, target.key) == ("mail", "smtp", "smtp://10.0.0.2:587")


def test_lease_covers_every_probe_running_to_its_timeouts() -> None:
    """100 probes at 10 at once, each 2 s to connect and 5 s to observe: 10 waves of 7 s, plus a minute."""
    lease = sweep_lease(100, concurrency=10, connect_seconds=2, target_seconds=5)
    assert lease == timedelta(seconds=70) + timedelta(minutes=1)
