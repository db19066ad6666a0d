"""The path verifier: `cryptography.x509.verification`, asked once per distinct question.

Its answer depends on the certificates it is given (the leaf, then the intermediates in order), the store, the
policy (fixed here, with no CRLs) and the validation time. It reads the time only to check that each
certificate it considers is valid then, to the second (`Policy::permits_basic` in `cryptography`'s Rust code).
So between two seconds at which no certificate given or in the store becomes valid or stops being valid, its
answer cannot change: it is memoised with that span, and asked again only for other certificates, another
store, or a time outside the span. An estate presents the same chains scan after scan, and verifying one
again costs a signature check per link, up to 90 µs each.
"""

import bisect
from datetime import datetime
from ipaddress import ip_address
from typing import NamedTuple

from cryptography import x509
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    ServerVerifier,
    Store,
    VerificationError,
)

from services.evaluator.domain.memo import BoundedMemo
from services.evaluator.domain.parse import ParsedCert
from services.evaluator.domain.trust import TrustStore, validity_changes, verifier_second

#: The leaf's extensions are judged by `usage.py`; the verifier only has to insist on a SAN, which it needs.
_EE_POLICY = ExtensionPolicy.permit_all().require_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
_ANY_EE_POLICY = ExtensionPolicy.permit_all()
_CA_POLICY = ExtensionPolicy.webpki_defaults_ca()

#: Answers kept: about one per distinct presented chain and trust store of an estate.
ANSWER_CACHE_SIZE = 8192
#: An answer is kept only for certificates of this size in all (real chains: 3 to 10 KiB), as it keeps them
#: alive: at most 128 MB of DER, whatever an estate presents.
MEMOISED_CHAIN_BYTES = 16 * 1024

Answer = tuple[list[x509.Certificate] | None, str | None]


class _Memoised(NamedTuple):
    """The verifier's answer at one validation second, and the span of seconds [first, last] it holds for: found
    when first needed at another second (a new leaf's is never needed within a bulk check's second)."""

    second: int
    path: tuple[x509.Certificate, ...] | None
    error: str | None
    #: The store and certificates of the key, kept alive with the answer so that their ids are not reused.
    given: tuple[TrustStore, tuple[x509.Certificate, ...]]
    span: tuple[float, float] | None = None


#: The ids of the store, the leaf and the intermediates in order (compared in C: this is on every new leaf's path).
_AnswerKey = tuple[int, ...]
_ANSWERS: BoundedMemo[_AnswerKey, _Memoised] = BoundedMemo(ANSWER_CACHE_SIZE)


def forget_answers() -> None:
    """Forget every memoised answer (benchmarks measure the cold path with it)."""
    _ANSWERS.clear()


def _clamp(now: datetime, leaf: ParsedCert) -> datetime:
    """A validation time inside the leaf's validity: its own dates are the expiry rule's business."""
    return min(max(now, leaf.not_before), leaf.not_after)


def _subjects(leaf: ParsedCert) -> tuple[x509.DNSName | x509.IPAddress, ...]:
    """Names the leaf itself carries, usable as the verifier's subject (a wildcard gets a concrete label)."""
    subjects: list[x509.DNSName | x509.IPAddress] = []
    for name in leaf.dns:
        concrete = "certmon-probe" + name[1:] if name.startswith("*.") else name
        if concrete.isascii():  # a U-label in a SAN is itself a fault; the hostname rule reports mismatches
            subjects.append(x509.DNSName(concrete))
    subjects.extend(x509.IPAddress(ip_address(ip)) for ip in leaf.ips)
    return tuple(subjects)


def _server_verifier(builder: PolicyBuilder, subject: x509.DNSName | x509.IPAddress) -> ServerVerifier | None:
    try:
        return builder.build_server_verifier(subject)
    except ValueError:  # a SAN entry the verifier cannot take as a subject; try the next one
        return None


def _ask(leaf: ParsedCert, intermediates: list[x509.Certificate], at: datetime, store: Store) -> Answer:
    builder = PolicyBuilder().store(store).time(at)
    error: str | None = None
    server = builder.extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
    for subject in leaf.derived(_subjects):
        verifier = _server_verifier(server, subject)
        if verifier is None:
            continue
        try:
            return verifier.verify(leaf.cert, intermediates), None
        except VerificationError as exc:
            error = str(exc)
            if "subjectAltName" not in error:
                return None, error
    # No SAN the verifier can use as a subject: check the path alone, with no leaf policy at all.
    client = builder.extension_policies(ca_policy=_CA_POLICY, ee_policy=_ANY_EE_POLICY)
    try:
        return client.build_client_verifier().verify(leaf.cert, intermediates).chain, None
    except VerificationError as exc:
        return None, error or str(exc)


def _span(second: int, given: tuple[x509.Certificate, ...], trust: TrustStore) -> tuple[float, float]:
    """The widest [first, last] around `second` in which no certificate given or in the store changes validity."""
    changes = trust.validity_changes
    at = bisect.bisect_right(changes, second)
    first: float = changes[at - 1] if at else float("-inf")
    after: float = changes[at] if at < len(changes) else float("inf")
    for cert in given:
        for change in validity_changes(cert):
            if change <= second:
                first = max(first, change)
            else:
                after = min(after, change)
    return first, after - 1


def verify_path(
    leaf: ParsedCert,
    intermediates: list[x509.Certificate],
    *,
    now: datetime,
    trust: TrustStore,
    chain_bytes: int | None,
) -> Answer:
    """The verified path (leaf → anchor) or None, and the verifier's reason when there is none. `chain_bytes` is
    the size of the certificates given (their DER), which decides whether the answer is kept; None when unknown."""
    if trust.store is None:
        return None, "the trust store is empty"
    at = _clamp(now, leaf)
    if chain_bytes is None or chain_bytes > MEMOISED_CHAIN_BYTES:
        return _ask(leaf, intermediates, at, trust.store)
    second = verifier_second(at)
    # Keyed by identity: parsed certificates are shared by every chain that presents them, and the verifier
    # hands back the very objects it was given.
    certs = (leaf.cert, *intermediates)
    key: _AnswerKey = (id(trust), *map(id, certs))
    found = _ANSWERS.get(key, None)
    if found is not None and found.second != second:
        span = found.span or _span(found.second, certs, trust)
        if not span[0] <= second <= span[1]:
            found = None
        elif found.span is None:
            found = _ANSWERS.put(key, found._replace(span=span))
    if found is None:
        path, error = _ask(leaf, intermediates, at, trust.store)
        found = _ANSWERS.put(key, _Memoised(second, None if path is None else tuple(path), error, (trust, certs)))
    return (None if found.path is None else list(found.path)), found.error
