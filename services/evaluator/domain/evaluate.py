"""`evaluate`: one observation → the evaluation object, under a policy and a trust store, at a given time.

An estate is evaluated again on every scan, so what depends on the leaf alone (its `certificate` section, key and
usage findings, CT facts) is computed once per distinct leaf and kept with its parsed form, and the grade is kept
by its inputs, both in the `EvaluatorCaches` passed in. Only what depends on `now`, the policy or the trust store
is computed each time. The models reused across evaluations are frozen; nothing downstream changes them in place.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cryptography import x509

from services.evaluator.domain.chain import analyse_chain
from services.evaluator.domain.codes import TRUST_CODES, finding
from services.evaluator.domain.completion import CandidateIntermediate, public_key_of
from services.evaluator.domain.expiry import evaluate_expiry
from services.evaluator.domain.grade import GradeInputs, grade
from services.evaluator.domain.hostname import check_hostname
from services.evaluator.domain.keys import check_key, check_key_algorithm, key_info, rsa_exponent
from services.evaluator.domain.level import alarm_summary, apply_policy
from services.evaluator.domain.parse import Malformed, ParsedCert, parse_chain
from services.evaluator.domain.protocol import TlsJudgement, judge_tls
from services.evaluator.domain.revocation import check_revocation
from services.evaluator.domain.signature import (
    algorithm_name,
    check_signature_algorithms,
    check_signature_hashes,
    signature_verifies,
    weak_hash,
)
from services.evaluator.domain.transparency import transparency_info
from services.evaluator.domain.trust import TrustStore
from services.evaluator.domain.usage import check_usage
from shared.config import Policy
from shared.events.evaluation import (
    CertificateInfo,
    ChainInfo,
    Evaluation,
    ExpiryInfo,
    Finding,
    KeyInfo,
    RevocationInfo,
    SecurityInfo,
    TransparencyInfo,
)
from shared.events.observation import Observation

if TYPE_CHECKING:
    from services.evaluator.domain.caches import EvaluatorCaches

#: At most this many presented certificates are evaluated; real chains have 2 to 4, a few cross-signed ones 6.
MAX_PRESENTED = 10
#: A certificate larger than this is refused unparsed (real ones are 1 to 3 KiB; TLS would allow 16 MiB).
MAX_CERTIFICATE_BYTES = 64 * 1024
#: Its length in base64, as observations carry certificates.
_MAX_BASE64 = (MAX_CERTIFICATE_BYTES + 2) // 3 * 4


@dataclass
class _LeafJudgement:
    certificate: CertificateInfo
    chain: ChainInfo
    expiry: ExpiryInfo
    security: SecurityInfo
    revocation: RevocationInfo | None
    transparency: TransparencyInfo
    findings: list[Finding] = field(default_factory=list)


def certificate_info(leaf: ParsedCert) -> CertificateInfo:
    """The `certificate` section for a parsed leaf."""
    return leaf.derived(_leaf_facts).info


@dataclass(frozen=True)
class _LeafFacts:
    """What is judged of the leaf from its content alone, once per distinct leaf (`ParsedCert.derived`)."""

    info: CertificateInfo
    key_findings: tuple[Finding, ...]
    usage_findings: tuple[Finding, ...]
    transparency: TransparencyInfo


def _leaf_facts(leaf: ParsedCert) -> _LeafFacts:
    info = CertificateInfo(
        fingerprint_sha256=leaf.fingerprint,
        subject=leaf.subject,
        issuer=leaf.issuer,
        serial=leaf.serial,
        not_before=leaf.not_before,
        not_after=leaf.not_after,
        san=leaf.dns_names() + leaf.ip_addresses(),
        key=key_info(leaf),
        signature_algorithm=algorithm_name(leaf.cert),
        spki_sha256=hashlib.sha256(leaf.spki).hexdigest() if leaf.spki is not None else None,
    )
    key_findings = (check_key_algorithm(leaf), check_key(info.key, rsa_exponent(leaf)))
    return _LeafFacts(
        info=info,
        key_findings=tuple(f for f in key_findings if f is not None),
        usage_findings=tuple(check_usage(leaf)),
        transparency=transparency_info(leaf),
    )


def graded(
    tls: TlsJudgement, key: KeyInfo, md5_signed: bool, incomplete: bool, trust_problems: tuple[str, ...]
) -> SecurityInfo:
    """`grade` of these inputs, hashable so that `EvaluatorCaches.grades` can keep it (the judgement is compared
    by identity)."""
    inputs = GradeInputs(tls.view, key, md5_signed, incomplete, list(trust_problems))
    return grade(inputs)


def _judge_leaf(
    certs: list[ParsedCert],
    observation: Observation,
    tls: TlsJudgement,
    *,
    now: datetime,
    policy: Policy,
    trust: TrustStore,
    caches: "EvaluatorCaches",
    extra: Sequence[CandidateIntermediate],
) -> _LeafJudgement:
    leaf = certs[0]
    facts = leaf.derived(_leaf_facts)
    expiry = evaluate_expiry(leaf, now=now, policy=policy)
    chain = analyse_chain(certs, now=now, trust=trust, caches=caches, extra=extra)
    findings = [expiry.finding] if expiry.finding is not None else []
    findings += facts.key_findings
    target = observation.target
    if target.file is None and target.server_name:
        mismatch = check_hostname(leaf, target.server_name, caches)
        if mismatch is not None:
            findings.append(mismatch)
    findings += check_signature_hashes(certs) + check_signature_algorithms(certs)
    findings += facts.usage_findings
    findings += chain.findings
    issuer = _issuer_of(leaf, certs, extra, trust, caches) if observation.tls.ocsp_response is not None else None
    revocation = check_revocation(observation.tls, leaf.cert, issuer, now=now, caches=caches)
    findings += revocation.findings
    signers = [c for c in certs if c.position == 0 or not c.self_issued]
    incomplete = any(f.code == "chain.incomplete" for f in findings)
    trust_problems = [f.message for f in findings if f.code in TRUST_CODES]
    if incomplete and not chain.info.trusted:  # completed from elsewhere it is B; not even completable, untrusted
        trust_problems.append("the chain is incomplete and could not be completed to a trusted anchor")
    md5_signed = any(weak_hash(c.cert) in ("MD5", "MD2") for c in signers)
    security = caches.grades(tls, facts.info.key, md5_signed, incomplete, tuple(trust_problems))
    return _LeafJudgement(facts.info, chain.info, expiry.info, security, revocation.info, facts.transparency, findings)


def _issuer_of(
    leaf: ParsedCert,
    certs: list[ParsedCert],
    extra: Sequence[CandidateIntermediate],
    trust: TrustStore,
    caches: "EvaluatorCaches",
) -> x509.Certificate | None:
    """The certificate that signed the leaf, among those presented, found elsewhere, or anchors."""
    pool = [c.cert for c in certs[1:]] + [c.cert for c in extra] + list(trust.issuers_named(leaf.cert.issuer))
    return next(
        (
            c
            for c in pool
            if c.subject == leaf.cert.issuer and signature_verifies(leaf.cert, public_key_of(c), caches) is True
        ),
        None,
    )


def _what(position: int) -> str:
    return "the leaf" if position == 0 else f"certificate #{position}"


def _parse_presented(chain: list[str], caches: "EvaluatorCaches") -> tuple[list[ParsedCert], list[Finding]]:
    """Parse the presented certificates, refusing any over the size limit unparsed; positions are kept."""
    if all(len(text) <= _MAX_BASE64 for text in chain):
        certs, malformed = parse_chain(chain, caches)
        return certs, [_malformed(item) for item in malformed]
    certs, findings = [], []
    for position, text in enumerate(chain):
        if len(text) > _MAX_BASE64:
            size = len(text) * 3 // 4
            message = (
                f"{_what(position)} is about {size} bytes, over the {MAX_CERTIFICATE_BYTES // 1024} KiB "
                "certmon accepts for one certificate: it was not evaluated"
            )
            findings.append(finding("certificate.malformed", message))
            continue
        parsed, malformed = parse_chain([text], caches)
        certs += [replace(c, position=position) for c in parsed]
        findings += [_malformed(replace(item, position=position)) for item in malformed]
    return certs, findings


def _malformed(item: Malformed) -> Finding:
    return finding("certificate.malformed", f"{_what(item.position)} is not a valid X.509 certificate: {item.reason}")


def evaluate(
    observation: Observation,
    *,
    now: datetime,
    policy: Policy,
    trust: TrustStore,
    caches: "EvaluatorCaches",
    server: str | None = None,
    extra_intermediates: Sequence[CandidateIntermediate] = (),
) -> Evaluation:
    """Judge one observation at `now` (timezone-aware) under `policy`; `server` names the server it belongs to
    when the target does not (the composition resolves it from the address); `extra_intermediates`, found
    outside the observation, may complete a chain the server sent without its intermediate. `caches` only
    make it faster: the same arguments give the same evaluation with any caches object."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    tls = judge_tls(observation.tls, caches)
    findings: list[Finding] = []
    if observation.error is not None:
        error = observation.error
        findings.append(finding("endpoint.unreachable", f"{error.kind}: {error.message}"))
    presented = observation.chain[:MAX_PRESENTED]
    if len(observation.chain) > MAX_PRESENTED:
        message = (
            f"the server sent {len(observation.chain)} certificates; only the first {MAX_PRESENTED} were "
            "evaluated (real chains have 2 to 4)"
        )
        findings.append(finding("chain.too_long", message))
    certs, bad = _parse_presented(presented, caches)
    findings += bad
    if not observation.chain and observation.error is None:
        findings.append(finding("certificate.missing", "the endpoint completed no handshake with a certificate"))
    judgement = None
    if certs and certs[0].position == 0:
        judgement = _judge_leaf(
            certs, observation, tls, now=now, policy=policy, trust=trust, caches=caches, extra=extra_intermediates
        )
        findings += judgement.findings
    findings += tls.findings
    judged = apply_policy(findings, policy)
    ref = observation.target.ref()
    if server is not None and ref.server is None:
        ref = ref.model_copy(update={"server": server})
    return Evaluation(
        target=ref,
        target_key=observation.target.key,
        address=observation.address,
        observed_at=observation.observed_at,
        evaluated_at=now,
        reachable=observation.error is None,
        error=observation.error,
        certificate=judgement.certificate if judgement else None,
        chain=judgement.chain if judgement else ChainInfo(),
        tls=tls.summary,
        expiry=judgement.expiry if judgement else None,
        security=judgement.security if judgement else None,
        findings=judged,
        alarm=alarm_summary(judged),
        revocation=judgement.revocation if judgement else None,
        transparency=judgement.transparency if judgement else None,
        critical=policy.critical_certificate,
    )
