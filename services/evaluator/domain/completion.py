"""Completing a chain the server sent without an intermediate, from intermediates found elsewhere.

The domain never fetches: the caller (the application) asks `first_gap` which certificate's issuer is
missing, looks that issuer up (a cache of intermediates seen in other chains, the AIA caIssuers URL) and hands
the candidates to `evaluate`, which extends the path with `complete_path` and lets the verifier decide.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from services.evaluator.domain.parse import NameKey, ParsedCert
from services.evaluator.domain.signature import signature_verifies
from services.evaluator.domain.trust import TrustStore

#: How many certificates a completion may add; real chains miss one intermediate, rarely two.
MAX_ADDED = 4


@dataclass(frozen=True, eq=False)
class CandidateIntermediate:
    """An intermediate the server did not send, and where it was found (read in a sentence: "found in …")."""

    cert: x509.Certificate
    source: str


def public_key_of(cert: x509.Certificate) -> CertificatePublicKeyTypes | None:
    """The certificate's key, or None when its algorithm is unknown or the key is broken."""
    try:
        return cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return None


def _ends(cert: x509.Certificate, trust: TrustStore) -> bool:
    """The path ends here: a self-issued certificate, or one whose issuer is an anchor."""
    return cert.subject == cert.issuer or bool(trust.issuers_named(cert.issuer))


def first_gap(leaf: x509.Certificate, pool: Sequence[x509.Certificate], trust: TrustStore) -> x509.Certificate | None:
    """Follow issuer names from the leaf through `pool`: the certificate whose issuer is nowhere, else None.

    Terminates on a loop of issuer names (two CAs that issue each other): a loop is not a gap."""
    by_subject: dict[x509.Name, x509.Certificate] = {}
    for cert in pool:
        by_subject.setdefault(cert.subject, cert)
    seen: set[int] = {id(leaf)}
    current = leaf
    while not _ends(current, trust):
        issuer = by_subject.get(current.issuer)
        if issuer is None:
            return current
        if id(issuer) in seen:
            return None
        seen.add(id(issuer))
        current = issuer
    return None


def gap_in(certs: Sequence[ParsedCert], trust: TrustStore) -> ParsedCert | None:
    """`first_gap` of the leaf `certs[0]` through `certs`, on parsed certificates: names compared by their keys."""
    by_subject: dict[NameKey, ParsedCert] = {}
    for cert in certs:
        by_subject.setdefault(cert.subject_key, cert)
    leaf = certs[0]
    seen: set[int] = {id(leaf)}
    current = leaf
    while not (current.self_issued or trust.anchors_named(current.issuer_key)):
        issuer = by_subject.get(current.issuer_key)
        if issuer is None:
            return current
        if id(issuer) in seen:
            return None
        seen.add(id(issuer))
        current = issuer
    return None


def complete_path(
    last: x509.Certificate, candidates: Sequence[CandidateIntermediate], trust: TrustStore
) -> list[CandidateIntermediate]:
    """The candidates that extend the path from `last` (each verifying the one before) up to an anchor or root."""
    added: list[CandidateIntermediate] = []
    current = last
    while len(added) < MAX_ADDED and not _ends(current, trust):
        chosen = next(
            (
                c
                for c in candidates
                if c not in added
                and c.cert.subject == current.issuer
                and signature_verifies(current, public_key_of(c.cert)) is True
            ),
            None,
        )
        if chosen is None:
            break
        added.append(chosen)
        current = chosen.cert
    return added
