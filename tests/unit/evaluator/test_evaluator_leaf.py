"""The leaf's own faults through `evaluate`: expiry, key, EKU, basic constraints, hostname, hashes, parsing."""

import datetime as dt
import hashlib
import random

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from services.evaluator.domain import TrustStore
from shared.config import Policy
from shared.events import ObservationError
from tests.support.pki import NOW, Issued, make_leaf, rsa_key
from tests.unit.evaluator.evaluator_support import codes, judge, observation, resign_weak, severity


def test_expired_leaf_is_critical_and_graded_f(intermediate: Issued, trust: TrustStore) -> None:
    """An expired leaf: level critical, expiry.expired, grade F while grade_ignoring_trust keeps the letter."""
    expired = make_leaf(intermediate, not_before=NOW - dt.timedelta(days=100), not_after=NOW - dt.timedelta(days=2))
    evaluation = judge(observation(expired, intermediate), trust)
    assert evaluation.alarm.level == "critical"
    assert "expiry" in evaluation.alarm.triggers
    assert "expiry.expired" in codes(evaluation)
    assert evaluation.expiry is not None
    assert (evaluation.expiry.status, evaluation.expiry.renewal_window) == ("expired", "expired")
    assert evaluation.expiry.days_remaining == -2.0
    assert evaluation.security is not None
    assert evaluation.security.grade == "F"
    assert evaluation.security.grade_ignoring_trust == "A"
    assert any(c.grade == "F" and "expired" in c.reason for c in evaluation.security.caps)
    assert evaluation.chain.trusted is True  # the path is fine; only the leaf's dates are not


def test_rsa_1024_leaf_is_weak_key(intermediate: Issued, trust: TrustStore) -> None:
    """An RSA-1024 leaf (which the path verifier accepts) is key.weak, critical, and caps the grade at B."""
    evaluation = judge(observation(make_leaf(intermediate, key=rsa_key(1024)), intermediate), trust)
    assert "key.weak" in codes(evaluation)
    assert severity(evaluation, "key.weak") == "critical"
    assert evaluation.certificate is not None
    assert (evaluation.certificate.key.type, evaluation.certificate.key.bits) == ("RSA", 1024)
    assert evaluation.security is not None and evaluation.security.grade == "B"
    assert evaluation.alarm.triggers == ["security"]


def test_the_leaf_key_fingerprint_names_the_key_not_the_certificate(intermediate: Issued, trust: TrustStore) -> None:
    """`certificate.spki_sha256` is the SHA-256 of the leaf's SubjectPublicKeyInfo: two certificates on one key
    share it, another key has another."""
    key = rsa_key(2048)
    first, second = make_leaf(intermediate, key=key), make_leaf(intermediate, ("other.example",), key=key)
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    fingerprints = [judge(observation(leaf, intermediate), trust).certificate for leaf in (first, second)]
    assert [c and c.spki_sha256 for c in fingerprints] == [hashlib.sha256(spki).hexdigest()] * 2
    other = judge(observation(make_leaf(intermediate), intermediate), trust).certificate
    assert other is not None and other.spki_sha256 not in (None, fingerprints[0] and fingerprints[0].spki_sha256)


def test_leaf_without_server_auth_eku(intermediate: Issued, trust: TrustStore) -> None:
    """A leaf whose EKU lists only clientAuth is eku.no_server_auth, citing zlint, and graded F."""
    leaf = make_leaf(intermediate, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    evaluation = judge(observation(leaf, intermediate), trust)
    assert severity(evaluation, "eku.no_server_auth") == "critical"
    message = next(f.message for f in evaluation.findings if f.code == "eku.no_server_auth")
    assert "e_sub_cert_eku_server_auth_client_auth_missing" in message
    assert evaluation.security is not None and evaluation.security.grade == "F"


def test_ca_true_leaf_is_ca_leaf(intermediate: Issued, trust: TrustStore) -> None:
    """A leaf with basicConstraints CA:TRUE is basic_constraints.ca_leaf (critical, zlint e_sub_cert_not_is_ca)."""
    evaluation = judge(observation(make_leaf(intermediate, ca=True), intermediate), trust)
    assert severity(evaluation, "basic_constraints.ca_leaf") == "critical"
    assert "e_sub_cert_not_is_ca" in next(
        f.message for f in evaluation.findings if f.code == "basic_constraints.ca_leaf"
    )


def test_hostname_mismatch_is_critical(leaf: Issued, intermediate: Issued, trust: TrustStore) -> None:
    """The target asks for a name the leaf does not carry: hostname.mismatch, critical, grade F, still trusted."""
    evaluation = judge(observation(leaf, intermediate, host="shop.example"), trust)
    assert severity(evaluation, "hostname.mismatch") == "critical"
    assert evaluation.alarm.level == "critical"
    assert evaluation.alarm.triggers == ["validity"]
    assert evaluation.chain.trusted is True
    assert evaluation.security is not None and evaluation.security.grade == "F"


def test_sha1_signed_leaf_is_weak_hash(rsa_intermediate: Issued, trust: TrustStore) -> None:
    """A leaf signed with SHA-1 is signature.weak_hash (zlint e_sub_cert_or_sub_ca_using_sha1) and grade F."""
    assert isinstance(rsa_intermediate.key, rsa.RSAPrivateKey)
    der = resign_weak(make_leaf(rsa_intermediate), rsa_intermediate.key, "sha1")
    evaluation = judge(observation(der, rsa_intermediate), trust)
    assert severity(evaluation, "signature.weak_hash") == "critical"
    assert "e_sub_cert_or_sub_ca_using_sha1" in next(
        f.message for f in evaluation.findings if f.code == "signature.weak_hash"
    )
    assert "signature.invalid" not in codes(evaluation)  # the SHA-1 signature itself verifies
    assert evaluation.certificate is not None
    assert evaluation.certificate.signature_algorithm == "sha1WithRSAEncryption"
    assert evaluation.security is not None and evaluation.security.grade == "F"


def test_md5_signed_leaf_caps_the_grade_at_f_even_ignoring_trust(rsa_intermediate: Issued, trust: TrustStore) -> None:
    """MD5 is a cap of F on its own, so grade_ignoring_trust is F too."""
    assert isinstance(rsa_intermediate.key, rsa.RSAPrivateKey)
    der = resign_weak(make_leaf(rsa_intermediate), rsa_intermediate.key, "md5")
    evaluation = judge(observation(der, rsa_intermediate), trust)
    assert "signature.weak_hash" in codes(evaluation)
    assert evaluation.security is not None
    assert (evaluation.security.grade, evaluation.security.grade_ignoring_trust) == ("F", "F")


def test_garbage_der_is_malformed_not_a_crash(trust: TrustStore) -> None:
    """Bytes that are not a certificate become certificate.malformed (critical); nothing raises."""
    evaluation = judge(observation(b"\x30\x82\x01\x00garbage"), trust)
    assert codes(evaluation) >= {"certificate.malformed"}
    assert severity(evaluation, "certificate.malformed") == "critical"
    assert evaluation.certificate is None
    assert evaluation.security is None
    assert evaluation.alarm.level == "critical"


def test_malformed_intermediate_leaves_the_leaf_judged(leaf: Issued, trust: TrustStore) -> None:
    """A broken second certificate is reported by position while the leaf is still evaluated."""
    evaluation = judge(observation(leaf, b"not a certificate"), trust)
    assert "certificate #1" in next(f.message for f in evaluation.findings if f.code == "certificate.malformed")
    assert evaluation.certificate is not None
    assert "chain.incomplete" in codes(evaluation)


def test_observation_with_an_error_is_unreachable_warning(trust: TrustStore) -> None:
    """A failed connection: endpoint.unreachable, reachable False, level warning, trigger reachability."""
    error = ObservationError(kind="refused", message="connection refused", phase="connect")
    evaluation = judge(observation(error=error), trust)
    assert codes(evaluation) == {"endpoint.unreachable"}
    assert evaluation.reachable is False
    assert evaluation.error == error
    assert evaluation.alarm.level == "warning"
    assert evaluation.alarm.triggers == ["reachability"]
    assert evaluation.certificate is None


def test_policy_turns_a_code_off(leaf: Issued, intermediate: Issued, trust: TrustStore) -> None:
    """`hostname.mismatch: off` drops the finding, so the level follows the remaining findings."""
    evaluation = judge(
        observation(leaf, intermediate, host="10.0.0.5"), trust, policy=Policy(severities={"hostname.mismatch": "off"})
    )
    assert "hostname.mismatch" not in codes(evaluation)
    assert evaluation.alarm.level == "ok"


def test_policy_changes_a_severity(leaf: Issued, trust: TrustStore) -> None:
    """`chain.incomplete: warning` lowers that finding and the level with it."""
    evaluation = judge(observation(leaf), trust, policy=Policy(severities={"chain.incomplete": "warning"}))
    assert severity(evaluation, "chain.incomplete") == "warning"
    assert evaluation.alarm.level == "warning"


def test_policy_warning_days_45(intermediate: Issued, trust: TrustStore) -> None:
    """With warning_days 45 a leaf 40 days from expiry is a warning; with the defaults it is info."""
    leaf = make_leaf(intermediate, not_after=NOW + dt.timedelta(days=40))
    assert judge(observation(leaf, intermediate), trust).alarm.level == "info"
    evaluation = judge(observation(leaf, intermediate), trust, policy=Policy(warning_days=45))
    assert evaluation.alarm.level == "warning"
    assert severity(evaluation, "expiry.within_30_days") == "warning"
    assert evaluation.expiry is not None and evaluation.expiry.status == "expiring_soon"


def test_critical_certificate_policy_marks_the_evaluation(
    leaf: Issued, intermediate: Issued, trust: TrustStore
) -> None:
    """A certificate rule with `critical: true` is carried into the evaluation; the owner is left to the alarmer."""
    evaluation = judge(observation(leaf, intermediate), trust, policy=Policy(critical_certificate=True))
    assert evaluation.critical is True
    assert evaluation.owner is None


def test_long_lifetime_is_a_notice(intermediate: Issued, trust: TrustStore) -> None:
    """A 500-day leaf is lifetime.too_long (notice, zlint e_tls_server_cert_valid_time_longer_than_398_days)."""
    leaf = make_leaf(intermediate, not_before=NOW - dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=499))
    evaluation = judge(observation(leaf, intermediate), trust)
    assert severity(evaluation, "lifetime.too_long") == "notice"
    assert evaluation.alarm.level == "ok"


def test_naive_now_is_refused(leaf: Issued, trust: TrustStore) -> None:
    """The domain owns no clock and guesses no time zone: a naive `now` is a programming error."""
    with pytest.raises(ValueError, match="timezone-aware"):
        judge(observation(leaf), trust, now=NOW.replace(tzinfo=None))


def test_mutated_certificates_never_raise(leaf: Issued, intermediate: Issued, trust: TrustStore) -> None:
    """Random byte damage and truncation of leaf and intermediate yield an evaluation every time, never an error."""
    rng = random.Random(20261127)
    for round_ in range(300):
        der = bytearray(leaf.der)
        for _ in range(rng.randint(1, 8)):
            der[rng.randrange(len(der))] = rng.randrange(256)
        if round_ % 5 == 0:
            der = der[: rng.randrange(len(der))]
        evaluation = judge(observation(bytes(der), intermediate), trust)
        assert evaluation.alarm.level in ("ok", "info", "warning", "critical")
