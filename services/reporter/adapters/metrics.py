"""Estate metrics for Prometheus, recomputed from the latest evaluations on every scrape.

Besides certmon's own families, `ssl_cert_not_after` carries ssl_exporter's name and labels so existing
dashboards and alerts (`(ssl_cert_not_after - time()) / 86400`) work unchanged. Each app has its own registry.
"""

import re
from collections import Counter
from collections.abc import Sequence

from cryptography import x509
from cryptography.x509.oid import NameOID
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from services.reporter.domain.report import LEVELS
from shared.events import Evaluation

#: SAN lists can be huge; the label keeps the first names only, to bound series size.
MAX_DNSNAMES = 20
_CN = re.compile(r"(?:^|,)\s*CN=((?:\\.|[^,\\])*)", re.IGNORECASE)
_IP = re.compile(r"^[0-9.]+$|:")


def common_name(distinguished_name: str) -> str:
    """The CN of an RFC 4514 distinguished name, or "" when it has none."""
    try:
        name = x509.Name.from_rfc4514_string(distinguished_name)
    except ValueError:
        match = _CN.search(distinguished_name)
        return match[1].replace("\\", "") if match else ""
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def dnsnames_label(san: Sequence[str]) -> str:
    """ssl_exporter's `dnsnames` label: `,a.example,b.example,` (DNS names only), or "" without any."""
    names = [s.removeprefix("DNS:") for s in san if not _IP.search(s.removeprefix("DNS:"))][:MAX_DNSNAMES]
    return f",{','.join(names)}," if names else ""


class EstateMetrics:
    """The reporter's metric families in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._by_level = Gauge(
            "certmon_certificates",
            "Targets by the alarm level of their latest evaluation.",
            ["level"],
            registry=self.registry,
        )
        self._not_after = Gauge(
            "certmon_cert_not_after_timestamp_seconds",
            "NotAfter of the leaf certificate each target serves, as a Unix timestamp.",
            ["target", "subject_CN", "issuer_CN", "serial_number"],
            registry=self.registry,
        )
        self._ssl_not_after = Gauge(
            "ssl_cert_not_after",
            "NotAfter expressed as a Unix Epoch Time (ssl_exporter compatible).",
            ["cn", "issuer_cn", "serial_no", "dnsnames"],
            registry=self.registry,
        )

    def exposition(self, evaluations: Sequence[Evaluation]) -> bytes:
        """Set every family from `evaluations` (dropping series that went away) and render the text format."""
        # No await happens between clearing and rendering, so concurrent scrapes never see half a refresh.
        for gauge in (self._by_level, self._not_after, self._ssl_not_after):
            gauge.clear()
        levels: Counter[str] = Counter(e.alarm.level for e in evaluations)
        for level in LEVELS:
            self._by_level.labels(level=level).set(levels.get(level, 0))
        for evaluation in evaluations:
            cert = evaluation.certificate
            if cert is None:
                continue
            subject_cn, issuer_cn = common_name(cert.subject), common_name(cert.issuer)
            not_after = cert.not_after.timestamp()
            self._not_after.labels(
                target=evaluation.target_key,
                subject_CN=subject_cn,
                issuer_CN=issuer_cn,
                serial_number=cert.serial,
            ).set(not_after)
            self._ssl_not_after.labels(
                cn=subject_cn, issuer_cn=issuer_cn, serial_no=cert.serial, dnsnames=dnsnames_label(cert.san)
            ).set(not_after)
        return generate_latest(self.registry)
