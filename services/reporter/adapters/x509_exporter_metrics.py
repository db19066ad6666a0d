"""x509-certificate-exporter's per-certificate families (enix/x509-certificate-exporter), plus its v3 error gauge.

Every series carries the exporter's full label set, "" where a value does not apply (`filename` and `filepath`
for endpoints), and `target`, since two targets may serve the same certificate. A file target reports every
certificate in the file, as the exporter reads a bundle; an endpoint reports its leaf (its chain is in the
`ssl_verified_cert_*` families). A target whose certificate could not be read reports `x509_cert_error` 1 with
empty certificate labels, as the exporter does for a bundle item that failed to parse.
"""

import posixpath
from datetime import datetime

from services.reporter.adapters.metric_labels import Cert, Names
from services.reporter.adapters.metric_text import Family, escape
from shared.events import Evaluation


class X509ExporterFamilies:
    """The x509_* families of one scrape, relative to `now`."""

    def __init__(self, names: Names, now: datetime) -> None:
        self._names = names
        self._now = int(now.timestamp())
        self._unreadable = 0
        self.not_after = Family("x509_cert_not_after", "Unix timestamp of the certificate's NotAfter field")
        self.not_before = Family("x509_cert_not_before", "Unix timestamp of the certificate's NotBefore field")
        self.expired = Family("x509_cert_expired", "1 if the certificate is currently expired, 0 otherwise")
        self.expires_in = Family(
            "x509_cert_expires_in_seconds", "Number of seconds until NotAfter, negative once expired"
        )
        self.valid_since = Family("x509_cert_valid_since_seconds", "Number of seconds since NotBefore")
        self.error = Family("x509_cert_error", "1 if the certificate could not be read, 0 otherwise")
        self.read_errors = Family(
            "x509_read_errors", "Targets whose certificate could not be read (x509-certificate-exporter v3 gauge)"
        )

    def families(self) -> list[Family]:
        """Every family, in exposition order."""
        return [
            self.not_after,
            self.not_before,
            self.expired,
            self.expires_in,
            self.valid_since,
            self.error,
            self.read_errors,
        ]

    def finish(self) -> None:
        """Set the error gauge from what `add` saw, once every target was added."""
        self.read_errors.add("", self._unreadable)

    def add(self, evaluation: Evaluation, certs: list[Cert], target: str) -> None:
        """The samples of one target's latest evaluation; `target` is its key, escaped."""
        file = evaluation.target.file
        place = (
            f'filename="{escape(posixpath.basename(file))}",filepath="{escape(file)}",target="{target}"'
            if file is not None
            else f'filename="",filepath="",target="{target}"'
        )
        if not certs:
            self._unreadable += 1
            self.error.add(f"{self._names.x509(None)},{place}", 1)
            return
        now = self._now
        for cert in certs if file is not None else certs[:1]:
            label_text = f"{self._names.x509(cert)},{place}"
            self.not_after.add(label_text, cert.not_after)
            self.expired.add(label_text, 1 if now > cert.not_after else 0)
            self.expires_in.add(label_text, cert.not_after - now)
            if cert.not_before is not None:
                self.not_before.add(label_text, cert.not_before)
                self.valid_since.add(label_text, now - cert.not_before)
            self.error.add(label_text, 0)
