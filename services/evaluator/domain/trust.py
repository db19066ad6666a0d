"""The trust anchors an evaluation verifies against: a frozen holder built once by an adapter."""

import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import Store

from services.evaluator.domain.parse import NameKey, name_key, spki_of


@dataclass(frozen=True)
class Anchor:
    """One anchor with what the chain walk reads of it, extracted once: its key (None when unreadable)."""

    cert: x509.Certificate
    fingerprint: str
    public_key: CertificatePublicKeyTypes | None
    spki: bytes | None
    subject_key: NameKey = ()


def verifier_second(at: datetime) -> int:
    """The second the verifier validates at, given `at`: it drops the fraction of a second."""
    return math.floor(at.timestamp())


def validity_changes(cert: x509.Certificate) -> tuple[int, int]:
    """The seconds at which the verifier's answer to "is `cert` valid then?" changes: it becomes valid at its
    notBefore and stops one second after its notAfter (both bounds are inclusive)."""
    return verifier_second(cert.not_valid_before_utc), verifier_second(cert.not_valid_after_utc) + 1


def _anchor(cert: x509.Certificate) -> Anchor:
    try:
        key: CertificatePublicKeyTypes | None = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        key = None
    fingerprint = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
    return Anchor(cert, fingerprint, key, spki_of(key) if key is not None else None, name_key(cert.subject))


@dataclass(frozen=True)
class TrustStore:
    """Anchor certificates, indexed by subject and fingerprint, with the verifier's `Store` built once."""

    anchors: tuple[x509.Certificate, ...]
    description: str = "custom"
    _by_subject: dict[NameKey, tuple[Anchor, ...]] = field(init=False, repr=False, compare=False)
    _by_cert: dict[x509.Certificate, Anchor] = field(init=False, repr=False, compare=False)
    _by_id: dict[int, Anchor] = field(init=False, repr=False, compare=False)
    _fingerprints: frozenset[str] = field(init=False, repr=False, compare=False)
    _store: Store | None = field(init=False, repr=False, compare=False)
    _changes: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_subject: dict[NameKey, list[Anchor]] = {}
        by_cert: dict[x509.Certificate, Anchor] = {}
        for cert in self.anchors:
            anchor = by_cert.setdefault(cert, _anchor(cert))
            by_subject.setdefault(anchor.subject_key, []).append(anchor)
        # frozen: the derived indexes are set once here, the only place they are written
        object.__setattr__(self, "_by_subject", {name: tuple(found) for name, found in by_subject.items()})
        object.__setattr__(self, "_by_cert", by_cert)
        # By identity too: the verifier returns the anchor objects it was given, and `anchors` keeps them alive.
        object.__setattr__(self, "_by_id", {id(cert): by_cert[cert] for cert in self.anchors})
        object.__setattr__(self, "_fingerprints", frozenset(a.fingerprint for a in by_cert.values()))
        object.__setattr__(self, "_store", Store(list(self.anchors)) if self.anchors else None)
        changes = {change for cert in by_cert for change in validity_changes(cert)}
        object.__setattr__(self, "_changes", tuple(sorted(changes)))

    @property
    def store(self) -> Store | None:
        """The verifier's store, or None when there are no anchors (nothing can be trusted)."""
        return self._store

    @property
    def validity_changes(self) -> tuple[int, ...]:
        """Every second at which an anchor becomes valid or stops being valid, in order (see `validity_changes`)."""
        return self._changes

    def issuers_named(self, name: x509.Name) -> tuple[x509.Certificate, ...]:
        """Anchors whose subject is `name`."""
        return tuple(a.cert for a in self._by_subject.get(name_key(name), ()))

    def anchors_named(self, name: NameKey) -> tuple[Anchor, ...]:
        """Anchors whose subject is the name with this key, with their keys read."""
        return self._by_subject.get(name, ())

    def anchor(self, cert: x509.Certificate) -> Anchor | None:
        """The anchor that is exactly this certificate, if any."""
        found = self._by_id.get(id(cert))
        return found if found is not None and found.cert is cert else self._by_cert.get(cert)

    def contains(self, fingerprint_sha256: str) -> bool:
        """Whether this exact certificate is an anchor."""
        return fingerprint_sha256 in self._fingerprints

    def __len__(self) -> int:
        return len(self.anchors)
