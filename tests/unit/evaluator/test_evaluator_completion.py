"""Chain completion: intermediates the server did not send, found in the known-intermediates cache or elsewhere."""

from services.evaluator.domain import EvaluatorCaches, TrustStore, evaluate
from services.evaluator.domain.completion import CandidateIntermediate, first_gap
from services.evaluator.domain.parse import fingerprint_of
from services.evaluator.service_layer.intermediate_finder import CACHE_SOURCE, IntermediateFinder
from shared.config import Policy
from shared.events import Evaluation
from tests.support.pki import NOW, Issued, ec_key, make_ca, make_leaf
from tests.unit.evaluator.crafted_certificates import build_ca, build_leaf
from tests.unit.evaluator.evaluator_support import b64, codes, observation, severity


def _judge(obs_chain: tuple[Issued, ...], trust: TrustStore, extra: list[CandidateIntermediate]) -> Evaluation:
    return evaluate(
        observation(*obs_chain),
        now=NOW,
        policy=Policy(),
        trust=trust,
        caches=EvaluatorCaches(),
        extra_intermediates=extra,
    )


def test_missing_intermediate_found_elsewhere_completes_the_chain_but_stays_incomplete(
    leaf: Issued, intermediate: Issued, root: Issued, trust: TrustStore
) -> None:
    """The leaf alone plus a cached intermediate: trusted through it, yet chain.incomplete (critical) naming
    where it was found and which clients fail, complete False, completed_from cache, and the grade capped at B
    rather than failed."""
    evaluation = _judge((leaf,), trust, [CandidateIntermediate(intermediate.cert, "the test's pocket", "cache")])
    assert evaluation.chain.trusted is True
    assert evaluation.chain.complete is False
    assert evaluation.chain.completed_from == "cache"
    assert evaluation.chain.verified_path == [fingerprint_of(c.der) for c in (leaf, intermediate, root)]
    assert severity(evaluation, "chain.incomplete") == "critical"
    (message,) = [f.message for f in evaluation.findings if f.code == "chain.incomplete"]
    assert "found in the test's pocket" in message and "certmon Test Intermediate" in message
    assert "OpenSSL-based clients (curl, wget, Python), Java and many mobile apps reject it" in message
    assert evaluation.security is not None
    assert (evaluation.security.grade, evaluation.security.grade_ignoring_trust) == ("B", "B")


def test_an_intermediate_fetched_by_aia_makes_the_completion_aia(root: Issued, trust: TrustStore) -> None:
    """Two intermediates missing, the upper one cached and the lower one fetched: completed_from is aia (certmon
    would not have completed it without the fetch); both cached, it is cache."""
    upper = make_ca("completion Upper", issuer=root)
    lower = make_ca("completion Lower", issuer=upper)
    leaf = make_leaf(lower)
    cached_upper = CandidateIntermediate(upper.cert, "the cache", "cache")
    fetched = _judge((leaf,), trust, [CandidateIntermediate(lower.cert, "an AIA URL", "aia"), cached_upper])
    assert (fetched.chain.trusted, fetched.chain.complete, fetched.chain.completed_from) == (True, False, "aia")
    assert len(fetched.chain.verified_path) == 4
    cached = _judge((leaf,), trust, [CandidateIntermediate(lower.cert, "the cache", "cache"), cached_upper])
    assert (cached.chain.trusted, cached.chain.completed_from) == (True, "cache")


def test_candidate_with_the_right_name_but_another_key_is_not_used(
    leaf: Issued, root: Issued, trust: TrustStore
) -> None:
    """An impostor intermediate (same subject, different key) does not verify the leaf: still incomplete, and
    not completable, so the chain is untrusted and the grade F."""
    impostor = make_ca("certmon Test Intermediate", issuer=root)
    evaluation = _judge((leaf,), trust, [CandidateIntermediate(impostor.cert, "nowhere good", "aia")])
    assert (evaluation.chain.trusted, evaluation.chain.completed_from) == (False, None)
    assert "chain.incomplete" in codes(evaluation)
    assert "nowhere good" not in " ".join(f.message for f in evaluation.findings)
    assert evaluation.security is not None and evaluation.security.grade == "F"


def test_extra_intermediates_do_not_change_a_complete_chain(
    leaf: Issued, intermediate: Issued, trust: TrustStore
) -> None:
    """A chain the server sends whole is complete whatever candidates are offered."""
    evaluation = _judge((leaf, intermediate), trust, [CandidateIntermediate(intermediate.cert, "spare", "cache")])
    assert (evaluation.chain.complete, evaluation.chain.trusted, evaluation.chain.completed_from) == (True, True, None)
    assert "chain.incomplete" not in codes(evaluation)


def test_finder_learns_intermediates_from_every_chain_it_sees(intermediate: Issued, trust: TrustStore) -> None:
    """A chain that sends the intermediate teaches the cache; a later leaf-only chain is completed from it."""
    finder = IntermediateFinder()
    other = make_leaf(intermediate, ("other.localhost",))
    assert finder.candidates([b64(other), b64(intermediate)], trust) == ()
    alone = make_leaf(intermediate)
    (found,) = finder.candidates([b64(alone)], trust)
    assert (found.cert, found.source, found.origin) == (intermediate.cert, CACHE_SOURCE, "cache")
    assert len(finder.known) == 1


def test_finder_without_a_fetcher_finds_nothing_for_an_unknown_issuer(leaf: Issued, trust: TrustStore) -> None:
    """No cache entry and no AIA fetcher: no candidates, no error."""
    assert IntermediateFinder().candidates([b64(leaf)], trust) == ()


def test_finder_ignores_certificates_that_do_not_parse(trust: TrustStore) -> None:
    """Garbage in the chain is no candidate and no crash."""
    assert IntermediateFinder().candidates(["not base64!", b64(b"\x30\x03\x02\x01")], trust) == ()


def test_issuer_name_loop_terminates(trust: TrustStore) -> None:
    """Two CAs that issue each other: gap search, the finder and the evaluation all terminate."""
    key_a, key_b = ec_key(), ec_key()
    ca_a = build_ca("Loop CA A", "Loop CA B", key_b, key_a)
    ca_b = build_ca("Loop CA B", "Loop CA A", key_a, key_b)
    leaf = build_leaf(ca_a)
    assert first_gap(leaf.cert, [ca_a.cert, ca_b.cert], trust) is None
    assert IntermediateFinder().candidates([b64(leaf), b64(ca_a), b64(ca_b)], trust) == ()
    evaluation = _judge((leaf, ca_a, ca_b), trust, [])
    assert evaluation.chain.trusted is False
    assert "chain.incomplete" in codes(evaluation)
