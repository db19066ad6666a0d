"""Bad input from the issue: each is a finding with a clear message, and the evaluator moves on."""

import time

from services.evaluator.domain import TrustStore
from services.evaluator.domain.evaluate import MAX_PRESENTED
from shared.events import Evaluation
from tests.support.pki import Issued, make_ca, make_leaf
from tests.unit.evaluator.crafted_certificates import (
    EC_PUBLIC_KEY_OID,
    ECDSA_SHA256_OID,
    UNKNOWN_KEY_OID,
    UNKNOWN_SIGNATURE_OID,
    build_leaf,
    with_replaced_bytes,
)
from tests.unit.evaluator.evaluator_support import codes, judge, observation, severity


def _messages(code: str, evaluation: Evaluation) -> list[str]:
    return [f.message for f in evaluation.findings if f.code == code]


def test_truncated_leaf_is_malformed(leaf: Issued, intermediate: Issued, trust: TrustStore) -> None:
    """Half a certificate: certificate.malformed naming the leaf; no leaf judgement, no crash."""
    evaluation = judge(observation(leaf.der[: len(leaf.der) // 2], intermediate), trust)
    (message,) = _messages("certificate.malformed", evaluation)
    assert message.startswith("the leaf is not a valid X.509 certificate")
    assert evaluation.certificate is None and evaluation.alarm.level == "critical"


def test_truncated_intermediate_leaves_the_leaf_judged(leaf: Issued, intermediate: Issued, trust: TrustStore) -> None:
    """A truncated second certificate is malformed by position; the leaf is still judged (incomplete)."""
    evaluation = judge(observation(leaf, intermediate.der[:-10]), trust)
    (message,) = _messages("certificate.malformed", evaluation)
    assert message.startswith("certificate #1")
    assert evaluation.certificate is not None
    assert "chain.incomplete" in codes(evaluation)


def test_nonsense_bytes_are_malformed(trust: TrustStore) -> None:
    """Bytes that are no DER at all: certificate.malformed, critical."""
    evaluation = judge(observation(b"this is not a certificate"), trust)
    assert severity(evaluation, "certificate.malformed") == "critical"


def test_oversized_certificate_is_refused_unparsed(intermediate: Issued, trust: TrustStore) -> None:
    """A valid certificate over 64 KiB is refused with a message giving the limit; the rest is still judged."""
    huge = build_leaf(intermediate, padding_bytes=70 * 1024)
    assert len(huge.der) > 64 * 1024
    evaluation = judge(observation(huge, intermediate), trust)
    (message,) = _messages("certificate.malformed", evaluation)
    assert "64 KiB" in message and message.startswith("the leaf")
    assert evaluation.certificate is None
    normal = build_leaf(intermediate)
    after = judge(observation(normal, huge, intermediate), trust)
    (second,) = _messages("certificate.malformed", after)
    assert second.startswith("certificate #1") and "64 KiB" in second
    assert after.chain.trusted is True
    assert [p.subject for p in after.chain.presented] == [
        normal.cert.subject.rfc4514_string(),
        intermediate.cert.subject.rfc4514_string(),
    ]


def test_chain_of_fifty_certificates_is_capped(leaf: Issued, intermediate: Issued, trust: TrustStore) -> None:
    """Fifty certificates: chain.too_long (warning) saying how many were sent, only the first ten evaluated."""
    filler = [make_ca(f"certmon Filler {i}") for i in range(3)]
    chain = [leaf, intermediate, *(filler * 16)]
    assert len(chain) == 50
    started = time.perf_counter()
    evaluation = judge(observation(*chain), trust)
    assert time.perf_counter() - started < 1.0
    assert severity(evaluation, "chain.too_long") == "warning"
    (message,) = _messages("chain.too_long", evaluation)
    assert "50 certificates" in message and f"first {MAX_PRESENTED}" in message
    assert len(evaluation.chain.presented) == MAX_PRESENTED
    assert evaluation.chain.trusted is True


def test_unknown_key_algorithm_is_key_unsupported(intermediate: Issued, trust: TrustStore) -> None:
    """A leaf whose key has an algorithm nobody defines: key.unsupported naming the OID; the chain still verifies
    as far as it can and nothing raises."""
    der = with_replaced_bytes(build_leaf(intermediate), EC_PUBLIC_KEY_OID, UNKNOWN_KEY_OID, intermediate.key)
    evaluation = judge(observation(der, intermediate), trust)
    (message,) = _messages("key.unsupported", evaluation)
    assert "1.2.840.10045.2.9" in message
    assert evaluation.certificate is not None and evaluation.certificate.key.type == "unknown"
    assert "signature.invalid" not in codes(evaluation)


def test_unknown_signature_algorithm_is_signature_unsupported(intermediate: Issued, trust: TrustStore) -> None:
    """A leaf signed with an undefined algorithm: signature.unsupported (critical, a trust failure) naming the
    OID, and not a generic chain.invalid."""
    der = with_replaced_bytes(build_leaf(intermediate), ECDSA_SHA256_OID, UNKNOWN_SIGNATURE_OID, intermediate.key)
    evaluation = judge(observation(der, intermediate), trust)
    assert severity(evaluation, "signature.unsupported") == "critical"
    (message,) = _messages("signature.unsupported", evaluation)
    assert "1.2.840.10045.4.3.9" in message
    assert "chain.invalid" not in codes(evaluation)
    assert evaluation.certificate is not None
    assert evaluation.certificate.signature_algorithm == "1.2.840.10045.4.3.9"
    assert evaluation.security is not None and evaluation.security.grade == "F"


def test_self_signed_leaf_with_bad_key_is_no_crash(trust: TrustStore) -> None:
    """A self-signed leaf whose key algorithm is unknown: findings, no exception."""
    own = make_leaf(None)
    der = with_replaced_bytes(own, EC_PUBLIC_KEY_OID, UNKNOWN_KEY_OID, own.key)
    evaluation = judge(observation(der), trust)
    assert {"key.unsupported", "chain.self_signed"} <= codes(evaluation)
