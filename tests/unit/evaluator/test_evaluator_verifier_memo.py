"""The verifier is asked again exactly when its answer could change: other certificates, another store, or a
validation second at which some certificate given or in the store becomes valid or stops being valid."""

import datetime as dt

import pytest
from cryptography import x509

from services.evaluator.domain import EvaluatorCaches, TrustStore, chain, verifier
from services.evaluator.domain.parse import ParsedCert
from services.evaluator.domain.trust import validity_changes, verifier_second
from tests.support.pki import NOW, Issued, make_ca, make_leaf
from tests.unit.evaluator.evaluator_support import CountingVerifier, large_leaf, parsed_cert, store

SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def asked(counted: CountingVerifier) -> list[dt.datetime]:
    """The validation times at which the real verifier was asked."""
    return counted.times


def _trusted(
    leaf: ParsedCert,
    intermediates: list[x509.Certificate],
    now: dt.datetime,
    trust: TrustStore,
    caches: EvaluatorCaches,
) -> bool:
    path, _ = verifier.verify_path(leaf, intermediates, now=now, trust=trust, chain_bytes=4096, caches=caches)
    if path is not None:
        assert path[0] is leaf.cert  # the objects given, as the chain walk finds them by identity
    return path is not None


def test_an_answer_holds_until_a_given_certificate_changes_validity(
    root: Issued, asked: list[dt.datetime], caches: EvaluatorCaches
) -> None:
    """Asked once while the intermediate is valid, up to and through the last second of its notAfter (the
    verifier drops fractions of a second); asked again one second later, when the answer does change."""
    expires = NOW + dt.timedelta(days=10)
    short_lived = make_ca(
        "certmon Short-lived CA", issuer=root, not_before=NOW - dt.timedelta(days=30), not_after=expires
    )
    leaf = parsed_cert(make_leaf(short_lived, ["localhost"], not_after=NOW + dt.timedelta(days=60)))
    trust = store(root)
    chain = [short_lived.cert]
    instants = [NOW, NOW + dt.timedelta(days=1), expires, expires + SECOND / 2]
    assert [_trusted(leaf, chain, now, trust, caches) for now in instants] == [True] * 4
    assert asked == [NOW]
    assert _trusted(leaf, chain, expires + SECOND, trust, caches) is False
    assert asked == [NOW, expires + SECOND]
    assert _trusted(leaf, chain, expires + dt.timedelta(days=1), trust, caches) is False  # the new answer holds in turn
    assert _trusted(leaf, chain, NOW, trust, caches) is True  # and the old span asks again
    assert len(asked) == 3
    fresh = EvaluatorCaches()  # each kept answer is what a fresh verifier says
    assert [_trusted(leaf, chain, now, trust, fresh) for now in [*instants, expires + SECOND]] == [True] * 4 + [False]


def test_an_anchor_changing_validity_asks_again(
    root: Issued, leaf: Issued, intermediate: Issued, asked: list[dt.datetime], caches: EvaluatorCaches
) -> None:
    """Any anchor's notBefore or notAfter between two times ends the span, even one off the chain's path: the
    verifier may build a path through whichever anchor it likes."""
    later = NOW + dt.timedelta(days=5)
    other = make_ca("certmon Other Root", not_before=NOW - dt.timedelta(days=1), not_after=later)
    trust = store(root, other)
    parsed, chain = parsed_cert(leaf), [intermediate.cert]
    assert verifier_second(later) + 1 in trust.validity_changes
    assert [_trusted(parsed, chain, now, trust, caches) for now in (NOW, later, later + SECOND)] == [True] * 3
    assert asked == [NOW, later + SECOND]


def test_other_certificates_or_another_store_ask_again(
    root: Issued, intermediate: Issued, leaf: Issued, asked: list[dt.datetime], caches: EvaluatorCaches
) -> None:
    """The memo is keyed by the certificates given, in order, and by the store."""
    parsed = parsed_cert(leaf)
    assert _trusted(parsed, [intermediate.cert], NOW, store(root), caches)
    assert _trusted(parsed, [intermediate.cert], NOW, store(root), caches)  # an equal store, yet another object
    assert not _trusted(parsed, [], NOW, store(root), caches)  # without the intermediate
    trust = store(root)
    assert _trusted(parsed, [intermediate.cert], NOW, trust, caches)
    assert _trusted(parsed, [intermediate.cert], NOW + SECOND, trust, caches)
    assert len(asked) == 4


def test_validity_changes_are_whole_seconds_with_notafter_inclusive(intermediate: Issued) -> None:
    """A certificate is valid from the second of its notBefore through the second of its notAfter."""
    cert = intermediate.cert
    became, ended = validity_changes(cert)
    assert became == verifier_second(cert.not_valid_before_utc)
    assert ended == verifier_second(cert.not_valid_after_utc) + 1
    assert verifier_second(NOW + SECOND * 0.999) == verifier_second(NOW)
    assert verifier_second(NOW.astimezone(dt.timezone(dt.timedelta(hours=-5)))) == verifier_second(NOW)


def test_a_chain_too_large_to_keep_is_verified_each_time(
    root: Issued, intermediate: Issued, asked: list[dt.datetime], caches: EvaluatorCaches
) -> None:
    """A memoised answer keeps its certificates alive, so only chains up to 16 KiB are kept: a larger one (a leaf
    with a long SAN list here) is verified at every evaluation, with the same answer."""
    large = large_leaf(intermediate)
    assert len(large.der) + len(intermediate.der) > verifier.MEMOISED_CHAIN_BYTES
    parsed, trust = parsed_cert(large), store(root)
    size = len(large.der) + len(intermediate.der)
    path, _ = verifier.verify_path(parsed, [intermediate.cert], now=NOW, trust=trust, chain_bytes=size, caches=caches)
    again, _ = verifier.verify_path(parsed, [intermediate.cert], now=NOW, trust=trust, chain_bytes=size, caches=caches)
    assert path is not None and again is not None
    assert asked == [NOW, NOW]
    assert len(caches.answers) == 0
    # nor is its chain verdict kept, whose key keeps the verified path alive
    certs = [parsed, parsed_cert(intermediate, caches)]
    assert chain.analyse_chain(certs, now=NOW, trust=trust, caches=caches).info.trusted
    assert len(caches.verdicts) == 0
