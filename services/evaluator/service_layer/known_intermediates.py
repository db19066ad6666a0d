"""The known-intermediates cache: every CA certificate seen in a chain or fetched by AIA, by subject.

A server that forgets its intermediate is often one of many behind the same CA: the intermediate another
server sent completes this one's chain without a fetch. Bounded (least recently learned first out) and
thread-safe, since evaluations run in worker threads.
"""

import threading
from collections import OrderedDict

from cryptography import x509
from cryptography.hazmat.primitives import hashes


def _is_intermediate(cert: x509.Certificate) -> bool:
    """A CA certificate that is not self-issued (a root completes nothing that the trust store does not)."""
    if cert.subject == cert.issuer:
        return False
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except (x509.ExtensionNotFound, ValueError):
        return False


class KnownIntermediates:
    """Intermediates learned from every chain seen, looked up by subject name."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max = max_entries
        self._by_fingerprint: OrderedDict[bytes, x509.Certificate] = OrderedDict()
        self._by_subject: dict[x509.Name, dict[bytes, x509.Certificate]] = {}
        self._lock = threading.Lock()

    def learn(self, cert: x509.Certificate, *, fingerprint: bytes | None = None) -> None:
        """Remember `cert` when it is an intermediate (anything else is ignored); `fingerprint`, its SHA-256 when
        the caller has it already, spares hashing the certificate again."""
        if fingerprint is None:
            fingerprint = cert.fingerprint(hashes.SHA256())
        with self._lock:
            if fingerprint in self._by_fingerprint:
                return
        if not _is_intermediate(cert):
            return
        with self._lock:
            self._by_fingerprint[fingerprint] = cert
            self._by_subject.setdefault(cert.subject, {})[fingerprint] = cert
            while len(self._by_fingerprint) > self._max:
                old_fingerprint, old = self._by_fingerprint.popitem(last=False)
                same_subject = self._by_subject[old.subject]
                del same_subject[old_fingerprint]
                if not same_subject:
                    del self._by_subject[old.subject]

    def issued_to(self, subject: x509.Name) -> list[x509.Certificate]:
        """The known intermediates whose subject is `subject`."""
        with self._lock:
            return list(self._by_subject.get(subject, {}).values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_fingerprint)
