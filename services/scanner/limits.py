"""The scanner's limits from settings and `certmon.yaml`, for the workers and for `certmon check` alike.

Kept apart from `bootstrap` so a one-shot check does not import the broker and database clients.
"""

from services.scanner.domain import ProbeLimits, networks
from shared.config import CertmonConfig
from shared.settings import Settings


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
