"""The bounds every probe of a hostile server is held to, and how they follow from settings and `certmon.yaml`.

Pure: the address policy (`shared.address_policy`, the one the notifier's webhooks obey too) is checked on an
address given as an argument, and the limits are computed from the already-parsed settings and config (no
environment or file is read here).
"""

from dataclasses import dataclass

from shared.address_policy import AddressPolicy, Network, networks
from shared.config import CertmonConfig
from shared.settings import Settings


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
    deny_networks: tuple[Network, ...] = ()
    allow_networks: tuple[Network, ...] = ()

    @property
    def address_policy(self) -> AddressPolicy:
        """The CIDR policy these limits carry."""
        return AddressPolicy(deny=self.deny_networks, allow=self.allow_networks)


DEFAULT_LIMITS = ProbeLimits()


def address_allowed(address: str, limits: ProbeLimits) -> bool:
    """Whether the probe may connect to `address` under the limits' CIDR policy (allow beats deny)."""
    return limits.address_policy.permits(address)


def limits_from(settings: Settings, config: CertmonConfig) -> ProbeLimits:
    """Probe limits from `certmon.yaml`'s `scanning:` section (address policy, timeouts, per-host cap).

    A timeout set in the environment (`CERTMON_CONNECT_TIMEOUT`, `CERTMON_HANDSHAKE_TIMEOUT`) overrides the file's.
    The whole-target budget always covers both phases.
    """
    scanning = config.scanning
    explicit = settings.model_fields_set
    connect = settings.connect_timeout if "connect_timeout" in explicit else float(scanning.connect_timeout)
    handshake = settings.handshake_timeout if "handshake_timeout" in explicit else float(scanning.handshake_timeout)
    return ProbeLimits(
        connect_seconds=connect,
        handshake_seconds=handshake,
        target_seconds=max(float(scanning.target_timeout), connect + handshake),
        deny_networks=networks(scanning.deny),
        allow_networks=networks(scanning.allow),
        per_host_concurrency=scanning.per_host_concurrency,
    )


def scan_concurrency(settings: Settings, config: CertmonConfig) -> int:
    """Scans at once in one worker: `CERTMON_SCAN_CONCURRENCY` if set, else `scanning.concurrency`."""
    return settings.scan_concurrency if "scan_concurrency" in settings.model_fields_set else config.scanning.concurrency
