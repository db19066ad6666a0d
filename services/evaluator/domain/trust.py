"""The trust anchors an evaluation verifies against: a frozen holder built once by an adapter."""

import hashlib
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import Store


@dataclass(frozen=True)
class TrustStore:
    """Anchor certificates, indexed by subject and fingerprint, with the verifier's `Store` built once."""

    anchors: tuple[x509.Certificate, ...]
    description: str = "custom"
    _by_subject: dict[x509.Name, tuple[x509.Certificate, ...]] = field(init=False, repr=False, compare=False)
    _fingerprints: frozenset[str] = field(init=False, repr=False, compare=False)
    _store: Store | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_subject: dict[x509.Name, list[x509.Certificate]] = {}
        for cert in self.anchors:
            by_subject.setdefault(cert.subject, []).append(cert)
        # frozen: the derived indexes are set once here, the only place they are written
        object.__setattr__(self, "_by_subject", {name: tuple(certs) for name, certs in by_subject.items()})
        object.__setattr__(
            self,
            "_fingerprints",
            frozenset(hashlib.sha256(c.public_bytes(Encoding.DER)).hexdigest() for c in self.anchors),
        )
        object.__setattr__(self, "_store", Store(list(self.anchors)) if self.anchors else None)

    @property
    def store(self) -> Store | None:
        """The verifier's store, or None when there are no anchors (nothing can be trusted)."""
        return self._store

    def issuers_named(self, name: x509.Name) -> tuple[x509.Certificate, ...]:
        """Anchors whose subject is `name`."""
        return self._by_subject.get(name, ())

    def contains(self, fingerprint_sha256: str) -> bool:
        """Whether this exact certificate is an anchor."""
        return fingerprint_sha256 in self._fingerprints

    def __len__(self) -> int:
        return len(self.anchors)
