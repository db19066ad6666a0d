"""A new leaf under an issuer already verified with the same intermediates is checked against that issuer alone,
and the path above it is reused, exactly when the whole-path verifier would build that same path: every answer
here is compared with the verifier asked afresh along the whole path."""

import datetime as dt

import pytest
from cryptography import x509
from cryptography.x509.verification import Store

from services.evaluator.domain import EvaluatorCaches, TrustStore, verifier
from tests.support.pki import NOW, Issued, make_ca, make_leaf
from tests.unit.evaluator.evaluator_support import CountingVerifier, parsed_cert, store

SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def stores_asked(counted: CountingVerifier) -> list[Store]:
    """The stores the real verifier was asked against."""
    return counted.stores


Outcome = tuple[list[int] | None, str | None]


def _outcome(answer: verifier.Answer) -> Outcome:
    """The path by the identity of its certificates (the chain walk reads it so), and the reason."""
    path, error = answer
    return (None if path is None else [id(cert) for cert in path]), error


def _judged(
    leaf: Issued,
    chain: list[x509.Certificate],
    trust: TrustStore,
    caches: EvaluatorCaches,
    now: dt.datetime = NOW,
) -> Outcome:
    """`verify_path`'s answer, checked against the verifier asked directly along the whole path."""
    parsed = parsed_cert(leaf, caches)
    answer = verifier.verify_path(parsed, chain, now=now, trust=trust, chain_bytes=4096, caches=caches)
    assert trust.store is not None
    fresh = verifier.ask(parsed, chain, verifier._clamp(now, parsed), trust.store)
    assert _outcome(answer) == _outcome(fresh)
    return _outcome(answer)


@pytest.fixture(scope="module")
def upper(root: Issued) -> Issued:
    return make_ca("certmon Upper CA", issuer=root)


@pytest.fixture(scope="module")
def issuing(upper: Issued) -> Issued:
    return make_ca("certmon Issuing CA", issuer=upper)


def test_a_new_leaf_costs_one_check_against_its_issuer(
    root: Issued, upper: Issued, issuing: Issued, stores_asked: list[Store], caches: EvaluatorCaches
) -> None:
    """The first leaf is verified along the whole path; the next ones against their issuer alone, with the same
    path above it, and the same answer as the whole-path verifier."""
    trust, chain = store(root), [issuing.cert, upper.cert]
    leaves = [make_leaf(issuing, [f"host-{n}.example"]) for n in range(3)]
    paths = [_judged(leaf, chain, trust, caches)[0] for leaf in leaves]
    assert all(path is not None and len(path) == 4 for path in paths)
    assert stores_asked[0] is trust.store
    assert len(stores_asked) == 3
    assert all(asked is not trust.store for asked in stores_asked[1:])


def test_a_leaf_its_issuer_did_not_sign_gets_the_whole_paths_reason(
    root: Issued, upper: Issued, issuing: Issued, stores_asked: list[Store], caches: EvaluatorCaches
) -> None:
    """A leaf naming the issuer but signed by another key (a rogue CA of the same name) fails against the issuer
    alone, and is then verified along the whole path for the verifier's own reason."""
    trust, chain = store(root), [issuing.cert, upper.cert]
    namesake = make_ca("certmon Issuing CA")
    assert _judged(make_leaf(issuing, ["good.example"]), chain, trust, caches)[0] is not None
    path, error = _judged(make_leaf(namesake, ["forged.example"]), chain, trust, caches)
    assert path is None and error
    assert stores_asked[-1] is trust.store


def test_name_constraints_above_the_issuer_are_applied_to_every_leaf(
    stores_asked: list[Store], caches: EvaluatorCaches
) -> None:
    """A root's name constraints read each leaf's names, so a path under it is never reused for another leaf."""
    constrained = make_ca("certmon Constrained Root", permitted=["permitted.example"])
    issuer = make_ca("certmon Constrained Issuing CA", issuer=constrained)
    trust, chain = store(constrained), [issuer.cert]
    assert _judged(make_leaf(issuer, ["www.permitted.example"]), chain, trust, caches)[0] is not None
    path, error = _judged(make_leaf(issuer, ["www.elsewhere.example"]), chain, trust, caches)
    assert path is None and error and "name constraint" in error


def test_an_anchor_of_the_issuers_name_may_end_another_leafs_path_sooner(root: Issued, caches: EvaluatorCaches) -> None:
    """The verifier tries anchors of the issuer's name first. Here one (the issuer's key, self-signed, constrained
    to a subtree) refuses the first leaf, which goes up through the presented issuer; it accepts the second
    leaf, whose path ends at it: the first path must not be reused."""
    issuer = make_ca("certmon Twin CA", issuer=root)
    twin = make_ca("certmon Twin CA", key=issuer.key, permitted=["permitted.example"])
    trust, chain = store(root, twin), [issuer.cert]
    first = _judged(make_leaf(issuer, ["www.elsewhere.example"]), chain, trust, caches)[0]
    second = _judged(make_leaf(issuer, ["www.permitted.example"]), chain, trust, caches)[0]
    assert first is not None and len(first) == 3
    assert second is not None and second[1:] == [id(twin.cert)]


def test_a_leaf_that_is_itself_an_anchor_ends_its_path(
    root: Issued, upper: Issued, issuing: Issued, caches: EvaluatorCaches
) -> None:
    """A store may hold a server's own certificate (pinned); the verifier's path is then that certificate."""
    pinned = make_leaf(issuing, ["pinned.example"])
    trust, chain = store(root, pinned), [issuing.cert, upper.cert]
    assert _judged(make_leaf(issuing, ["first.example"]), chain, trust, caches)[0] is not None
    path = _judged(pinned, chain, trust, caches)[0]
    assert path is not None and len(path) == 1


def test_a_certificate_above_the_issuer_expiring_ends_the_reuse(root: Issued, caches: EvaluatorCaches) -> None:
    """The path above the issuer holds while no certificate given or in the store changes validity."""
    expires = NOW + dt.timedelta(days=10)
    upper = make_ca("certmon Short-lived Upper CA", issuer=root, not_after=expires)
    issuing = make_ca("certmon Long-lived Issuing CA", issuer=upper)
    trust, chain = store(root), [issuing.cert, upper.cert]
    first, second, third = (
        make_leaf(issuing, [f"{n}.example"], not_after=NOW + dt.timedelta(days=60)) for n in ("one", "two", "three")
    )
    assert _judged(first, chain, trust, caches)[0] is not None
    assert _judged(second, chain, trust, caches, expires)[0] is not None
    path, error = _judged(third, chain, trust, caches, expires + SECOND)
    assert path is None and error


def test_every_kind_of_leaf_gets_the_whole_paths_answer(
    root: Issued, upper: Issued, issuing: Issued, caches: EvaluatorCaches
) -> None:
    """Leaves the verifier accepts and refuses for their own reasons (dates, no SAN, a CA in the leaf's place, a
    foreign key), in turn under one issuer and at several times: each answer is the whole-path verifier's."""
    trust, chain = store(root), [issuing.cert, upper.cert]
    leaves = [
        make_leaf(issuing, ["fine.example"]),
        make_leaf(issuing, ["expired.example"], not_after=NOW - dt.timedelta(days=1)),
        make_leaf(issuing, ["early.example"], not_before=NOW + dt.timedelta(days=1)),
        make_leaf(issuing, ["nosan.example"], san=False),
        make_leaf(issuing, ["ca.example"], ca=True),
        make_leaf(make_ca("certmon Issuing CA"), ["namesake.example"]),
        make_leaf(issuing, ["127.0.0.1"]),
    ]
    outcomes = [
        _judged(leaf, chain, trust, caches, now)[0] is not None
        for now in (NOW, NOW + dt.timedelta(days=2), NOW - dt.timedelta(days=2))
        for leaf in leaves
    ]
    assert any(outcomes) and not all(outcomes)
