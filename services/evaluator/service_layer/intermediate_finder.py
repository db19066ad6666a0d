"""Finding the intermediates a server did not send, before the pure evaluation runs.

The domain says which issuer is missing (`first_gap`); this looks it up in the known-intermediates cache,
then at the caIssuers URLs of the certificate that lacks it (AIA), and hands what it found to `evaluate`.
Every chain seen teaches the cache its intermediates; what AIA serves stays in the fetcher's own URL cache, so
a finding always names where its intermediate really came from.
"""

import base64
import binascii
import functools
from typing import cast

import structlog
from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID

from services.evaluator.domain import EvaluatorCaches, TrustStore
from services.evaluator.domain.completion import MAX_ADDED, CandidateIntermediate, first_gap, gap_in
from services.evaluator.domain.evaluate import MAX_CERTIFICATE_BYTES, MAX_PRESENTED
from services.evaluator.domain.parse import ParsedCert, parse_presented
from services.evaluator.ports import AiaError, AiaSource
from services.evaluator.service_layer.known_intermediates import KnownIntermediates

log = structlog.get_logger(__name__)

#: caIssuers URLs tried per missing issuer; CAs publish one, rarely two.
MAX_URLS = 2
CACHE_SOURCE = "the known-intermediates cache (sent by another server)"


#: The longest base64 text taken for a certificate.
_MAX_TEXT = MAX_CERTIFICATE_BYTES * 4 // 3 + 4
#: Presented certificates the evaluator's parser refuses, kept loaded by `cryptography` alone (by their text): a
#: leaf's, mostly, met once per scan like any leaf, so a small table.
LOADED_ENTRIES = 1024


def _load(text: str) -> x509.Certificate | None:
    """A presented certificate, loaded for lookups (None when it is not one)."""
    if len(text) > _MAX_TEXT:
        return None
    try:
        return x509.load_der_x509_certificate(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return None


def ca_issuers_urls(cert: x509.Certificate) -> list[str]:
    """The certificate's AIA caIssuers URLs, in order."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [
        d.access_location.value
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]


class IntermediateFinder:
    """Looks up the issuers a presented chain lacks: known intermediates first, then AIA (when a fetcher is set).

    It reads presented certificates through the evaluator's `caches` (pass the process's: the evaluation parses
    the same certificates), and keeps those only `cryptography` can load in a memo of its own."""

    def __init__(
        self,
        *,
        known: KnownIntermediates | None = None,
        aia: AiaSource | None = None,
        caches: EvaluatorCaches | None = None,
    ) -> None:
        self.known = known if known is not None else KnownIntermediates()
        self.aia = aia
        self.caches = caches if caches is not None else EvaluatorCaches()
        self._load = functools.lru_cache(maxsize=LOADED_ENTRIES)(_load)

    def candidates(self, chain: list[str], trust: TrustStore) -> tuple[CandidateIntermediate, ...]:
        """Intermediates found outside `chain` (base64 DER, leaf first) that may complete it; learns its own."""
        texts = chain[:MAX_PRESENTED]
        parsed = [
            parse_presented(text, self.caches, position) if len(text) <= _MAX_TEXT else None
            for position, text in enumerate(texts)
        ]
        if not all(parsed):  # something the evaluator's parser refuses: the general path, on `cryptography` alone
            return self._complete([c for c in map(self._load, texts) if c is not None], trust)
        # The usual case: every certificate is in the evaluator's caches, with its fingerprint and name keys,
        # so learning and finding no gap cost a few lookups (fingerprinting each intermediate anew cost more).
        certs = cast("list[ParsedCert]", parsed)
        for cert in certs[1:]:
            if not cert.self_issued:  # a root sent along is never an intermediate: not checked again for every chain
                self.known.learn(cert.cert, fingerprint=bytes.fromhex(cert.fingerprint))
        if not certs or gap_in(certs, trust) is None:
            return ()
        return self._complete([c.cert for c in certs], trust, learned=True)

    def _complete(
        self, presented: list[x509.Certificate], trust: TrustStore, *, learned: bool = False
    ) -> tuple[CandidateIntermediate, ...]:
        if not learned:
            for cert in presented[1:]:
                self.known.learn(cert)
        if not presented:
            return ()
        found: list[CandidateIntermediate] = []
        for _ in range(MAX_ADDED):
            gap = first_gap(presented[0], presented + [c.cert for c in found], trust)
            if gap is None:
                break
            new = [c for c in self._lookup(gap) if all(c.cert != f.cert for f in found)]
            if not new:
                break
            found += new
        return tuple(found)

    def _lookup(self, gap: x509.Certificate) -> list[CandidateIntermediate]:
        known = self.known.issued_to(gap.issuer)
        if known:
            return [CandidateIntermediate(cert, CACHE_SOURCE, "cache") for cert in known]
        if self.aia is None:
            return []
        for url in ca_issuers_urls(gap)[:MAX_URLS]:
            try:
                certs = self.aia.fetch(url)
            except AiaError as exc:  # the chain stays incomplete, and the evaluation says so
                log.info("aia_fetch_failed", url=url, reason=str(exc))
                continue
            matching = [c for c in certs if c.subject == gap.issuer]
            if matching:
                log.info("aia_intermediate_fetched", url=url, subject=matching[0].subject.rfc4514_string())
                return [CandidateIntermediate(cert, f"the AIA caIssuers URL {url}", "aia") for cert in matching]
        return []
