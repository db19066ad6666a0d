"""Revocation from the stapled OCSP response, and Certificate Transparency facts of the leaf."""

import base64
import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from services.evaluator.domain import TrustStore
from shared.events import Evaluation, NegotiatedTls, Observation, Target, TlsFacts
from tests.support.pki import NOW, Issued, make_ca, make_leaf
from tests.unit.evaluator.crafted_certificates import build_leaf, ocsp_responder, ocsp_response
from tests.unit.evaluator.evaluator_support import b64, codes, judge, observation, severity


def _stapled(leaf: Issued, intermediate: Issued, response: bytes | None, *, asked: bool = True) -> Observation:
    tls = TlsFacts(
        negotiated=NegotiatedTls(version="TLSv1.3", cipher_suite="TLS_AES_128_GCM_SHA256"),
        ocsp_response=base64.b64encode(response).decode() if response is not None else None,
        ocsp_stapled=(response is not None) if asked else None,
    )
    return Observation(
        target=Target(host="localhost", port=443), observed_at=NOW, chain=[b64(leaf), b64(intermediate)], tls=tls
    )


def _evaluate(leaf: Issued, intermediate: Issued, trust: TrustStore, response: bytes | None) -> Evaluation:
    return judge(_stapled(leaf, intermediate, response), trust)


def _message(evaluation: Evaluation, code: str) -> str:
    (found,) = [f.message for f in evaluation.findings if f.code == code]
    return found


def test_good_response_from_the_issuer_is_good(leaf: Issued, intermediate: Issued, trust: TrustStore) -> None:
    """A fresh response signed by the issuer saying good: status good, no revocation finding."""
    evaluation = _evaluate(leaf, intermediate, trust, ocsp_response(leaf, intermediate))
    assert evaluation.revocation is not None
    assert (evaluation.revocation.ocsp_stapled, evaluation.revocation.status) == (True, "good")
    assert evaluation.revocation.next_update == NOW + dt.timedelta(days=3)
    assert not {c for c in codes(evaluation) if c.startswith("revocation.")}
    assert evaluation.alarm.level == "ok"


def test_revoked_leaf_is_critical_with_time_and_reason(leaf: Issued, intermediate: Issued, trust: TrustStore) -> None:
    """A response saying revoked: revocation.revoked (critical) naming when and why, and grade F."""
    revoked_at = NOW - dt.timedelta(days=2)
    response = ocsp_response(
        leaf,
        intermediate,
        status=ocsp.OCSPCertStatus.REVOKED,
        revoked_at=revoked_at,
        reason=x509.ReasonFlags.key_compromise,
    )
    evaluation = _evaluate(leaf, intermediate, trust, response)
    assert evaluation.revocation is not None
    assert (evaluation.revocation.status, evaluation.revocation.reason) == ("revoked", "keyCompromise")
    assert evaluation.revocation.revoked_at == revoked_at
    assert severity(evaluation, "revocation.revoked") == "critical"
    message = _message(evaluation, "revocation.revoked")
    assert revoked_at.isoformat() in message and "keyCompromise" in message
    assert evaluation.security is not None and evaluation.security.grade == "F"
    assert evaluation.alarm.level == "critical"


def test_revoked_stays_revoked_when_the_response_is_stale(
    leaf: Issued, intermediate: Issued, trust: TrustStore
) -> None:
    """Revocation does not expire: an authentic but out-of-date revoked answer is still revoked."""
    response = ocsp_response(
        leaf,
        intermediate,
        status=ocsp.OCSPCertStatus.REVOKED,
        this_update=NOW - dt.timedelta(days=10),
        next_update=NOW - dt.timedelta(days=3),
    )
    evaluation = _evaluate(leaf, intermediate, trust, response)
    assert evaluation.revocation is not None and evaluation.revocation.status == "revoked"
    assert evaluation.revocation.reason == "unspecified"


def test_unknown_status_is_reported_without_a_finding(leaf: Issued, intermediate: Issued, trust: TrustStore) -> None:
    """The responder does not know the certificate: status unknown."""
    response = ocsp_response(leaf, intermediate, status=ocsp.OCSPCertStatus.UNKNOWN)
    evaluation = _evaluate(leaf, intermediate, trust, response)
    assert evaluation.revocation is not None and evaluation.revocation.status == "unknown"
    assert not {c for c in codes(evaluation) if c.startswith("revocation.")}


def test_response_past_next_update_is_stale_one_second_either_side(
    leaf: Issued, intermediate: Issued, trust: TrustStore
) -> None:
    """nextUpdate one second ago is stale (warning); one second ahead is still good."""
    before = ocsp_response(leaf, intermediate, next_update=NOW - dt.timedelta(seconds=1))
    stale = _evaluate(leaf, intermediate, trust, before)
    assert stale.revocation is not None and stale.revocation.status == "stale"
    assert severity(stale, "revocation.stale_ocsp") == "warning"
    assert "nextUpdate" in _message(stale, "revocation.stale_ocsp")
    after = ocsp_response(leaf, intermediate, next_update=NOW + dt.timedelta(seconds=1))
    fresh = _evaluate(leaf, intermediate, trust, after)
    assert fresh.revocation is not None and fresh.revocation.status == "good"


def test_response_without_next_update_goes_stale_after_a_week(
    leaf: Issued, intermediate: Issued, trust: TrustStore
) -> None:
    """No nextUpdate: fresh for a week after thisUpdate, stale after."""
    old = ocsp_response(leaf, intermediate, no_next_update=True, this_update=NOW - dt.timedelta(days=8))
    assert "revocation.stale_ocsp" in codes(_evaluate(leaf, intermediate, trust, old))
    recent = ocsp_response(leaf, intermediate, no_next_update=True, this_update=NOW - dt.timedelta(days=6))
    evaluation = _evaluate(leaf, intermediate, trust, recent)
    assert evaluation.revocation is not None and evaluation.revocation.status == "good"


def test_this_update_in_the_future_beyond_the_skew_is_invalid(
    leaf: Issued, intermediate: Issued, trust: TrustStore
) -> None:
    """thisUpdate ten minutes ahead is invalid; two minutes ahead is within the clock skew and good."""
    ahead = ocsp_response(leaf, intermediate, this_update=NOW + dt.timedelta(minutes=10))
    evaluation = _evaluate(leaf, intermediate, trust, ahead)
    assert evaluation.revocation is not None and evaluation.revocation.status == "invalid"
    assert "in the future" in _message(evaluation, "revocation.invalid_ocsp")
    skewed = ocsp_response(leaf, intermediate, this_update=NOW + dt.timedelta(minutes=2))
    within = _evaluate(leaf, intermediate, trust, skewed).revocation
    assert within is not None and within.status == "good"


def test_response_about_another_certificate_is_invalid(leaf: Issued, intermediate: Issued, trust: TrustStore) -> None:
    """A response for a sibling leaf (another serial) is invalid (warning), not good."""
    sibling = make_leaf(intermediate)
    evaluation = _evaluate(leaf, intermediate, trust, ocsp_response(sibling, intermediate))
    assert evaluation.revocation is not None and evaluation.revocation.status == "invalid"
    assert severity(evaluation, "revocation.invalid_ocsp") == "warning"
    assert "not about this certificate" in _message(evaluation, "revocation.invalid_ocsp")


def test_response_signed_by_an_unrelated_key_is_invalid(
    leaf: Issued, intermediate: Issued, rogue_root: Issued, trust: TrustStore
) -> None:
    """Signed by someone the issuer never authorised: invalid, even though it says good."""
    evaluation = _evaluate(leaf, intermediate, trust, ocsp_response(leaf, intermediate, signer=rogue_root))
    assert evaluation.revocation is not None and evaluation.revocation.status == "invalid"
    assert "authorised" in _message(evaluation, "revocation.invalid_ocsp")


def test_delegated_responder_with_ocsp_signing_is_accepted(
    leaf: Issued, intermediate: Issued, trust: TrustStore
) -> None:
    """A responder certificate issued by the issuer with id-kp-OCSPSigning may sign for it."""
    responder = ocsp_responder(intermediate)
    response = ocsp_response(leaf, intermediate, signer=responder, responder_certs=[responder])
    evaluation = _evaluate(leaf, intermediate, trust, response)
    assert evaluation.revocation is not None and evaluation.revocation.status == "good"


def test_delegated_responder_without_ocsp_signing_is_invalid(
    leaf: Issued, intermediate: Issued, trust: TrustStore
) -> None:
    """A certificate from the issuer lacking id-kp-OCSPSigning may not sign responses."""
    responder = ocsp_responder(intermediate, eku=False)
    response = ocsp_response(leaf, intermediate, signer=responder, responder_certs=[responder])
    evaluation = _evaluate(leaf, intermediate, trust, response)
    assert evaluation.revocation is not None and evaluation.revocation.status == "invalid"


def test_garbage_and_unsuccessful_responses_are_invalid(leaf: Issued, intermediate: Issued, trust: TrustStore) -> None:
    """Bytes that are not OCSP, and a tryLater answer, are invalid findings, never a crash."""
    unsuccessful = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER)
    for response in (b"\x30\x03\x0a\x01\x00garbage", b"nonsense", unsuccessful.public_bytes(Encoding.DER)):
        evaluation = _evaluate(leaf, intermediate, trust, response)
        assert evaluation.revocation is not None and evaluation.revocation.status == "invalid"
        assert "revocation.invalid_ocsp" in codes(evaluation)


def test_response_with_an_unknown_issuer_cannot_be_checked(leaf: Issued, root: Issued, trust: TrustStore) -> None:
    """Leaf-only chain with an unknown issuer: the response cannot be checked, so it is invalid."""
    other_intermediate = make_ca("certmon Other Intermediate", issuer=root)
    obs = _stapled(leaf, other_intermediate, ocsp_response(leaf, other_intermediate))
    evaluation = judge(obs, trust)
    assert evaluation.revocation is not None and evaluation.revocation.status == "invalid"


def test_no_staple_asked_or_absent(leaf: Issued, intermediate: Issued, trust: TrustStore) -> None:
    """Not asked: no revocation section; asked and none stapled: ocsp_stapled False, status none."""
    assert judge(_stapled(leaf, intermediate, None, asked=False), trust).revocation is None
    absent = judge(_stapled(leaf, intermediate, None), trust).revocation
    assert absent is not None and (absent.ocsp_stapled, absent.status) == (False, "none")


def test_embedded_scts_are_counted(intermediate: Issued, trust: TrustStore) -> None:
    """A leaf with three embedded SCTs reports sct_count 3; one without reports 0."""
    with_scts = build_leaf(intermediate, sct_count=3)
    evaluation = judge(observation(with_scts, intermediate), trust)
    assert evaluation.transparency is not None and evaluation.transparency.sct_count == 3
    plain = judge(observation(build_leaf(intermediate), intermediate), trust)
    assert plain.transparency is not None and plain.transparency.sct_count == 0
