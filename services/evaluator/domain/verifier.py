"""The path verifier: `cryptography.x509.verification`, asked once per distinct question.

Its answer depends on the certificates it is given (the leaf, then the intermediates in order), the store, the
policy (fixed here, with no CRLs) and the validation time. It reads the time only to check that each
certificate it considers is valid then, to the second (`Policy::permits_basic` in `cryptography`'s Rust code).
So between two seconds at which no certificate given or in the store becomes valid or stops being valid, its
answer cannot change: it is memoised with that span, and asked again only for other certificates, another
store, or a time outside the span. An estate presents the same chains scan after scan, and verifying one
again costs a signature check per link, which is most of the verifier's time.

A new leaf under an issuer already seen with the same intermediates costs one signature check, not one per link:
see `Tail`. The answers and tails are kept in the evaluator's caches (`EvaluatorCaches.answers`, `.tails`), which
also say whom to ask: `ask` below, or what a test puts in its place to count the questions.
"""

import bisect
from datetime import datetime
from ipaddress import ip_address
from typing import TYPE_CHECKING, NamedTuple, Protocol, Self, TypeVar

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
from services.evaluator.domain.parse import NameKey, ParsedCert, name_key
from services.evaluator.domain.trust import TrustStore, validity_changes, verifier_second

if TYPE_CHECKING:
    from services.evaluator.domain.caches import EvaluatorCaches

#: The leaf's extensions are judged by `usage.py`; the verifier only has to insist on a SAN, which it needs.
_EE_POLICY = ExtensionPolicy.permit_all().require_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
_ANY_EE_POLICY = ExtensionPolicy.permit_all()
_CA_POLICY = ExtensionPolicy.webpki_defaults_ca()

#: An answer is kept only for certificates of this size in all (real chains: 3 to 10 KiB), as it keeps them
#: alive: at most 128 MB of DER, whatever an estate presents.
MEMOISED_CHAIN_BYTES = 16 * 1024

Answer = tuple[list[x509.Certificate] | None, str | None]


class Memoised(NamedTuple):
    """The verifier's answer at one validation second, and the span of seconds [first, last] it holds for: found
    when first needed at another second (a new leaf's is never needed within a bulk check's second)."""

    second: int
    path: tuple[x509.Certificate, ...] | None
    error: str | None
    #: The store and certificates of the key, kept alive with the answer so that their ids are not reused.
    given: tuple[TrustStore, tuple[x509.Certificate, ...]]
    span: tuple[float, float] | None = None


class Tail(NamedTuple):
    """The verified path above a leaf's issuer (issuer → anchor), as the verifier built it for one leaf, with the
    same intermediates and store, at one second; `issuer_alone` is a store holding only that issuer, or None when
    the path cannot serve another leaf.

    In `cryptography`'s path builder (`build_chain_inner`), a leaf that is not an anchor has as candidate issuers
    the anchors and intermediates whose subject is its issuer name. When the issuer on this path is the only
    certificate of that name, and no certificate above it carries name constraints (the only checks up the path
    that read the leaf's names), the verifier builds every leaf of that issuer the same path above it, for as
    long as no certificate given or in the store changes validity. What it checks of the new leaf is then what
    it checks when verifying it against `issuer_alone`: its own policy, and the issuer's as a CA and signer of it
    (see `_ask_through`)."""

    second: int
    issuer_key: NameKey
    path: tuple[x509.Certificate, ...]
    issuer_alone: Store | None
    #: The store and intermediates of the key, kept alive with the path so that their ids are not reused.
    given: tuple[TrustStore, tuple[x509.Certificate, ...]]
    span: tuple[float, float] | None = None


#: The ids of the store and the certificates given, in order (compared in C: this is on every new leaf's path):
#: the leaf and intermediates for an answer, the intermediates alone for a tail.
AnswerKey = tuple[int, ...]


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


def ask(leaf: ParsedCert, intermediates: list[x509.Certificate], at: datetime, store: Store) -> Answer:
    """The verifier itself, asked once: the path it builds for the leaf through the intermediates to an anchor of
    `store` at `at` (its subject taken from the leaf's own SAN), or None and its reason."""
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


class _Spanned(Protocol):
    """A memoised result found at `second`, holding over `span` once that is known."""

    @property
    def second(self) -> int: ...

    @property
    def span(self) -> tuple[float, float] | None: ...

    def _replace(self, *, span: tuple[float, float] | None = ...) -> Self: ...


_S = TypeVar("_S", bound=_Spanned)


def _current(
    memo: BoundedMemo[AnswerKey, _S],
    key: AnswerKey,
    second: int,
    given: tuple[x509.Certificate, ...],
    trust: TrustStore,
) -> _S | None:
    """The entry for `key` if it holds at `second`: found then, or within its span (found and kept when first
    needed: a new leaf's is never needed within a bulk check's second)."""
    found = memo.get(key, None)
    if found is not None and found.second != second:
        span = found.span or _span(found.second, given, trust)
        if not span[0] <= second <= span[1]:
            return None
        if found.span is None:
            found = memo.put(key, found._replace(span=span))
    return found


def _constrains_names(cert: x509.Certificate) -> bool:
    try:
        cert.extensions.get_extension_for_class(x509.NameConstraints)
    except x509.ExtensionNotFound:
        return False
    except ValueError:  # extensions Python cannot read: assume the worst
        return True
    return True


def _named(cert: x509.Certificate, name: NameKey) -> bool:
    """Whether `cert`'s subject may be the name with this key (a subject Python cannot read may be)."""
    try:
        return name_key(cert.subject) == name
    except ValueError:
        return True


def _tail(
    leaf: ParsedCert,
    intermediates: tuple[x509.Certificate, ...],
    path: list[x509.Certificate],
    second: int,
    trust: TrustStore,
) -> Tail:
    """What `path` (the leaf's, of three certificates or more) says to other leaves of its issuer (see `Tail`)."""
    named = len(trust.anchors_named(leaf.issuer_key)) + sum(_named(c, leaf.issuer_key) for c in intermediates)
    usable = named == 1 and not any(map(_constrains_names, path[2:]))
    alone = Store([path[1]]) if usable else None
    return Tail(second, leaf.issuer_key, tuple(path[1:]), alone, (trust, intermediates))


def _ask_through(
    leaf: ParsedCert, tail: Tail, at: datetime, trust: TrustStore, caches: "EvaluatorCaches"
) -> list[x509.Certificate] | None:
    """The leaf's path through `tail`, when the verifier accepts the leaf against its issuer alone; None when it
    must be asked along the whole path."""
    if tail.issuer_alone is None or tail.issuer_key != leaf.issuer_key:
        return None
    if trust.anchors_named(leaf.subject_key):  # the store may hold the leaf itself, which ends the path at once
        return None
    path, _ = caches.verifier(leaf, [], at, tail.issuer_alone)
    if path is None or len(path) != 2 or path[0] is not leaf.cert:
        return None  # asked along the whole path, the verifier gives its own reason
    return [leaf.cert, *tail.path]


def verify_path(
    leaf: ParsedCert,
    intermediates: list[x509.Certificate],
    *,
    now: datetime,
    trust: TrustStore,
    chain_bytes: int | None,
    caches: "EvaluatorCaches",
) -> Answer:
    """The verified path (leaf → anchor) or None, and the verifier's reason when there is none, from
    `caches.verifier` or its answers in `caches`. `chain_bytes` is the size of the certificates given (their
    DER), which decides whether the answer is kept; None when unknown."""
    if trust.store is None:
        return None, "the trust store is empty"
    at = _clamp(now, leaf)
    if chain_bytes is None or chain_bytes > MEMOISED_CHAIN_BYTES:
        return caches.verifier(leaf, intermediates, at, trust.store)
    second = verifier_second(at)
    # Keyed by identity: parsed certificates are shared by every chain that presents them, and the verifier
    # hands back the very objects it was given.
    certs = (leaf.cert, *intermediates)
    key: AnswerKey = (id(trust), *map(id, certs))
    found = _current(caches.answers, key, second, certs, trust)
    if found is None:
        given = certs[1:]
        tail_key: AnswerKey = (id(trust), *map(id, given))
        tail = _current(caches.tails, tail_key, second, given, trust)
        path = None if tail is None else _ask_through(leaf, tail, at, trust, caches)
        error: str | None = None
        if path is None:
            path, error = caches.verifier(leaf, intermediates, at, trust.store)
            if path is not None and len(path) > 2 and (tail is None or tail.issuer_key != leaf.issuer_key):
                caches.tails.put(tail_key, _tail(leaf, given, path, second, trust))
        found = caches.answers.put(key, Memoised(second, None if path is None else tuple(path), error, (trust, certs)))
    return (None if found.path is None else list(found.path)), found.error
