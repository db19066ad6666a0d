"""`evaluate`: one observation → the evaluation object, under a policy and a trust store, at a given time."""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.evaluator.domain.chain import analyse_chain
from services.evaluator.domain.codes import TRUST_CODES, finding
from services.evaluator.domain.expiry import evaluate_expiry
from services.evaluator.domain.grade import GradeInputs, grade
from services.evaluator.domain.hostname import check_hostname
from services.evaluator.domain.keys import check_key, key_info, rsa_exponent
from services.evaluator.domain.level import alarm_summary, apply_policy
from services.evaluator.domain.parse import Malformed, ParsedCert, parse_chain
from services.evaluator.domain.protocol import TlsView, check_protocols, tls_summary, tls_view
from services.evaluator.domain.signature import algorithm_name, check_signature_hashes, weak_hash
from services.evaluator.domain.trust import TrustStore
from services.evaluator.domain.usage import check_usage
from shared.config import Policy
from shared.events.evaluation import (
    CertificateInfo,
    ChainInfo,
    Evaluation,
    ExpiryInfo,
    Finding,
    SecurityInfo,
)
from shared.events.observation import Observation


@dataclass
class _LeafJudgement:
    certificate: CertificateInfo
    chain: ChainInfo
    expiry: ExpiryInfo
    security: SecurityInfo
    findings: list[Finding] = field(default_factory=list)


def certificate_info(leaf: ParsedCert) -> CertificateInfo:
    """The `certificate` section for a parsed leaf."""
    return CertificateInfo(
        fingerprint_sha256=leaf.fingerprint,
        subject=leaf.subject,
        issuer=leaf.issuer,
        serial=leaf.serial,
        not_before=leaf.not_before,
        not_after=leaf.not_after,
        san=leaf.dns_names() + leaf.ip_addresses(),
        key=key_info(leaf),
        signature_algorithm=algorithm_name(leaf.cert),
    )


def _judge_leaf(
    certs: list[ParsedCert],
    observation: Observation,
    view: TlsView,
    *,
    now: datetime,
    policy: Policy,
    trust: TrustStore,
) -> _LeafJudgement:
    leaf = certs[0]
    info = certificate_info(leaf)
    expiry = evaluate_expiry(leaf, now=now, policy=policy)
    chain = analyse_chain(certs, now=now, trust=trust)
    findings = [f for f in (expiry.finding, check_key(info.key, rsa_exponent(leaf))) if f is not None]
    target = observation.target
    if target.file is None and target.server_name:
        mismatch = check_hostname(leaf, target.server_name)
        if mismatch is not None:
            findings.append(mismatch)
    findings += check_signature_hashes(certs) + check_usage(leaf) + chain.findings
    signers = [c for c in certs if c.position == 0 or not c.self_issued]
    security = grade(
        GradeInputs(
            view=view,
            key=info.key,
            md5_signed=any(weak_hash(c.cert) in ("MD5", "MD2") for c in signers),
            incomplete_chain=any(f.code == "chain.incomplete" for f in findings),
            trust_problems=[f.message for f in findings if f.code in TRUST_CODES],
        )
    )
    return _LeafJudgement(info, chain.info, expiry.info, security, findings)


def _malformed(item: Malformed) -> Finding:
    what = "the leaf" if item.position == 0 else f"certificate #{item.position}"
    return finding("certificate.malformed", f"{what} is not a valid X.509 certificate: {item.reason}")


def evaluate(
    observation: Observation, *, now: datetime, policy: Policy, trust: TrustStore, server: str | None = None
) -> Evaluation:
    """Judge one observation at `now` (timezone-aware) under `policy`; `server` names the server it belongs to
    when the target does not (the composition resolves it from the address)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    view = tls_view(observation.tls)
    findings: list[Finding] = []
    if observation.error is not None:
        error = observation.error
        findings.append(finding("endpoint.unreachable", f"{error.kind}: {error.message}"))
    certs, malformed = parse_chain(observation.chain)
    findings += [_malformed(item) for item in malformed]
    if not observation.chain and observation.error is None:
        findings.append(finding("certificate.missing", "the endpoint completed no handshake with a certificate"))
    judgement = None
    if certs and certs[0].position == 0:
        judgement = _judge_leaf(certs, observation, view, now=now, policy=policy, trust=trust)
        findings += judgement.findings
    findings += check_protocols(view)
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
        tls=tls_summary(view),
        expiry=judgement.expiry if judgement else None,
        security=judgement.security if judgement else None,
        findings=judged,
        alarm=alarm_summary(judged),
        critical=policy.critical_certificate,
    )
