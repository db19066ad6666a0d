"""The scanner's pure rules: due times with per-target jitter, address policy, names of TLS facts."""

import datetime as dt
import ssl
from ipaddress import ip_network

import pytest

from services.scanner.domain.limits import ProbeLimits, address_allowed
from services.scanner.domain.schedule import jitter, next_due
from services.scanner.domain.tls_names import OPENSSL_TO_IANA, iana_cipher_name, is_ip_literal, tls_version_name

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)


def test_default_limits_match_the_design() -> None:
    """Connect 5 s, handshake 10 s, whole target 20 s, 20 certificates, 64 KiB of banner."""
    limits = ProbeLimits()
    assert (limits.connect_seconds, limits.handshake_seconds, limits.target_seconds) == (5.0, 10.0, 20.0)
    assert (limits.max_chain, limits.max_banner_bytes) == (20, 65536)


def test_jitter_is_deterministic_per_target_key() -> None:
    """The same key always gets the same jitter, so a target keeps its place in the schedule."""
    assert jitter("shop.example.com:443", 3600) == jitter("shop.example.com:443", 3600)


def test_jitter_differs_between_targets() -> None:
    """Targets configured together are spread apart."""
    offsets = {jitter(f"host-{i}.example.com:443", 3600) for i in range(50)}
    assert len(offsets) == 50


@pytest.mark.parametrize(
    ("interval", "bound"),
    [(60, dt.timedelta(seconds=6)), (3600, dt.timedelta(minutes=6)), (86400, dt.timedelta(minutes=10))],
)
def test_jitter_is_at_most_a_tenth_of_the_interval_and_ten_minutes(interval: int, bound: dt.timedelta) -> None:
    """Jitter stays within min(10% of the interval, 10 minutes) and is never negative."""
    for i in range(200):
        offset = jitter(f"t{i}", interval)
        assert dt.timedelta(0) <= offset < bound


def test_next_due_is_one_interval_plus_the_targets_jitter() -> None:
    """A target claimed now is due again after its interval plus its own jitter."""
    key = "mail.example.com:587"
    assert next_due(key, 900, NOW) == NOW + dt.timedelta(seconds=900) + jitter(key, 900)
    assert NOW + dt.timedelta(seconds=900) <= next_due(key, 900, NOW) < NOW + dt.timedelta(seconds=990)


def test_next_due_keeps_the_time_zone() -> None:
    """Due times stay timezone-aware UTC."""
    assert next_due("a:443", 60, NOW).tzinfo == dt.UTC


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("192.0.2.1", True),
        ("2001:db8::1", True),
        ("[2001:db8::1]", True),
        ("shop.example.com", False),
        ("localhost", False),
        ("192.0.2.1.example.com", False),
    ],
)
def test_ip_literals_are_recognised(host: str, expected: bool) -> None:
    """IP literals (bracketed IPv6 too) are told apart from names, which are sent as SNI."""
    assert is_ip_literal(host) is expected


def test_no_cidr_policy_allows_every_address() -> None:
    """Without deny networks every address may be probed (internal certificates are a legitimate use)."""
    assert address_allowed("10.1.2.3", ProbeLimits())


def test_denied_network_blocks_and_allow_network_overrides() -> None:
    """A denied network blocks its addresses unless an allowed network also contains them."""
    limits = ProbeLimits(
        deny_networks=(ip_network("10.0.0.0/8"), ip_network("169.254.0.0/16")),
        allow_networks=(ip_network("10.20.0.0/16"),),
    )
    assert not address_allowed("10.1.2.3", limits)
    assert not address_allowed("169.254.169.254", limits)
    assert address_allowed("10.20.5.5", limits)
    assert address_allowed("192.0.2.7", limits)


def test_ipv6_zone_id_is_ignored_by_the_policy() -> None:
    """A link-local address with a zone id is matched on the address alone."""
    limits = ProbeLimits(deny_networks=(ip_network("fe80::/10"),))
    assert not address_allowed("fe80::1%eth0", limits)


@pytest.mark.parametrize(
    ("reported", "contract"),
    [("TLSv1", "TLSv1.0"), ("TLSv1.1", "TLSv1.1"), ("TLSv1.2", "TLSv1.2"), ("TLSv1.3", "TLSv1.3")],
)
def test_tls_versions_use_the_contracts_names(reported: str, contract: str) -> None:
    """Python's "TLSv1" is the contract's "TLSv1.0"; the others pass through."""
    assert tls_version_name(reported) == contract


@pytest.mark.parametrize(
    ("openssl", "iana"),
    [
        ("ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
        ("ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
        ("DHE-RSA-AES128-SHA", "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"),
        ("AES128-SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"),
        ("AES256-GCM-SHA384", "TLS_RSA_WITH_AES_256_GCM_SHA384"),
        ("DES-CBC3-SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
        ("ECDHE-RSA-DES-CBC3-SHA", "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"),
        ("RC4-SHA", "TLS_RSA_WITH_RC4_128_SHA"),
        ("RC4-MD5", "TLS_RSA_WITH_RC4_128_MD5"),
        ("EXP-RC4-MD5", "TLS_RSA_EXPORT_WITH_RC4_40_MD5"),
        ("NULL-SHA", "TLS_RSA_WITH_NULL_SHA"),
        ("ADH-AES128-SHA", "TLS_DH_anon_WITH_AES_128_CBC_SHA"),
    ],
)
def test_openssl_cipher_names_map_to_iana(openssl: str, iana: str) -> None:
    """Common OpenSSL suite names map to their IANA names."""
    assert iana_cipher_name(openssl) == iana


def test_tls13_and_unknown_suite_names_pass_through() -> None:
    """TLS 1.3 names are already IANA; a name missing from the table comes back unchanged."""
    assert iana_cipher_name("TLS_AES_256_GCM_SHA384") == "TLS_AES_256_GCM_SHA384"
    assert iana_cipher_name("GOST2012-KUZNYECHIK-KUZNYECHIKOMAC") == "GOST2012-KUZNYECHIK-KUZNYECHIKOMAC"


def test_every_pre_tls13_suite_this_openssl_offers_has_an_iana_name() -> None:
    """No suite the scan context can negotiate below TLS 1.3 is reported under its OpenSSL name."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    names = {c["name"] for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"}
    assert names - OPENSSL_TO_IANA.keys() == set()
    assert all(value.startswith("TLS_") for value in OPENSSL_TO_IANA.values())
