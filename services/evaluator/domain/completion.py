"""Completing a chain the server sent without an intermediate, from intermediates found elsewhere.

The domain never fetches: the caller (the application) asks `first_gap` which certificate's issuer is
missing, looks that issuer up (a cache of intermediates seen in other chains, the AIA caIssuers URL) and hands
the candidates to `evaluate`, which extends the path with `complete_path` and lets the verifier decide.
"""

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from services.evaluator.domain.parse import ParsedCert
from services.evaluator.domain.signature import signature_verifies
from services.evaluator.domain.trust import TrustStore
from shared.events.evaluation import CompletedFrom

if TYPE_CHECKING:
    from services.evaluator.domain.caches import EvaluatorCaches

C = TypeVar("C")

#: How many certificates a completion may add; real chains miss one intermediate, rarely two.
MAX_ADDED = 4


@dataclass(frozen=True, eq=False)
class CandidateIntermediate:
    """An intermediate the server did not send, where it was found (read in a sentence: "found in …"), and
    whether that was the intermediates certmon had seen or an AIA fetch."""

    cert: x509.Certificate
    source: str
    origin: CompletedFrom


def completed_from(added: Sequence[CandidateIntermediate]) -> CompletedFrom:
    """Where a completion came from: `aia` when any intermediate it added was fetched (certmon alone would not
    have completed it), else `cache`."""
    return "aia" if any(c.origin == "aia" for c in added) else "cache"


def public_key_of(cert: x509.Certificate) -> CertificatePublicKeyTypes | None:
    """The certificate's key, or None when its algorithm is unknown or the key is broken."""
    try:
        return cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return None


def _ends(cert: x509.Certificate, trust: TrustStore) -> bool:
    """The path ends here: a self-issued certificate, or one whose issuer is an anchor."""
    return cert.subject == cert.issuer or bool(trust.issuers_named(cert.issuer))


def _gap(
    leaf: C,
    pool: Iterable[C],
    *,
    subject: Callable[[C], Hashable],
    issuer: Callable[[C], Hashable],
    ends: Callable[[C], bool],
) -> C | None:
    """Follow issuer names from `leaf` through `pool`: the certificate whose issuer is nowhere, else None.

    Terminates on a loop of issuer names (two CAs that issue each other): a loop is not a gap."""
    by_subject: dict[Hashable, C] = {}
    for cert in pool:
        by_subject.setdefault(subject(cert), cert)
    seen: set[int] = {id(leaf)}
    current = leaf
    while not ends(current):
        found = by_subject.get(issuer(current))
        if found is None:
            return current
        if id(found) in seen:
            return None
        seen.add(id(found))
        current = found
    return None


def first_gap(leaf: x509.Certificate, pool: Sequence[x509.Certificate], trust: TrustStore) -> x509.Certificate | None:
    """The first certificate on the leaf's issuer chain through `pool` whose issuer is nowhere, else None."""
    return _gap(
        leaf,
        pool,
        subject=attrgetter("subject"),
        issuer=attrgetter("issuer"),
        ends=lambda cert: cert.subject == cert.issuer or bool(trust.issuers_named(cert.issuer)),
    )


def gap_in(certs: Sequence[ParsedCert], trust: TrustStore) -> ParsedCert | None:
    """`first_gap` of the leaf `certs[0]` through `certs`, on parsed certificates: names compared by their keys."""
    return _gap(
        certs[0],
        certs,
        subject=attrgetter("subject_key"),
        issuer=attrgetter("issuer_key"),
        ends=lambda cert: cert.self_issued or bool(trust.anchors_named(cert.issuer_key)),
    )


def complete_path(
    last: x509.Certificate, candidates: Sequence[CandidateIntermediate], trust: TrustStore, caches: "EvaluatorCaches"
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
                and signature_verifies(current, public_key_of(c.cert), caches) is True
            ),
            None,
        )
        if chosen is None:
            break
        added.append(chosen)
        current = chosen.cert
    return added
