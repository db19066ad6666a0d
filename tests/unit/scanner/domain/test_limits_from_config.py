"""Probe limits from `certmon.yaml`'s `scanning:` section: the address policy, timeouts and per-host cap."""

import pytest

from services.scanner.domain.limits import ProbeLimits, address_allowed, limits_from, networks, scan_concurrency
from shared.config import parse_config
from shared.settings import Settings


@pytest.mark.parametrize(
    "address", ["169.254.169.254", "169.254.1.1", "fe80::1", "fe80::1%eth0", "100.100.100.200", "fd00:ec2::254"]
)
def test_link_local_and_cloud_metadata_are_denied_by_default(address: str) -> None:
    """The default policy denies link-local and the cloud metadata addresses (AWS, Alibaba, EC2 IPv6)."""
    assert not address_allowed(address, limits_from(Settings(), parse_config({})))


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.0.0.5", "192.0.2.1", "2001:db8::1"])
def test_ordinary_addresses_are_allowed_by_default(address: str) -> None:
    """Loopback, private and public addresses are scanned unless the policy says otherwise."""
    assert address_allowed(address, limits_from(Settings(), parse_config({})))


def test_allow_entry_overrides_a_deny_entry() -> None:
    """An address in both a denied and an allowed network is allowed; its neighbours stay denied."""
    config = parse_config({"scanning": {"allow": ["169.254.10.0/24"]}})
    limits = limits_from(Settings(), config)
    assert address_allowed("169.254.10.7", limits)
    assert not address_allowed("169.254.169.254", limits)


def test_timeouts_and_per_host_cap_come_from_the_config_file() -> None:
    """`scanning:` durations and the per-host cap become the probe limits."""
    config = parse_config(
        {
            "scanning": {
                "connect_timeout": "3s",
                "handshake_timeout": "4s",
                "target_timeout": "30s",
                "per_host_concurrency": 2,
            }
        }
    )
    limits = limits_from(Settings(), config)
    assert (limits.connect_seconds, limits.handshake_seconds, limits.target_seconds) == (3, 4, 30)
    assert limits.per_host_concurrency == 2


def test_timeouts_set_in_the_environment_win_and_the_target_budget_covers_both() -> None:
    """Explicit Settings timeouts override the file; the whole-target budget is never shorter than both phases."""
    config = parse_config({"scanning": {"target_timeout": "5s"}})
    limits = limits_from(Settings(connect_timeout=4, handshake_timeout=6), config)
    assert (limits.connect_seconds, limits.handshake_seconds, limits.target_seconds) == (4, 6, 10)


def test_scan_concurrency_from_the_environment_or_the_file() -> None:
    """`CERTMON_SCAN_CONCURRENCY` wins when set; otherwise `scanning.concurrency`."""
    config = parse_config({"scanning": {"concurrency": 12}})
    assert scan_concurrency(Settings(), config) == 12
    assert scan_concurrency(Settings(scan_concurrency=3), config) == 3


def test_networks_accept_host_bits_and_reject_garbage() -> None:
    """CIDRs with host bits set are accepted as their network; a malformed one raises."""
    assert networks(["10.0.0.5/8"]) == ProbeLimits(deny_networks=networks(["10.0.0.0/8"])).deny_networks
    with pytest.raises(ValueError):
        networks(["10.0.0.0/33"])


def test_an_empty_deny_list_in_the_config_turns_the_default_off() -> None:
    """`scanning: {deny: []}` is honoured: nothing is denied."""
    assert address_allowed("169.254.169.254", limits_from(Settings(), parse_config({"scanning": {"deny": []}})))
