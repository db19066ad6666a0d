"""The evaluator's caches change only its speed: a warm evaluation equals a cold one, in any order."""

import datetime as dt
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from services.evaluator.domain import TrustStore, clear_caches, signature
from services.evaluator.domain.memo import BoundedMemo
from shared.events import Observation
from tests.support.pki import NOW, Issued, make_ca, make_leaf
from tests.unit.evaluator.evaluator_support import judge, observation, store


def _cases(intermediate: Issued, rogue_root: Issued) -> list[Observation]:
    healthy = make_leaf(intermediate, ["localhost"])
    expired = make_leaf(
        intermediate, ["localhost"], not_before=NOW - dt.timedelta(days=90), not_after=NOW - dt.timedelta(days=2)
    )
    return [
        observation(healthy, intermediate),
        observation(healthy, intermediate, host="other.example"),  # same chain, different name
        observation(intermediate, healthy),  # same certificates, wrong order
        observation(expired, intermediate),
        observation(make_leaf(None, ["localhost"])),
        observation(make_leaf(rogue_root, ["localhost"]), rogue_root),
        observation(healthy),  # the intermediate missing
    ]


def test_warm_results_equal_cold_results_in_any_order(
    intermediate: Issued, rogue_root: Issued, trust: TrustStore
) -> None:
    """Evaluating after the caches were filled by other chains gives exactly what a cold evaluation gives."""
    cases = _cases(intermediate, rogue_root)
    cold = []
    for obs in cases:
        clear_caches()
        cold.append(judge(obs, trust).model_dump(mode="json"))
    warm_forward = [judge(obs, trust).model_dump(mode="json") for obs in cases]
    warm_backward = [judge(obs, trust).model_dump(mode="json") for obs in reversed(cases)][::-1]
    assert warm_forward == cold
    assert warm_backward == cold
    later = NOW + dt.timedelta(days=400)  # the same chains at another time: nothing time-dependent was cached
    assert [judge(o, trust, now=later).alarm.level for o in cases[:1]] == ["critical"]


def test_a_memoised_chain_verdict_follows_the_verifier_as_time_and_trust_change(root: Issued) -> None:
    """The chain verdict is memoised on the chain, the store and the verifier's answer: the same chain judged
    while its intermediate is valid, after it expired, against a store without its root, and again as at first,
    each gets the verdict a cold evaluation gives."""
    short_lived = make_ca(
        "certmon Short-lived Intermediate",
        issuer=root,
        not_before=NOW - dt.timedelta(days=30),
        not_after=NOW + dt.timedelta(days=10),
    )
    leaf = make_leaf(short_lived, ["localhost"], not_after=NOW + dt.timedelta(days=60))
    obs = observation(leaf, short_lived)
    later = NOW + dt.timedelta(days=20)  # the intermediate has expired, the leaf has not
    steps = [(NOW, store(root)), (later, store(root)), (NOW, store(make_ca("Other Root"))), (NOW, store(root))]
    cold = []
    for now, trust in steps:
        clear_caches()
        cold.append(judge(obs, trust, now=now).model_dump(mode="json"))
    warm = [judge(obs, trust, now=now).model_dump(mode="json") for now, trust in steps]
    assert warm == cold
    assert [doc["chain"]["trusted"] for doc in warm] == [True, False, False, True]
    assert "chain.intermediate_expiring" in {f["code"] for f in warm[0]["findings"]}


def test_bounded_memo_drops_the_oldest_and_tells_none_from_absent() -> None:
    """At most `size` entries, the oldest insertion dropped first; a remembered None is found as None."""
    memo: BoundedMemo[int, int | None] = BoundedMemo(3)
    for key in range(5):
        memo.put(key, None if key == 4 else key * 10)
    absent = object()
    assert [memo.get(key, absent) for key in range(5)] == [absent, absent, 20, 30, None]
    assert len(memo) == 3


def test_bounded_memo_is_safe_to_fill_from_several_threads() -> None:
    """Threads inserting and evicting at once never break the memo nor let it grow past its size."""
    memo: BoundedMemo[tuple[int, int], int] = BoundedMemo(64)
    errors: list[BaseException] = []

    def fill(worker: int) -> None:
        try:
            for n in range(5000):
                memo.put((worker, n), n)
                memo.get((worker, n - 1), None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fill, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert len(memo) <= 64


def test_links_on_the_verified_path_are_not_checked_twice(
    intermediate: Issued, trust: TrustStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the verifier builds a path, the chain walk takes its links' signatures as checked (a new leaf costs
    one verification, not two); a link the verifier did not vouch for is still checked by certmon itself."""
    checked: list[str] = []
    real = signature._signature_verifies

    def counting(cert: x509.Certificate, key: CertificatePublicKeyTypes) -> bool | None:
        checked.append(cert.subject.rfc4514_string())
        return real(cert, key)

    monkeypatch.setattr(signature, "_signature_verifies", counting)
    trusted = judge(observation(make_leaf(intermediate, ["localhost"], cn="fresh leaf"), intermediate), trust)
    assert trusted.chain.trusted and checked == []
    rogue = make_ca("certmon Rogue Intermediate")
    untrusted = judge(observation(make_leaf(rogue, ["localhost"], cn="rogue leaf"), rogue), trust)
    assert not untrusted.chain.trusted and checked == ["O=certmon tests,CN=rogue leaf"]
