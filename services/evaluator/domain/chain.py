"""Chain validation: trust through `cryptography.x509.verification`, plus what the path builder does not tell.

The verifier answers one question: is there a valid path from the leaf to an anchor? It is asked with a
subject taken from the leaf's own SAN and at a time inside the leaf's validity, because hostname, expiry and
the leaf's fitness for server use are judged (and reported) by their own rules; here only the path matters.

What the verifier does not say is found by walking the chain as presented: which link is broken
(`signature.invalid`), whether the leaf is self-signed (`chain.self_signed`), whether the issuer of some
certificate was neither sent nor known (`chain.incomplete`), or the walk ends at a root we do not trust
(`chain.untrusted_root`); and the presentation faults: order, extra or duplicate certificates, a root sent,
an intermediate expiring before the leaf, a cross-signed path.
"""

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding

from services.evaluator.domain.codes import finding
from services.evaluator.domain.completion import CandidateIntermediate, complete_path, completed_from
from services.evaluator.domain.keys import key_info
from services.evaluator.domain.memo import Identity
from services.evaluator.domain.parse import NameKey, ParsedCert, fingerprint_of, name_key
from services.evaluator.domain.signature import algorithm_name, link_verifies, unsupported_algorithm, weak_hash
from services.evaluator.domain.trust import TrustStore
from services.evaluator.domain.verifier import MEMOISED_CHAIN_BYTES, verify_path
from shared.events.evaluation import ChainInfo, CompletedFrom, Finding, PresentedCertificate

if TYPE_CHECKING:
    from services.evaluator.domain.caches import EvaluatorCaches

#: Longest presented path we walk; real chains have 2 to 4 certificates.
MAX_PATH = 16


@dataclass(frozen=True)
class ChainResult:
    """The chain section of the evaluation and the chain findings."""

    info: ChainInfo
    findings: tuple[Finding, ...]  # a tuple: a verdict is shared by every evaluation of the same chain


#: How the walk ended: at a self-issued certificate, at an issuer found in the store, or at an unknown issuer.
WalkEnd = Literal["root", "store", "missing"]


@dataclass(frozen=True)
class _Walk:
    """The chain as presented, followed from the leaf by issuer name and key."""

    path: list[ParsedCert]
    broken_links: list[tuple[ParsedCert, str]]
    end: WalkEnd
    anchored: bool


def _describe(cert: ParsedCert) -> str:
    return "the leaf" if cert.position == 0 else f"certificate #{cert.position} ({cert.subject})"


#: Links (child, issuer) the verifier has just checked, by the identity of the certificate objects: it hands
#: back the very objects it was given, presented certificates and anchors.
Vouched = frozenset[tuple[int, int]]


def _vouched(path: list[x509.Certificate] | None) -> Vouched:
    return frozenset((id(child), id(issuer)) for child, issuer in itertools.pairwise(path or ()))


class _Signer(Protocol):
    """A possible issuer: a presented certificate or an anchor."""

    @property
    def cert(self) -> x509.Certificate: ...
    @property
    def public_key(self) -> CertificatePublicKeyTypes | None: ...
    @property
    def spki(self) -> bytes | None: ...


_S = TypeVar("_S", bound=_Signer)


def _first_signer(
    child: ParsedCert, named: Sequence[_S], vouched: Vouched, caches: "EvaluatorCaches"
) -> tuple[_S | None, bool | None]:
    """Among the certificates named as the child's issuer, the one whose key verifies the child, else the first;
    and whether its key verifies the child. A link the verifier went through is known to verify, and not checked
    again (a signature check is the costliest step of a walk); any other is checked (kept in `caches`)."""
    first: bool | None = None
    for index, candidate in enumerate(named):
        if (id(child.cert), id(candidate.cert)) in vouched:
            return candidate, True
        verdict = link_verifies(child, candidate.public_key, candidate.spki, caches)
        if verdict is True:
            return candidate, True
        if index == 0:
            first = verdict
    return (named[0], first) if named else (None, None)


def _is_anchor(cert: ParsedCert, trust: TrustStore) -> bool:
    """This certificate, or one with its subject and key, is in the store."""
    if trust.contains(cert.fingerprint):
        return True
    anchors = trust.anchors_named(cert.subject_key)  # read first: most certificates have no anchor's name
    return bool(anchors) and cert.spki is not None and any(anchor.spki == cert.spki for anchor in anchors)


def _walk(unique: list[ParsedCert], trust: TrustStore, vouched: Vouched, caches: "EvaluatorCaches") -> _Walk:
    leaf = unique[0]
    path = [leaf]
    broken: list[tuple[ParsedCert, str]] = []
    anchored = _is_anchor(leaf, trust)
    current = leaf
    end: WalkEnd = "missing"
    if leaf.self_issued and link_verifies(leaf, leaf.public_key, leaf.spki, caches) is False:
        broken.append((leaf, "its self-signature does not verify with its own key"))
    while len(path) <= MAX_PATH:
        if current.self_issued:
            end = "root"
            break
        named = [c for c in unique if c.subject_key == current.issuer_key and c not in path]
        chosen, verifies = _first_signer(current, named, vouched, caches)
        if chosen is None:
            anchor, verifies = _first_signer(current, trust.anchors_named(current.issuer_key), vouched, caches)
            if anchor is not None:
                end, anchored = "store", True
                if verifies is False:
                    anchor_name = anchor.cert.subject.rfc4514_string()
                    broken.append((current, f"its signature does not verify with the key of the anchor {anchor_name}"))
            break
        if verifies is False:
            broken.append((current, f"its signature does not verify with the key of {_describe(chosen)}"))
        path.append(chosen)
        anchored = anchored or _is_anchor(chosen, trust)
        current = chosen
    return _Walk(path=path, broken_links=broken, end=end, anchored=anchored)


def _explained_by_algorithm(walk: _Walk) -> bool:
    """A certificate on the path is signed with a weak or unknown algorithm: the verifier rejects the path for
    that, and `signature.weak_hash` / `signature.unsupported` already say so in words."""
    return any(
        weak_hash(c.cert) is not None or unsupported_algorithm(c.cert)
        for c in walk.path
        if c.position == 0 or not c.self_issued
    )


#: Who rejects a chain a client must complete itself: clients that neither fetch AIA nor keep intermediates.
_CLIENTS_THAT_FAIL = "OpenSSL-based clients (curl, wget, Python), Java and many mobile apps"


def _completed_finding(last: ParsedCert, added: list[CandidateIntermediate]) -> Finding:
    found = "; ".join(f"{c.cert.subject.rfc4514_string()}, found in {c.source}" for c in added)
    return finding(
        "chain.incomplete",
        f"the server does not send the issuer of {_describe(last)}, {last.issuer}: certmon completed the chain "
        f"with {found}. Browsers that fetch or keep intermediates accept the chain; {_CLIENTS_THAT_FAIL} reject "
        "it, so the server must send it",
    )


def _trust_findings(walk: _Walk, trusted: bool, error: str | None, trust: TrustStore) -> list[Finding]:
    findings = [finding("signature.invalid", f"{_describe(cert)}: {why}") for cert, why in walk.broken_links]
    if trusted:
        return findings
    last = walk.path[-1]
    if len(walk.path) == 1 and last.self_issued:
        findings.append(
            finding("chain.self_signed", f"the leaf is self-signed and not in the trust store ({trust.description})")
        )
    elif walk.end == "missing" and not walk.anchored:
        findings.append(
            finding(
                "chain.incomplete",
                f"the issuer of {_describe(last)}, {last.issuer}, was not presented and is not in the trust store "
                f"({trust.description}) nor among the known intermediates: an intermediate is missing",
            )
        )
    elif walk.end == "root" and not walk.anchored:
        findings.append(
            finding(
                "chain.untrusted_root",
                f"the chain ends at the root {last.subject}, which is not in the trust store ({trust.description})",
            )
        )
    elif not walk.broken_links and not _explained_by_algorithm(walk):
        findings.append(finding("chain.invalid", f"the path to a trusted anchor does not verify: {error}"))
    return findings


def _presentation_findings(
    certs: list[ParsedCert], unique: list[ParsedCert], walk: _Walk, verified_fingerprints: frozenset[str]
) -> tuple[list[Finding], bool, bool]:
    """Order, extra and duplicate certificates, a root sent, intermediates expiring before the leaf.

    A certificate on the verified path is not extra even when our walk took the other branch of a cross-sign.
    """
    findings: list[Finding] = []
    on_path = [c for c in unique if c in walk.path]
    ordered = on_path == walk.path
    if not ordered:
        order = ", ".join(f"#{c.position}" for c in walk.path)
        findings.append(
            finding(
                "chain.wrong_order",
                f"the certificates are not sent leaf first then each issuer in turn (path: {order})",
            )
        )
    duplicates = [c for c in certs if c not in unique]
    unrelated = [c for c in unique if c not in walk.path and c.fingerprint not in verified_fingerprints]
    if duplicates or unrelated:
        parts = [f"{_describe(c)} is sent twice" for c in duplicates]
        parts += [f"{_describe(c)} is not on the path" for c in unrelated]
        findings.append(finding("chain.extra_certificates", "; ".join(parts)))
    roots = [c for c in unique[1:] if c.self_issued]
    if roots:
        findings.append(
            finding(
                "chain.contains_root", f"the server sends the root {roots[0].subject}; clients must already have it"
            )
        )
    leaf = walk.path[0]
    for cert in walk.path[1:]:
        if not cert.self_issued and cert.not_after < leaf.not_after:
            findings.append(
                finding(
                    "chain.intermediate_expiring",
                    f"{_describe(cert)} expires {cert.not_after.isoformat()}, "
                    f"before the leaf ({leaf.not_after.isoformat()})",
                )
            )
    return findings, ordered, bool(roots)


def _dedupe(certs: list[ParsedCert]) -> list[ParsedCert]:
    seen: set[str] = set()
    unique: list[ParsedCert] = []
    for cert in certs:
        if cert.fingerprint not in seen:
            seen.add(cert.fingerprint)
            unique.append(cert)
    return unique


def _try_completion(
    unique: list[ParsedCert],
    walk: _Walk,
    extra: Sequence[CandidateIntermediate],
    *,
    now: datetime,
    trust: TrustStore,
    caches: "EvaluatorCaches",
) -> tuple[list[x509.Certificate], list[CandidateIntermediate]] | None:
    """The verified path through the extra intermediates and the ones used, when they complete the chain."""
    if walk.end != "missing" or walk.anchored or not extra:
        return None
    added = complete_path(walk.path[-1].cert, extra, trust, caches)
    if not added:
        return None
    pool = [c.cert for c in unique[1:]] + [c.cert for c in added]
    verified, _ = verify_path(unique[0], pool, now=now, trust=trust, chain_bytes=None, caches=caches)  # rare: not kept
    return (verified, added) if verified is not None else None


def _presented(cert: ParsedCert) -> PresentedCertificate:
    return PresentedCertificate(
        fingerprint_sha256=cert.fingerprint,
        subject=cert.subject,
        issuer=cert.issuer,
        not_after=cert.not_after,
        not_before=cert.not_before,
        serial=cert.serial,
        key=key_info(cert),
        signature_algorithm=algorithm_name(cert.cert),
    )


def _fingerprints(path: list[x509.Certificate], unique: list[ParsedCert], trust: TrustStore) -> list[str]:
    """The fingerprints of the verified path, in path order: known already for the presented certificates and
    the anchors, computed only for anything else. The verifier hands back the very objects it was given, so
    they are found by identity (all are alive here, so no id is reused); hashing a certificate costs more."""
    known = {id(c.cert): c.fingerprint for c in unique}
    fingerprints: list[str] = []
    for cert in path:
        fingerprint = known.get(id(cert))
        if fingerprint is None:
            anchor = trust.anchor(cert)
            fingerprint = anchor.fingerprint if anchor is not None else fingerprint_of(cert.public_bytes(Encoding.DER))
        fingerprints.append(fingerprint)
    return fingerprints


def _subject_key(cert: x509.Certificate, trust: TrustStore) -> NameKey:
    """The subject's key; read from the store for an anchor, where a verified path ends (building the name
    from the certificate costs more than comparing it)."""
    anchor = trust.anchor(cert)
    return anchor.subject_key if anchor is not None else name_key(cert.subject)


#: What a chain verdict is kept by: the presented certificates (fingerprint, position), the store, the verified
#: path (the objects the verifier handed back) and the verifier's reason.
VerdictKey = tuple[
    tuple[tuple[str, int], ...], Identity[TrustStore], tuple[Identity[x509.Certificate], ...] | None, str | None
]


def analyse_chain(
    certs: list[ParsedCert],
    *,
    now: datetime,
    trust: TrustStore,
    caches: "EvaluatorCaches",
    extra: Sequence[CandidateIntermediate] = (),
) -> ChainResult:
    """Judge the presented chain (`certs[0]` is the leaf) against the trust store at `now`; `extra` holds
    intermediates found elsewhere, used only to complete a chain the server sent without its intermediate.

    The verifier's answer is what depends on `now` (`verifier.py` asks it again only when that answer could
    change). What follows from its answer, the chain's content and the store (the walk, the findings, the chain
    section) is the same for the same three, so it is kept in `caches.verdicts` by them: an estate presents the
    same chains on every scan and from many endpoints."""
    unique = _dedupe(certs)
    chain_bytes = sum(c.size for c in unique)
    verified, error = verify_path(
        unique[0], [c.cert for c in unique[1:]], now=now, trust=trust, chain_bytes=chain_bytes, caches=caches
    )
    # Completion asks the verifier again, through the extra intermediates; a chain too large to keep (the key
    # keeps the verified path alive) is judged afresh each time.
    if (verified is None and extra) or chain_bytes > MEMOISED_CHAIN_BYTES:
        return _verdict(certs, unique, verified, error, now=now, trust=trust, caches=caches, extra=extra)
    # The verifier hands back the objects it was given (presented certificates, anchors), kept alive by the key.
    key: VerdictKey = (
        tuple((c.fingerprint, c.position) for c in certs),
        Identity(trust),
        None if verified is None else tuple(map(Identity, verified)),
        error,
    )
    verdicts = caches.verdicts
    found = verdicts.get(key, None)
    if found is None:
        found = verdicts.put(
            key, _verdict(certs, unique, verified, error, now=now, trust=trust, caches=caches, extra=())
        )
    return found


def _verdict(
    certs: list[ParsedCert],
    unique: list[ParsedCert],
    verified: list[x509.Certificate] | None,
    error: str | None,
    *,
    now: datetime,
    trust: TrustStore,
    caches: "EvaluatorCaches",
    extra: Sequence[CandidateIntermediate],
) -> ChainResult:
    walk = _walk(unique, trust, _vouched(verified), caches)
    completion = _try_completion(unique, walk, extra, now=now, trust=trust, caches=caches) if verified is None else None
    origin: CompletedFrom | None = None
    if completion is None:
        findings = _trust_findings(walk, verified is not None, error, trust)
        top, top_issuer = walk.path[-1].cert, walk.path[-1].issuer_key
    else:
        verified, added = completion
        findings = [_completed_finding(walk.path[-1], added)]
        top = added[-1].cert
        top_issuer = name_key(top.issuer)
        origin = completed_from(added)
    verified_path = _fingerprints(verified or [], unique, trust)
    verified_fingerprints = frozenset(verified_path)
    presentation, ordered, contains_root = _presentation_findings(certs, unique, walk, verified_fingerprints)
    findings += presentation
    cross_signed = verified is not None and _subject_key(verified[-1], trust) != top_issuer
    if cross_signed and verified is not None:
        findings.append(
            finding(
                "chain.cross_signed",
                f"the trusted path ends at {verified[-1].subject.rfc4514_string()}, while the server's chain leads "
                f"to {top.issuer.rfc4514_string()}: a cross-signed path",
            )
        )
    info = ChainInfo(
        presented=[c.derived(_presented) for c in certs],
        complete=completion is None and (walk.end != "missing" or walk.anchored),
        trusted=verified is not None,
        ordered=ordered,
        contains_root=contains_root,
        cross_signed=cross_signed,
        verified_path=verified_path,
        completed_from=origin,
    )
    return ChainResult(info=info, findings=tuple(findings))
