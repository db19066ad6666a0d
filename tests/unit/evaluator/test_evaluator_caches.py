"""`EvaluatorCaches`: bounded in entries and in bytes, asking the verifier it was given, sharing nothing with
another object."""

from services.evaluator.domain import EvaluatorCaches, TrustStore
from services.evaluator.domain.caches import CacheBounds
from services.evaluator.domain.parse import MEMOISED_CERTIFICATE_BYTES, ParsedCert
from tests.support.pki import Issued, make_leaf
from tests.unit.evaluator.evaluator_support import CountingVerifier, b64, judge, large_leaf, observation


def _parsed(caches: EvaluatorCaches, issued: Issued) -> ParsedCert:
    result = caches.parse(issued.der)
    assert isinstance(result, ParsedCert)
    return result


def test_a_certificate_over_16_kib_is_parsed_each_time_and_not_kept(intermediate: Issued) -> None:
    """A large certificate, met by its DER or its base64, is parsed anew each time; a small one is kept."""
    caches = EvaluatorCaches()
    large, small = large_leaf(intermediate), make_leaf(intermediate, ["localhost"])
    assert len(large.der) > MEMOISED_CERTIFICATE_BYTES
    assert _parsed(caches, large) is not _parsed(caches, large)
    assert caches.parse_text(b64(large)) is not caches.parse_text(b64(large))
    assert _parsed(caches, small) is _parsed(caches, small)
    assert caches.parse_text(b64(small)) is caches.parse_text(b64(small))


def test_the_least_recently_used_leaf_is_evicted_first(intermediate: Issued) -> None:
    """With room for two leaves, a third evicts the one used least recently, which is then parsed anew."""
    caches = EvaluatorCaches(bounds=CacheBounds(leaves=2))
    first, second, third = (make_leaf(intermediate, [f"{n}.example"]) for n in ("one", "two", "three"))
    kept_first, kept_second = _parsed(caches, first), _parsed(caches, second)
    assert _parsed(caches, first) is kept_first  # used again: the second is now the oldest
    _parsed(caches, third)
    assert _parsed(caches, first) is kept_first
    assert _parsed(caches, second) is not kept_second


def test_two_caches_objects_share_nothing(leaf: Issued, intermediate: Issued, trust: TrustStore) -> None:
    """The same chain evaluated through two objects is parsed, verified and judged once in each; the second
    object starts empty and gives the same evaluation."""
    counted_a, counted_b = CountingVerifier(), CountingVerifier()
    caches_a, caches_b = EvaluatorCaches(verifier=counted_a), EvaluatorCaches(verifier=counted_b)
    obs = observation(leaf, intermediate)
    first = judge(obs, trust, caches=caches_a)
    assert judge(obs, trust, caches=caches_a) == first
    assert (len(counted_a.times), len(counted_b.times)) == (1, 0)
    assert (len(caches_b.answers), len(caches_b.verdicts)) == (0, 0)
    assert judge(obs, trust, caches=caches_b) == first
    assert (len(counted_a.times), len(counted_b.times)) == (1, 1)
    assert _parsed(caches_a, leaf) is not _parsed(caches_b, leaf)


def test_the_verifier_given_is_the_one_asked(leaf: Issued, intermediate: Issued, trust: TrustStore) -> None:
    """An evaluation asks the caches' verifier, with the trust store's own `Store`, and keeps its answer."""
    counted = CountingVerifier()
    caches = EvaluatorCaches(verifier=counted)
    assert judge(observation(leaf, intermediate), trust, caches=caches).chain.trusted
    assert counted.stores == [trust.store]
    assert (len(caches.answers), len(caches.verdicts)) == (1, 1)


def test_the_caches_stay_bounded_over_more_distinct_leaves_than_they_hold(
    intermediate: Issued, trust: TrustStore
) -> None:
    """Twelve distinct leaves of twelve hosts through caches with room for four: every per-leaf and per-host table
    holds four at most, while the intermediate they share stays parsed once, never crowded out by leaves."""
    bounds = CacheBounds(leaves=4, answers=4, verdicts=4, signatures=4, links=4, hostnames=4, ips=4, issuer_names=4)
    caches = EvaluatorCaches(bounds=bounds)
    kept_intermediate = caches.parse_text(b64(intermediate), 1)
    for n in range(12):
        host = f"host-{n}.example"
        evaluation = judge(observation(make_leaf(intermediate, [host]), intermediate, host=host), trust, caches=caches)
        assert evaluation.chain.trusted
    assert len(caches.leaves) == 4
    assert (len(caches.answers), len(caches.verdicts)) == (4, 4)
    assert caches.a_labels.cache_info().currsize <= 4 and caches.names_match.cache_info().currsize <= 4
    assert caches.ips.cache_info().currsize <= 4
    assert len(caches.authorities) == 1
    assert caches.parse_text(b64(intermediate), 1) is kept_intermediate


def test_the_leaves_kept_are_bounded_in_length(intermediate: Issued) -> None:
    """Leaves are dropped, least recently used first, while their base64 exceeds the length bound, and one
    longer than the bound alone is parsed each time."""
    leaves = [make_leaf(intermediate, [f"{n}.example"]) for n in range(3)]
    texts = [b64(leaf) for leaf in leaves]
    caches = EvaluatorCaches(bounds=CacheBounds(leaf_key_length=len(texts[0]) + len(texts[1])))
    first = caches.parse_text(texts[0])
    caches.parse_text(texts[1])
    caches.parse_text(texts[2])  # over the length: the first goes
    assert len(caches.leaves) == 2 and caches.leaves.held <= caches.bounds.leaf_key_length
    assert caches.parse_text(texts[0]) is not first
    narrow = EvaluatorCaches(bounds=CacheBounds(leaf_key_length=len(texts[0]) - 1))
    assert narrow.parse_text(texts[0]) is not narrow.parse_text(texts[0])
    assert len(narrow.leaves) == 0
