"""The monthly compliance report: every certificate held to the policy, shares per owner and server, the
violations with their finding codes, distributions and month-over-month change."""

from datetime import UTC, datetime, timedelta
from typing import Any

from services.reporter.domain.compliance import (
    build_compliance_report,
    check,
    compliance_summary,
    signature_hash,
)
from services.reporter.domain.facts import TargetFacts, facts_of
from shared.config.reports import CompliancePolicy
from shared.events import ChainInfo, Finding, KeyInfo, SecurityCap, TlsSummary
from tests.unit.reporter.reporter_factories import NOW, evaluation

START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 12, 1, tzinfo=UTC)
POLICY = CompliancePolicy()
GOOD_CHAIN = ChainInfo(complete=True, trusted=True, ordered=True)


def cert(host: str, *, owner: str | None = "web-team", server: str | None = "web-01", **changes: Any) -> TargetFacts:
    """The facts of a compliant certificate at `host:443` (EC 256, ecdsa-with-SHA256, TLS 1.2 and 1.3, a good
    chain, grade A, 300 days' lifetime), with `changes` to the certificate (`key`, `signature_algorithm`,
    `not_before`, `issuer`) or the evaluation (`tls`, `chain`, `findings`, `security`)."""
    base = evaluation(host, days=60, owner=owner)
    assert base.certificate is not None
    cert_fields = {k: changes.pop(k) for k in ("key", "signature_algorithm", "not_before", "issuer") if k in changes}
    return facts_of(
        base.model_copy(
            update={
                "target": base.target.model_copy(update={"server": server}),
                "certificate": base.certificate.model_copy(update=cert_fields),
                "tls": TlsSummary(versions=["TLSv1.2", "TLSv1.3"]),
                "chain": GOOD_CHAIN,
                **changes,
            }
        )
    )


def found(*codes: str) -> list[Finding]:
    """Findings with these codes."""
    return [Finding(code=code, severity="warning", message=code) for code in codes]


def rules(facts: TargetFacts, policy: CompliancePolicy = POLICY) -> dict[str, list[str]]:
    """The rules `facts`' certificate breaks, each with its finding codes."""
    assert facts.leaf is not None
    return {v.rule: v.codes for v in check(facts, facts.leaf, policy)}


def test_a_certificate_meeting_every_rule_is_compliant() -> None:
    """The factory's certificate meets the default policy."""
    assert rules(cert("ok.example")) == {}


def test_weak_or_disallowed_keys_break_the_key_rule_with_the_evaluators_code() -> None:
    """RSA under the minimum, EC under the minimum and a type the policy leaves out each break the key rule."""
    assert rules(cert("a", key=KeyInfo(type="RSA", bits=1024), findings=found("key.weak"))) == {"key": ["key.weak"]}
    assert rules(cert("b", key=KeyInfo(type="EC", bits=224, curve="secp224r1"))) == {"key": []}
    assert rules(cert("c", key=KeyInfo(type="Ed448", bits=456))) == {"key": []}
    assert rules(cert("d", key=KeyInfo(type="RSA", bits=2048))) == {}


def test_a_policy_stricter_than_the_evaluator_is_broken_without_a_finding() -> None:
    """RSA 2048 passes the default policy and breaks one asking for 3072, with no code behind it."""
    strict = CompliancePolicy(min_rsa_bits=3072)
    assert rules(cert("a", key=KeyInfo(type="RSA", bits=2048)), strict) == {"key": []}


def test_signature_hashes_outside_the_policy_break_the_signature_rule() -> None:
    """SHA-1 breaks it (with `signature.weak_hash`), SHA-384 passes, and EdDSA names no hash and passes."""
    sha1 = cert("a", signature_algorithm="sha1WithRSAEncryption", findings=found("signature.weak_hash"))
    assert rules(sha1) == {"signature_hash": ["signature.weak_hash"]}
    assert rules(cert("b", signature_algorithm="ecdsa-with-SHA384")) == {}
    assert rules(cert("c", signature_algorithm="ed25519", key=KeyInfo(type="Ed25519", bits=256))) == {}


def test_signature_hash_reads_the_hash_from_the_algorithms_name() -> None:
    """Names in either case give the lower-case hash; names without one give None."""
    assert signature_hash("sha256WithRSAEncryption") == "sha256"
    assert signature_hash("ecdsa-with-SHA512") == "sha512"
    assert signature_hash("md5WithRSAEncryption") == "md5"
    assert signature_hash("rsassaPss") is None


def test_protocols_older_than_the_minimum_break_the_protocol_rule() -> None:
    """TLS 1.0 offered beside TLS 1.2 breaks a TLS 1.2 minimum; lowering the minimum to TLS 1.0 accepts it."""
    old = cert("a", tls=TlsSummary(versions=["TLSv1.0", "TLSv1.2"]), findings=found("tls.tls10", "tls.no_tls13"))
    assert rules(old) == {"protocol": ["tls.tls10"]}
    assert rules(old, CompliancePolicy(min_protocol="TLSv1.0")) == {}


def test_a_grade_below_the_floor_breaks_the_grade_rule_with_its_reasons() -> None:
    """Grade C under floor B is a violation whose detail carries the caps' reasons; B itself is at the floor."""
    base = evaluation("a", days=60, grade="C")
    assert base.security is not None
    capped = base.security.model_copy(update={"caps": [SecurityCap(grade="C", reason="3DES offered with TLS 1.1+")]})
    facts = cert("a", security=capped, findings=found("cipher.weak", "expiry.within_90_days"))
    assert facts.leaf is not None
    [violation] = check(facts, facts.leaf, POLICY)
    assert (violation.rule, violation.codes) == ("grade", ["cipher.weak"])
    assert "3DES offered" in violation.detail
    at_floor = base.security.model_copy(update={"grade": "B"})
    assert rules(cert("b", security=at_floor)) == {}


def test_a_lifetime_over_the_maximum_breaks_the_lifetime_rule() -> None:
    """A certificate valid for 500 days breaks the 398-day maximum; one of 398 days does not."""
    not_after = NOW + timedelta(days=60)
    long_lived = cert("a", not_before=not_after - timedelta(days=500), findings=found("lifetime.too_long"))
    assert rules(long_lived) == {"lifetime": ["lifetime.too_long"]}
    assert rules(cert("b", not_before=not_after - timedelta(days=398))) == {}


def test_chain_problems_break_the_chain_rule_unless_the_policy_ignores_them() -> None:
    """An incomplete chain is a violation with its code; `chain_problems: false` turns the rule off."""
    broken = cert("a", chain=ChainInfo(complete=False, trusted=True, ordered=True), findings=found("chain.incomplete"))
    assert rules(broken) == {"chain": ["chain.incomplete"]}
    assert rules(broken, CompliancePolicy(chain_problems=False)) == {}


def test_the_report_gives_shares_per_owner_and_server_least_compliant_first() -> None:
    """Shares are per owner and per server; a target without an owner is grouped under (none)."""
    estate = [
        cert("a", owner="shop", server="web-01"),
        cert("b", owner="shop", server="web-02", tls=TlsSummary(versions=["TLSv1.1", "TLSv1.2"])),
        cert("c", owner=None, server="web-02"),
    ]
    report = build_compliance_report(estate, policy=POLICY, previous=None, start=START, end=END, now=END)
    assert [(s.name, s.checked, s.compliant, s.share) for s in report.by_owner] == [
        ("shop", 2, 1, 0.5),
        ("(none)", 1, 1, 1.0),
    ]
    assert [(s.name, s.share) for s in report.by_server] == [("web-02", 0.5), ("web-01", 1.0)]
    assert [(v.target, [r.rule for r in v.violations]) for v in report.violations] == [("b:443", ["protocol"])]
    assert (report.summary.checked, report.summary.compliant, report.summary.by_rule["protocol"]) == (3, 2, 1)


def test_unreachable_targets_are_counted_but_not_judged() -> None:
    """A target whose latest evaluation has no certificate is not checked and does not lower the share."""
    down = facts_of(evaluation("down", days=None, level="warning"))
    summary = compliance_summary([cert("a"), down], POLICY, as_of=END)
    assert (summary.checked, summary.compliant, summary.share, summary.not_observed) == (1, 1, 1.0, 1)


def test_distributions_count_distinct_certificates() -> None:
    """Issuers, key kinds and lifetimes count each certificate once, however many targets serve it; lifetime
    buckets come shortest first."""
    not_after = NOW + timedelta(days=60)
    shared_cert = cert("same")
    estate = [
        shared_cert,
        shared_cert,
        cert(
            "rsa", key=KeyInfo(type="RSA", bits=4096), issuer="CN=Other CA", not_before=not_after - timedelta(days=80)
        ),
    ]
    report = build_compliance_report(estate, policy=POLICY, previous=None, start=START, end=END, now=END)
    assert [(d.label, d.count) for d in report.issuers] == [("CN=Other CA", 1), ("CN=certmon Test CA", 1)]
    assert [(d.label, d.count) for d in report.key_kinds] == [("EC 256 (secp256r1)", 1), ("RSA 4096", 1)]
    assert [(d.label, d.count) for d in report.lifetimes] == [("up to 90 days", 1), ("201 to 398 days", 1)]


def test_month_over_month_compares_shares() -> None:
    """The change is this month's share minus the previous month's, in fractions of one."""
    previous = compliance_summary(
        [cert("a"), cert("b", chain=ChainInfo(complete=False, trusted=False))], POLICY, as_of=START
    )
    report = build_compliance_report(
        [cert("a"), cert("b")], policy=POLICY, previous=previous, start=START, end=END, now=END
    )
    assert previous.share == 0.5
    assert report.share_change == 0.5
    assert report.previous == previous


def test_an_estate_with_no_certificate_is_an_empty_report() -> None:
    """No certificate checked: the report says it is empty, with no share and no change."""
    report = build_compliance_report([], policy=POLICY, previous=None, start=START, end=END, now=END)
    assert report.empty is True
    assert (report.summary.share, report.share_change, report.violations) == (None, None, [])
