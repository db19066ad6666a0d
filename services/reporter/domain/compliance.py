"""The monthly compliance report: every certificate in the estate at the month's end held to the compliance policy.

A certificate is judged where it is served (one check per target with a certificate, since protocols, chain and
grade belong to the endpoint); a target whose latest evaluation has no certificate (unreachable) is counted but
not judged. Each rule names the finding codes behind a violation, where the evaluator found any; a policy
stricter than the evaluator's defaults (RSA 3072, say) can be broken with no finding behind it.

- *key*: the key type is one the policy allows, RSA and EC keys at least its sizes;
- *signature_hash*: the hash the signature algorithm names is one the policy allows (EdDSA and RSASSA-PSS name
  none and are judged by their findings only);
- *protocol*: no version older than the policy's minimum is offered (a scan with the `expiry` profile knows only
  the negotiated version);
- *grade*: the grade is not below the floor;
- *lifetime*: notBefore to notAfter is not longer than the maximum;
- *chain*: the chain is complete, trusted and in order (when the policy checks chains).

Month-over-month: the same summary of the estate at the previous month's end. Pure: no clock, no I/O.
"""

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.reporter.domain.facts import LeafFacts, TargetFacts
from services.reporter.domain.report import GRADES, ReportModel
from shared.config.reports import CompliancePolicy

Rule = Literal["key", "signature_hash", "protocol", "grade", "lifetime", "chain"]
RULES: tuple[Rule, ...] = ("key", "signature_hash", "protocol", "grade", "lifetime", "chain")
PROTOCOL_ORDER: tuple[str, ...] = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
#: Lifetime buckets in days, as (label, longest lifetime in the bucket).
LIFETIME_BUCKETS: tuple[tuple[str, float], ...] = (
    ("up to 90 days", 90.0),
    ("91 to 200 days", 200.0),
    ("201 to 398 days", 398.0),
    ("399 to 825 days", 825.0),
    ("over 825 days", float("inf")),
)
NO_NAME = "(none)"

#: The finding codes that bear on each rule (the design's finding table).
RULE_CODES: dict[Rule, frozenset[str]] = {
    "key": frozenset({"key.weak", "key.unsupported"}),
    "signature_hash": frozenset({"signature.weak_hash", "signature.unsupported"}),
    "protocol": frozenset({"tls.sslv2", "tls.sslv3", "tls.tls10", "tls.tls11"}),
    # What caps the grade or makes it F, per the design's grading section.
    "grade": frozenset(
        {
            "tls.sslv2",
            "tls.sslv3",
            "tls.tls10",
            "tls.tls11",
            "tls.no_tls13",
            "cipher.weak",
            "cipher.no_forward_secrecy",
            "key.weak",
            "signature.weak_hash",
            "signature.invalid",
            "signature.unsupported",
            "chain.incomplete",
            "chain.untrusted_root",
            "chain.self_signed",
            "chain.invalid",
            "expiry.expired",
            "expiry.not_yet_valid",
            "eku.no_server_auth",
            "key_usage.invalid",
            "basic_constraints.ca_leaf",
            "revocation.revoked",
            "hostname.mismatch",
        }
    ),
    "lifetime": frozenset({"lifetime.too_long"}),
    "chain": frozenset(
        {
            "chain.incomplete",
            "chain.untrusted_root",
            "chain.self_signed",
            "chain.invalid",
            "chain.wrong_order",
            "signature.invalid",
        }
    ),
}
_HASH = re.compile(r"(md2|md5|sha1|sha224|sha256|sha384|sha512)", re.IGNORECASE)


# Report lines are slotted dataclasses, not pydantic models: a report can list 100,000 of them and a model costs
# ten times the memory. The report model around them still dumps them to JSON and validates them back.
@dataclass(frozen=True, slots=True, kw_only=True)
class RuleViolation:
    """One rule a certificate breaks, what exactly, and the finding codes behind it (maybe none)."""

    rule: Rule
    detail: str
    codes: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class NonCompliant:
    """A certificate, where it is served, and every rule it breaks there."""

    target: str
    fingerprint: str
    subject: str
    issuer: str
    owner: str | None = None
    server: str | None = None
    grade: str | None = None
    violations: list[RuleViolation]


@dataclass(frozen=True, slots=True, kw_only=True)
class ShareCompliant:
    """How many certificates of one owner or server were checked, how many comply, and the share (0 to 1)."""

    name: str
    checked: int
    compliant: int
    share: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Distribution:
    """How many distinct certificates have one value (an issuer, a key kind, a lifetime bucket)."""

    label: str
    count: int


class ComplianceSummary(ReportModel):
    """The estate at `as_of` against the policy: certificates checked, compliant, their share, breaches per rule."""

    as_of: datetime
    checked: int
    compliant: int
    share: float | None
    not_observed: int
    by_rule: dict[str, int]


class ComplianceReport(ReportModel):
    """The monthly compliance report of `[period_start, period_end)`; `empty` when no certificate was checked."""

    kind: Literal["monthly"] = "monthly"
    generated_at: datetime
    period_start: datetime
    period_end: datetime
    empty: bool
    policy: CompliancePolicy
    summary: ComplianceSummary
    previous: ComplianceSummary | None
    share_change: float | None
    by_owner: list[ShareCompliant]
    by_server: list[ShareCompliant]
    violations: list[NonCompliant]
    issuers: list[Distribution]
    key_kinds: list[Distribution]
    lifetimes: list[Distribution]


def _codes(facts: TargetFacts, rule: Rule) -> list[str]:
    return list(dict.fromkeys(code for code in facts.finding_codes if code in RULE_CODES[rule]))


def _key(facts: TargetFacts, leaf: LeafFacts, policy: CompliancePolicy) -> str | None:
    kind, bits = leaf.key_type, leaf.key_bits
    if kind not in policy.key_types:
        return f"{kind} keys are not allowed (allowed: {', '.join(policy.key_types)})"
    floor = {"RSA": policy.min_rsa_bits, "EC": policy.min_ec_bits}.get(kind)
    if floor is not None and (bits is None or bits < floor):
        return f"{kind} key of {bits if bits is not None else 'unknown'} bits, below {floor}"
    return None


def signature_hash(algorithm: str) -> str | None:
    """The hash a signature algorithm's name names (`sha256WithRSAEncryption`, `ecdsa-with-SHA384`), lower case;
    None when it names none."""
    match = _HASH.search(algorithm)
    return match[1].lower() if match else None


def _signature(facts: TargetFacts, leaf: LeafFacts, policy: CompliancePolicy) -> str | None:
    algorithm = leaf.signature_algorithm
    digest = signature_hash(algorithm)
    if digest is not None and digest not in policy.signature_hashes:
        return f"signed with {digest} ({algorithm}); allowed: {', '.join(policy.signature_hashes)}"
    if _codes(facts, "signature_hash"):
        return f"the evaluator rejected the signature algorithm {algorithm}"
    return None


def _protocol(facts: TargetFacts, leaf: LeafFacts, policy: CompliancePolicy) -> str | None:
    floor = PROTOCOL_ORDER.index(policy.min_protocol)
    old = [v for v in facts.tls_versions if v in PROTOCOL_ORDER and PROTOCOL_ORDER.index(v) < floor]
    return f"offers {', '.join(old)}, older than {policy.min_protocol}" if old else None


def _grade(facts: TargetFacts, leaf: LeafFacts, policy: CompliancePolicy) -> str | None:
    if facts.grade is None or GRADES.index(facts.grade) <= GRADES.index(policy.grade_floor):
        return None
    reasons = f": {'; '.join(facts.grade_reasons)}" if facts.grade_reasons else ""
    return f"grade {facts.grade}, below the floor {policy.grade_floor}{reasons}"


def _lifetime(facts: TargetFacts, leaf: LeafFacts, policy: CompliancePolicy) -> str | None:
    days = leaf.lifetime_days
    return (
        f"valid for {days:.0f} days, longer than {policy.max_lifetime_days}"
        if days > policy.max_lifetime_days
        else None
    )


def _chain(facts: TargetFacts, leaf: LeafFacts, policy: CompliancePolicy) -> str | None:
    if not policy.chain_problems:
        return None
    problems = [
        name
        for name, ok in (
            ("incomplete", facts.chain_complete),
            ("untrusted", facts.chain_trusted),
            ("out of order", facts.chain_ordered),
        )
        if not ok
    ]
    if problems:
        return f"the chain is {', '.join(problems)}"
    return "the evaluator found a chain problem" if _codes(facts, "chain") else None


_CHECKS: dict[Rule, Callable[[TargetFacts, LeafFacts, CompliancePolicy], str | None]] = {
    "key": _key,
    "signature_hash": _signature,
    "protocol": _protocol,
    "grade": _grade,
    "lifetime": _lifetime,
    "chain": _chain,
}


def check(facts: TargetFacts, leaf: LeafFacts, policy: CompliancePolicy) -> list[RuleViolation]:
    """Every rule the certificate `leaf`, served at `facts`' target, breaks (empty: compliant)."""
    violations = []
    for rule in RULES:
        detail = _CHECKS[rule](facts, leaf, policy)
        if detail is not None:
            violations.append(RuleViolation(rule=rule, detail=detail, codes=_codes(facts, rule)))
    return violations


@dataclass(frozen=True, slots=True)
class _Judged:
    """A target's certificate and the rules it breaks."""

    facts: TargetFacts
    leaf: LeafFacts
    violations: list[RuleViolation]


def _judge(estate: Iterable[TargetFacts], policy: CompliancePolicy) -> tuple[list[_Judged], int]:
    """The checks of every target with a certificate, and how many had none."""
    judged, not_observed = [], 0
    for facts in estate:
        if facts.leaf is None:
            not_observed += 1
        else:
            judged.append(_Judged(facts, facts.leaf, check(facts, facts.leaf, policy)))
    return judged, not_observed


def _summary(judged: Sequence[_Judged], not_observed: int, as_of: datetime) -> ComplianceSummary:
    compliant = sum(1 for j in judged if not j.violations)
    by_rule = Counter(v.rule for j in judged for v in j.violations)
    return ComplianceSummary(
        as_of=as_of,
        checked=len(judged),
        compliant=compliant,
        share=compliant / len(judged) if judged else None,
        not_observed=not_observed,
        by_rule={rule: by_rule.get(rule, 0) for rule in RULES},
    )


def compliance_summary(
    estate: Iterable[TargetFacts], policy: CompliancePolicy, *, as_of: datetime
) -> ComplianceSummary:
    """The summary of the estate at `as_of` against `policy` (what month-over-month compares with)."""
    judged, not_observed = _judge(estate, policy)
    return _summary(judged, not_observed, as_of)


def _shares(judged: Sequence[_Judged], name: Callable[[TargetFacts], str | None]) -> list[ShareCompliant]:
    """Per owner or server (`name`), least compliant first, then by name."""
    checked: Counter[str] = Counter()
    compliant: Counter[str] = Counter()
    for j in judged:
        group = name(j.facts) or NO_NAME
        checked[group] += 1
        compliant[group] += not j.violations
    shares = [
        ShareCompliant(name=g, checked=n, compliant=compliant[g], share=compliant[g] / n) for g, n in checked.items()
    ]
    return sorted(shares, key=lambda s: (s.share, s.name))


def _distribution(values: Iterable[str], order: Sequence[str] | None = None) -> list[Distribution]:
    """Counts of `values` in `order`, or most common first, then by label."""
    counts = Counter(values)
    labels = (
        [label for label in order if label in counts]
        if order is not None
        else sorted(counts, key=lambda label: (-counts[label], label))
    )
    return [Distribution(label=label, count=counts[label]) for label in labels]


def key_kind(leaf: LeafFacts) -> str:
    """`RSA 2048`, `EC 256 (secp256r1)`, `Ed25519`: the key's type, size and curve."""
    size = f" {leaf.key_bits}" if leaf.key_bits is not None and leaf.key_type in ("RSA", "EC", "DSA") else ""
    curve = f" ({leaf.key_curve})" if leaf.key_curve and leaf.key_type == "EC" else ""
    return f"{leaf.key_type}{size}{curve}"


def _lifetime_bucket(days: float) -> str:
    return next(label for label, longest in LIFETIME_BUCKETS if days <= longest)


def build_compliance_report(
    estate: Sequence[TargetFacts],
    *,
    policy: CompliancePolicy,
    previous: ComplianceSummary | None,
    start: datetime,
    end: datetime,
    now: datetime,
) -> ComplianceReport:
    """The compliance report of the month `[start, end)` from the estate at its end, with `previous` the summary
    of the estate at the previous month's end (None when there was none to compare)."""
    judged, not_observed = _judge(estate, policy)
    summary = _summary(judged, not_observed, end)
    distinct = list({j.leaf.fingerprint: j.leaf for j in judged}.values())
    return ComplianceReport(
        generated_at=now,
        period_start=start,
        period_end=end,
        empty=not judged,
        policy=policy,
        summary=summary,
        previous=previous,
        share_change=(
            summary.share - previous.share
            if previous is not None and summary.share is not None and previous.share is not None
            else None
        ),
        by_owner=_shares(judged, lambda f: f.owner),
        by_server=_shares(judged, lambda f: f.server),
        violations=[
            NonCompliant(
                target=j.facts.target_key,
                fingerprint=j.leaf.fingerprint,
                subject=j.leaf.subject,
                issuer=j.leaf.issuer,
                owner=j.facts.owner,
                server=j.facts.server,
                grade=j.facts.grade,
                violations=j.violations,
            )
            for j in judged
            if j.violations
        ],
        issuers=_distribution(leaf.issuer for leaf in distinct),
        key_kinds=_distribution(key_kind(leaf) for leaf in distinct),
        lifetimes=_distribution(
            (_lifetime_bucket(leaf.lifetime_days) for leaf in distinct), [label for label, _ in LIFETIME_BUCKETS]
        ),
    )
