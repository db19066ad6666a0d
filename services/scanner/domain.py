"""The scanner's pure rules: probe limits, when a target is next due, and how raw facts are named.

No I/O and no clock here: every time is an argument.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from services.scanner.cipher_suites import iana_cipher_name

__all__ = [
    "DEFAULT_LIMITS",
    "ProbeLimits",
    "address_allowed",
    "iana_cipher_name",
    "is_ip_literal",
    "jitter",
    "networks",
    "next_due",
    "tls_version_name",
]

#: Jitter is at most this fraction of the interval...
JITTER_FRACTION = 0.1
#: ...and never more than this, so a daily target is not pushed back by hours.
MAX_JITTER = timedelta(minutes=10)


@dataclass(frozen=True)
class ProbeLimits:
    """Every bound a probe of a hostile server is held to (seconds, counts, bytes).

    `allow_networks` overrides `deny_networks`; both are checked on the address actually connected to.
    `max_handshake_bytes` caps what one TLS handshake may read (a chain of `max_chain` large certificates and
    a stapled OCSP response fit well inside the default); `per_host_concurrency` caps simultaneous scans of
    one host.
    """

    connect_seconds: float = 5.0
    handshake_seconds: float = 10.0
    target_seconds: float = 20.0
    max_chain: int = 20
    max_banner_bytes: int = 65536
    max_handshake_bytes: int = 262_144
    max_file_bytes: int = 1_048_576
    per_host_concurrency: int = 4
    deny_networks: tuple[IPv4Network | IPv6Network, ...] = ()
    allow_networks: tuple[IPv4Network | IPv6Network, ...] = ()


DEFAULT_LIMITS = ProbeLimits()


def jitter(target_key: str, interval_seconds: int) -> timedelta:
    """A delay in [0, min(10% of the interval, 10 min)) that depends only on the target key.

    The same target always gets the same offset, so targets configured together drift apart once
    and then stay apart instead of all coming due in the same tick.
    """
    digest = hashlib.sha256(target_key.encode("utf-8")).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    spread = min(timedelta(seconds=interval_seconds * JITTER_FRACTION), MAX_JITTER)
    return spread * fraction


def next_due(target_key: str, interval_seconds: int, now: datetime) -> datetime:
    """When a target scanned (claimed) at `now` is due again: one interval later plus its jitter."""
    return now + timedelta(seconds=interval_seconds) + jitter(target_key, interval_seconds)


def is_ip_literal(host: str) -> bool:
    """True for `192.0.2.1`, `2001:db8::1` and `[2001:db8::1]`; such names are never sent as SNI."""
    try:
        ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    return True


def networks(cidrs: list[str]) -> tuple[IPv4Network | IPv6Network, ...]:
    """CIDR strings (host bits allowed, as `10.0.0.5/8`) as networks; raises ValueError for a malformed one."""
    return tuple(ip_network(cidr, strict=False) for cidr in cidrs)


def address_allowed(address: str, limits: ProbeLimits) -> bool:
    """Whether the probe may connect to `address` under the limits' CIDR policy (allow beats deny)."""
    addr = ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id such as fe80::1%eth0
    if any(addr in net for net in limits.allow_networks):
        return True
    return not any(addr in net for net in limits.deny_networks)


#: Python reports TLS 1.0 as "TLSv1"; the evaluation contract spells it "TLSv1.0".
_VERSION_NAMES = {"TLSv1": "TLSv1.0"}


def tls_version_name(ssl_version: str) -> str:
    """The contract's name for a version as `ssl.SSLObject.version()` reports it."""
    return _VERSION_NAMES.get(ssl_version, ssl_version)
