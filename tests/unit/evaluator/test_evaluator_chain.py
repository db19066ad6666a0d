"""Chain validation: trust, completeness, order, extras, roots, broken links and cross-signing."""

import datetime as dt

from services.evaluator.domain import TrustStore
from services.evaluator.domain.parse import fingerprint_of
from shared.config import Policy
from tests.support.pki import NOW, Issued, make_ca, make_leaf, rsa_key
from tests.unit.evaluator.evaluator_support import (
    codes,
    corrupt_signature,
    judge,
    observation,
    severity,
    store,
)


def test_healthy_chain_is_ok_trusted_complete_and_ordered(
    leaf: Issued, intermediate: Issued, root: Issued, trust: TrustStore
) -> None:
    """Leaf + intermediate with the root in the store: level ok, and a verified path of three to the root."""
    evaluation = judge(observation(leaf, intermediate), trust)
    chain = evaluation.chain
    assert evaluation.alarm.level == "ok"
    assert (chain.trusted, chain.complete, chain.ordered, chain.contains_root, chain.cross_signed) == (
        True,
        True,
        True,
        False,
        False,
    )
    assert chain.verified_path == [fingerprint_of(c.der) for c in (leaf, intermediate, root)]
    assert [p.fingerprint_sha256 for p in chain.presented] == [
        fingerprint_of(leaf.der),
        fingerprint_of(intermediate.der),
    ]
    assert not {c for c in codes(evaluation) if c.startswith("chain.")}
    sent = chain.presented[1]
    assert (sent.not_before, sent.serial) == (
        intermediate.cert.not_valid_before_utc,
        format(intermediate.cert.serial_number, "x"),
    )
    assert sent.key is not None and sent.key.type in {"RSA", "EC"} and sent.signature_algorithm


def test_missing_intermediate_is_incomplete_not_untrusted_root(leaf: Issued, trust: TrustStore) -> None:
    """Only the leaf is sent and its issuer is unknown: chain.incomplete (critical), never untrusted_root."""
    evaluation = judge(observation(leaf), trust)
    assert "chain.incomplete" in codes(evaluation)
    assert "chain.untrusted_root" not in codes(evaluation)
    assert severity(evaluation, "chain.incomplete") == "critical"
    assert (evaluation.chain.trusted, evaluation.chain.complete) == (False, False)
    assert evaluation.alarm.level == "critical"
    assert evaluation.security is not None
    assert evaluation.security.grade_ignoring_trust == "B"  # incomplete caps at B; not completable, it is untrusted too
    assert evaluation.security.grade == "F"


def test_self_signed_leaf_is_self_signed(trust: TrustStore) -> None:
    """A self-signed leaf not in the store is chain.self_signed, not incomplete or untrusted_root."""
    evaluation = judge(observation(make_leaf(None)), trust)
    chain_codes = {c for c in codes(evaluation) if c.startswith("chain.")}
    assert chain_codes == {"chain.self_signed"}
    assert evaluation.chain.trusted is False
    assert evaluation.chain.complete is True
    assert evaluation.chain.contains_root is False


def test_self_signed_leaf_in_the_store_is_trusted() -> None:
    """A self-signed leaf the user put in the trust store (an internal service) is trusted."""
    own = make_leaf(None)
    evaluation = judge(observation(own), TrustStore(anchors=(own.cert,)))
    assert evaluation.chain.trusted is True
    assert "chain.self_signed" not in codes(evaluation)


def test_chain_to_a_rogue_root_sent_by_the_server_is_untrusted_root(rogue_root: Issued, trust: TrustStore) -> None:
    """Leaf → intermediate → an unknown root the server sends: untrusted_root and contains_root."""
    rogue_intermediate = make_ca("Rogue Intermediate", issuer=rogue_root)
    leaf = make_leaf(rogue_intermediate)
    evaluation = judge(observation(leaf, rogue_intermediate, rogue_root), trust)
    assert {"chain.untrusted_root", "chain.contains_root"} <= codes(evaluation)
    assert "chain.incomplete" not in codes(evaluation)
    assert severity(evaluation, "chain.contains_root") == "notice"
    assert evaluation.chain.contains_root is True
    assert evaluation.chain.complete is True
    assert evaluation.chain.trusted is False


def test_trusted_root_sent_by_the_server_is_only_a_notice(
    leaf: Issued, intermediate: Issued, root: Issued, trust: TrustStore
) -> None:
    """Sending the trusted root too is chain.contains_root (notice): the level stays ok."""
    evaluation = judge(observation(leaf, intermediate, root), trust)
    assert "chain.contains_root" in codes(evaluation)
    assert evaluation.chain.trusted is True
    assert evaluation.alarm.level == "ok"


def test_wrong_order_is_reported(leaf: Issued, intermediate: Issued, root: Issued, trust: TrustStore) -> None:
    """Leaf, root, intermediate: trusted, but chain.wrong_order (warning) and ordered is False."""
    evaluation = judge(observation(leaf, root, intermediate), trust)
    assert "chain.wrong_order" in codes(evaluation)
    assert severity(evaluation, "chain.wrong_order") == "warning"
    assert evaluation.chain.ordered is False
    assert evaluation.chain.trusted is True
    assert evaluation.alarm.level == "warning"


def test_duplicate_certificate_is_extra(leaf: Issued, intermediate: Issued, trust: TrustStore) -> None:
    """The intermediate sent twice is chain.extra_certificates, and the chain is still ordered and trusted."""
    evaluation = judge(observation(leaf, intermediate, intermediate), trust)
    assert "chain.extra_certificates" in codes(evaluation)
    assert "sent twice" in next(f.message for f in evaluation.findings if f.code == "chain.extra_certificates")
    assert evaluation.chain.ordered is True
    assert evaluation.chain.trusted is True
    assert len(evaluation.chain.presented) == 3


def test_unrelated_certificate_is_extra(
    leaf: Issued, intermediate: Issued, rogue_root: Issued, trust: TrustStore
) -> None:
    """A certificate that is not on the path is chain.extra_certificates."""
    evaluation = judge(observation(leaf, intermediate, make_ca("Unrelated", issuer=rogue_root)), trust)
    assert "chain.extra_certificates" in codes(evaluation)
    assert "not on the path" in next(f.message for f in evaluation.findings if f.code == "chain.extra_certificates")


def test_corrupted_leaf_signature_is_signature_invalid(leaf: Issued, intermediate: Issued, trust: TrustStore) -> None:
    """One flipped signature byte in the leaf: signature.invalid (critical), untrusted, grade F."""
    evaluation = judge(observation(corrupt_signature(leaf.der), intermediate), trust)
    assert "signature.invalid" in codes(evaluation)
    assert severity(evaluation, "signature.invalid") == "critical"
    assert evaluation.chain.trusted is False
    assert evaluation.security is not None and evaluation.security.grade == "F"
    assert {"chain.incomplete", "chain.untrusted_root"}.isdisjoint(codes(evaluation))


def test_intermediate_expiring_before_the_leaf(root: Issued, trust: TrustStore) -> None:
    """An intermediate that expires before the leaf does is chain.intermediate_expiring (warning)."""
    short = make_ca("Short-lived Intermediate", issuer=root, not_after=NOW + dt.timedelta(days=100))
    evaluation = judge(observation(make_leaf(short, not_after=NOW + dt.timedelta(days=200)), short), trust)
    assert "chain.intermediate_expiring" in codes(evaluation)
    assert severity(evaluation, "chain.intermediate_expiring") == "warning"


def test_cross_signed_path_is_a_notice(root: Issued) -> None:
    """The server sends the new root cross-signed by an old one; the store trusts the new root directly."""
    new_root = make_ca("New Root")
    cross = make_ca("New Root", issuer=root, key=new_root.key)
    intermediate = make_ca("New Intermediate", issuer=new_root)
    leaf = make_leaf(intermediate)
    evaluation = judge(observation(leaf, intermediate, cross), store(new_root))
    assert evaluation.chain.trusted is True
    assert evaluation.chain.cross_signed is True
    assert "chain.cross_signed" in codes(evaluation)
    assert "chain.extra_certificates" not in codes(evaluation)
    assert evaluation.chain.verified_path[-1] == fingerprint_of(new_root.der)


def test_old_root_trusted_through_the_cross_sign_is_not_cross_signed(root: Issued, trust: TrustStore) -> None:
    """When only the old root is trusted, the path runs through the cross-sign to the root the chain names."""
    new_root = make_ca("New Root")
    cross = make_ca("New Root", issuer=root, key=new_root.key)
    intermediate = make_ca("New Intermediate", issuer=new_root)
    evaluation = judge(observation(make_leaf(intermediate), intermediate, cross), trust)
    assert evaluation.chain.trusted is True
    assert evaluation.chain.cross_signed is False
    assert len(evaluation.chain.verified_path) == 4


def test_empty_trust_store_trusts_nothing(leaf: Issued, intermediate: Issued, root: Issued) -> None:
    """With no anchors at all the chain that ends at a sent root is an untrusted root."""
    evaluation = judge(observation(leaf, intermediate, root), TrustStore(anchors=()), policy=Policy())
    assert evaluation.chain.trusted is False
    assert "chain.untrusted_root" in codes(evaluation)


def test_weak_intermediate_key_is_chain_invalid(root: Issued, trust: TrustStore) -> None:
    """A path to the trusted root through an RSA-1024 intermediate does not verify: chain.invalid with the reason."""
    weak = make_ca("Weak Intermediate", issuer=root, key=rsa_key(1024))
    evaluation = judge(observation(make_leaf(weak), weak), trust)
    assert evaluation.chain.trusted is False
    assert evaluation.chain.complete is True
    invalid = next(f for f in evaluation.findings if f.code == "chain.invalid")
    assert invalid.severity == "critical"
    assert "too weak" in invalid.message


def test_expired_intermediate_is_chain_invalid(root: Issued, trust: TrustStore) -> None:
    """An intermediate that has expired breaks the path: chain.invalid, not incomplete or untrusted_root."""
    old = make_ca(
        "Expired Intermediate",
        issuer=root,
        not_before=NOW - dt.timedelta(days=60),
        not_after=NOW - dt.timedelta(days=1),
    )
    leaf = make_leaf(old, not_before=NOW - dt.timedelta(days=30))
    evaluation = judge(observation(leaf, old), trust)
    chain_codes = {c for c in codes(evaluation) if c.startswith("chain.")}
    assert chain_codes == {"chain.invalid", "chain.intermediate_expiring"}
    assert evaluation.chain.trusted is False


def test_leaf_without_san_is_still_judged_for_trust(intermediate: Issued, trust: TrustStore) -> None:
    """A CN-only leaf cannot be given to the server verifier; its path is checked on its own and trusted."""
    evaluation = judge(observation(make_leaf(intermediate, ("localhost",), san=False), intermediate), trust)
    assert evaluation.chain.trusted is True
    assert "hostname.cn_only" in codes(evaluation)
