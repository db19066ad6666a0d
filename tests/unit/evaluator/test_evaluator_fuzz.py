"""Fuzzing the parsing path: whatever bytes a server presents, `evaluate` returns a valid evaluation."""

import base64

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.evaluator.domain import TrustStore
from shared.events import Evaluation, NegotiatedTls, Observation, Target, TlsFacts
from tests.support.pki import NOW, Issued
from tests.unit.evaluator.evaluator_support import judge

#: Bounded so the folder stays fast; no example database, so nothing is written into the checkout.
_FUZZ = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _observe(*chain: bytes, ocsp: bytes | None = None) -> Observation:
    return Observation(
        target=Target(host="localhost", port=443),
        observed_at=NOW,
        chain=[base64.b64encode(der).decode() for der in chain],
        tls=TlsFacts(
            negotiated=NegotiatedTls(version="TLSv1.3", cipher_suite="TLS_AES_128_GCM_SHA256"),
            ocsp_response=base64.b64encode(ocsp).decode() if ocsp is not None else None,
        ),
    )


def _valid(evaluation: Evaluation) -> None:
    """The evaluation survives its own contract: it round-trips through JSON."""
    assert Evaluation.model_validate_json(evaluation.model_dump_json()) == evaluation
    assert evaluation.alarm.level in ("ok", "info", "warning", "critical")


@_FUZZ
@given(data=st.lists(st.binary(max_size=600), min_size=1, max_size=4))
def test_random_bytes_never_raise(data: list[bytes], trust: TrustStore) -> None:
    """Random byte strings as the chain (and as a stapled OCSP response) yield findings, never an exception."""
    _valid(judge(_observe(*data, ocsp=data[0]), trust))


@_FUZZ
@given(position=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255), count=st.integers(1, 4))
def test_mutated_leaf_never_raises(
    position: int, value: int, count: int, leaf: Issued, intermediate: Issued, trust: TrustStore
) -> None:
    """A valid leaf with a few bytes overwritten (tags, lengths, OIDs, signatures) is judged without raising."""
    der = bytearray(leaf.der)
    for i in range(count):
        der[(position + i * 97) % len(der)] = (value + i) % 256
    _valid(judge(_observe(bytes(der), intermediate.der), trust))


@_FUZZ
@given(cut=st.integers(min_value=0), which=st.integers(min_value=0, max_value=1))
def test_truncated_chain_never_raises(
    cut: int, which: int, leaf: Issued, intermediate: Issued, trust: TrustStore
) -> None:
    """The leaf or the intermediate cut at any length is a malformed finding, never an exception."""
    chain = [leaf.der, intermediate.der]
    chain[which] = chain[which][: cut % len(chain[which])]
    evaluation = judge(_observe(*chain), trust)
    _valid(evaluation)
    assert any(f.code == "certificate.malformed" for f in evaluation.findings)
