"""ssl_exporter's families (ribbybibby/ssl_exporter), one set per target, told apart by a `target` label.

ssl_exporter is scraped once per target (`/probe?target=`); certmon's one `/metrics` serves the whole estate, so
every sample here carries `target` (the target key) on top of ssl_exporter's own labels. An endpoint reports like
ssl_exporter's `tcp` prober (certificates as presented, the verified path, TLS version, stapled OCSP), a file like
its `file` prober.
"""

from datetime import datetime

from services.reporter.adapters.metric_labels import Cert, Names
from services.reporter.adapters.metric_text import Family, escape
from shared.events import Evaluation

#: certmon's version names, as ssl_exporter's `version` label spells them (anything else is "unknown" there too).
TLS_VERSIONS = {"TLSv1.0": "TLS 1.0", "TLSv1.1": "TLS 1.1", "TLSv1.2": "TLS 1.2", "TLSv1.3": "TLS 1.3"}
#: ssl_exporter's `ssl_ocsp_response_status` values; stale and invalid responses have no such status.
OCSP_STATUS = {"good": 0, "revoked": 1, "unknown": 2}


def _time(moment: datetime) -> int:
    return int(moment.timestamp())


class SslExporterFamilies:
    """The ssl_* families of one scrape."""

    def __init__(self, names: Names) -> None:
        self._names = names
        self.cert_not_after = Family("ssl_cert_not_after", "NotAfter expressed as a Unix Epoch Time")
        self.cert_not_before = Family("ssl_cert_not_before", "NotBefore expressed as a Unix Epoch Time")
        self.file_not_after = Family(
            "ssl_file_cert_not_after", "NotAfter expressed as a Unix Epoch Time for a certificate found in a file"
        )
        self.file_not_before = Family(
            "ssl_file_cert_not_before", "NotBefore expressed as a Unix Epoch Time for a certificate found in a file"
        )
        self.verified_not_after = Family("ssl_verified_cert_not_after", "NotAfter expressed as a Unix Epoch Time")
        self.verified_not_before = Family("ssl_verified_cert_not_before", "NotBefore expressed as a Unix Epoch Time")
        self.ocsp_stapled = Family(
            "ssl_ocsp_response_stapled", "If the connection state contains a stapled OCSP response"
        )
        self.ocsp_status = Family(
            "ssl_ocsp_response_status", "The status in the OCSP response 0=Good 1=Revoked 2=Unknown"
        )
        self.ocsp_produced_at = Family(
            "ssl_ocsp_response_produced_at", "The producedAt value in the OCSP response, expressed as a Unix Epoch Time"
        )
        self.ocsp_next_update = Family(
            "ssl_ocsp_response_next_update", "The nextUpdate value in the OCSP response, expressed as a Unix Epoch Time"
        )
        self.ocsp_revoked_at = Family(
            "ssl_ocsp_response_revoked_at",
            "The revocationTime value in the OCSP response, expressed as a Unix Epoch Time",
        )
        self.probe_success = Family("ssl_probe_success", "If the probe was a success")
        self.prober = Family("ssl_prober", "The prober used by the exporter to connect to the target")
        self.tls_version = Family("ssl_tls_version_info", "The TLS version used")

    def families(self) -> list[Family]:
        """Every family, in exposition order."""
        return [
            self.cert_not_after,
            self.cert_not_before,
            self.file_not_after,
            self.file_not_before,
            self.verified_not_after,
            self.verified_not_before,
            self.ocsp_stapled,
            self.ocsp_status,
            self.ocsp_produced_at,
            self.ocsp_next_update,
            self.ocsp_revoked_at,
            self.probe_success,
            self.prober,
            self.tls_version,
        ]

    def add(self, evaluation: Evaluation, certs: list[Cert], target: str) -> None:
        """The samples of one target's latest evaluation; `target` is its key, escaped."""
        file = evaluation.target.file
        ok = evaluation.reachable and bool(certs)
        self.probe_success.add(f'target="{target}"', 1 if ok else 0)
        self.prober.add(f'prober="{"file" if file is not None else "tcp"}",target="{target}"', 1)
        if file is not None:
            prefix = f'file="{escape(file)}",'
            self._certs(self.file_not_after, self.file_not_before, certs, prefix, target)
            return
        self._certs(self.cert_not_after, self.cert_not_before, certs, "", target)
        by_fingerprint = {c.fingerprint: c for c in certs}
        # Only certificates the evaluation describes: an anchor from the trust store is known by fingerprint only.
        path = [by_fingerprint[f] for f in dict.fromkeys(evaluation.chain.verified_path) if f in by_fingerprint]
        self._certs(self.verified_not_after, self.verified_not_before, path, 'chain_no="0",', target)
        negotiated = evaluation.tls.negotiated
        if negotiated is not None:
            version = TLS_VERSIONS.get(negotiated.version, "unknown")
            self.tls_version.add(f'version="{version}",target="{target}"', 1)
        self._ocsp(evaluation, target)

    def _certs(self, not_after: Family, not_before: Family, certs: list[Cert], prefix: str, target: str) -> None:
        for cert in certs:
            label_text = f'{prefix}{self._names.ssl(cert)},target="{target}"'
            not_after.add(label_text, cert.not_after)
            if cert.not_before is not None:
                not_before.add(label_text, cert.not_before)

    def _ocsp(self, evaluation: Evaluation, target: str) -> None:
        revocation = evaluation.revocation
        if revocation is None:
            return
        label_text = f'target="{target}"'
        self.ocsp_stapled.add(label_text, 1 if revocation.ocsp_stapled else 0)
        if revocation.status in OCSP_STATUS:
            self.ocsp_status.add(label_text, OCSP_STATUS[revocation.status])
        for family, moment in (
            (self.ocsp_produced_at, revocation.produced_at),
            (self.ocsp_next_update, revocation.next_update),
            (self.ocsp_revoked_at, revocation.revoked_at),
        ):
            if moment is not None:
                family.add(label_text, _time(moment))
