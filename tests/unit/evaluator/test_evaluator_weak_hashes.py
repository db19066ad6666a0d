"""Certificates signed with MD5 or SHA-1: the verifier refuses them, and that comes out as signature.weak_hash."""

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from services.evaluator.domain import TrustStore
from tests.support.pki import Issued, make_ca, make_leaf, rsa_key
from tests.unit.evaluator.evaluator_support import codes, judge, observation, resign_weak, severity, store


@pytest.fixture(scope="module")
def rsa_root() -> Issued:
    """An RSA root, so an intermediate below it can be re-signed with SHA-1 or MD5."""
    return make_ca("certmon RSA Root", key=rsa_key(2048))


def _rsa(issued: Issued) -> rsa.RSAPrivateKey:
    assert isinstance(issued.key, rsa.RSAPrivateKey)
    return issued.key


def test_md5_leaf_is_weak_hash_and_f_with_no_invalid_signature(rsa_intermediate: Issued, trust: TrustStore) -> None:
    """MD5: weak_hash critical, grade F even ignoring trust; its own signature verifies, so no signature.invalid
    and no generic chain.invalid beside the real reason."""
    der = resign_weak(make_leaf(rsa_intermediate), _rsa(rsa_intermediate), "md5")
    evaluation = judge(observation(der, rsa_intermediate), trust)
    assert severity(evaluation, "signature.weak_hash") == "critical"
    assert {"signature.invalid", "chain.invalid"}.isdisjoint(codes(evaluation))
    assert evaluation.chain.trusted is False
    assert evaluation.security is not None
    assert (evaluation.security.grade, evaluation.security.grade_ignoring_trust) == ("F", "F")


def test_sha1_leaf_is_a_trust_failure_not_a_generic_invalid_chain(rsa_intermediate: Issued, trust: TrustStore) -> None:
    """SHA-1: weak_hash critical and grade F as a trust failure (grade_ignoring_trust keeps the letter); the
    verifier's "forbidden signature algorithm" is not reported again as chain.invalid."""
    der = resign_weak(make_leaf(rsa_intermediate), _rsa(rsa_intermediate), "sha1")
    evaluation = judge(observation(der, rsa_intermediate), trust)
    assert "chain.invalid" not in codes(evaluation)
    assert evaluation.security is not None
    assert evaluation.security.grade == "F"
    assert evaluation.security.grade_ignoring_trust == "A"
    assert any("SHA-1" in cap.reason for cap in evaluation.security.caps if cap.grade == "F")


@pytest.mark.parametrize(("hash_name", "ignoring_trust"), [("sha1", "A"), ("md5", "F")])
def test_weak_hash_on_an_intermediate_is_reported_by_position(
    rsa_root: Issued, hash_name: str, ignoring_trust: str
) -> None:
    """An intermediate re-signed by the root with a weak hash: weak_hash names certificate #1, no chain.invalid."""
    intermediate = make_ca("certmon Weak Intermediate", issuer=rsa_root)
    weak_intermediate = resign_weak(intermediate, _rsa(rsa_root), hash_name)
    leaf = make_leaf(intermediate)
    evaluation = judge(observation(leaf, weak_intermediate), store(rsa_root))
    (message,) = [f.message for f in evaluation.findings if f.code == "signature.weak_hash"]
    assert message.startswith("certificate #1")
    assert {"chain.invalid", "signature.invalid"}.isdisjoint(codes(evaluation))
    assert evaluation.security is not None
    assert (evaluation.security.grade, evaluation.security.grade_ignoring_trust) == ("F", ignoring_trust)


def test_weak_hash_on_a_root_the_server_sends_is_exempt(rsa_intermediate: Issued) -> None:
    """A self-signed root's own signature is never checked by clients: an SHA-1 root sent along is no finding."""
    root = make_ca("certmon SHA-1 Root", key=rsa_key(2048))
    weak_root = resign_weak(root, _rsa(root), "sha1")
    intermediate = make_ca("certmon Under SHA-1 Root", issuer=root)
    evaluation = judge(observation(make_leaf(intermediate), intermediate, weak_root), store(root))
    assert "signature.weak_hash" not in codes(evaluation)
    assert evaluation.chain.trusted is True
