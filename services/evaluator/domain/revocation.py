"""Revocation from the OCSP response the server staples: parsed, checked, and only then believed.

A response counts only when it is about the leaf (its cert id: serial, issuer name hash and issuer key hash),
is signed by the leaf's issuer or by a responder that issuer delegated (id-kp-OCSPSigning), and is fresh at
`now`. A revoked answer from an authentic response stands even when stale (revocation does not expire);
anything else that fails a check is `invalid` or `stale`, a warning, because the server staples junk.
"""

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from services.evaluator.domain.codes import finding
from services.evaluator.domain.completion import public_key_of
from services.evaluator.domain.signature import signature_verifies, verify_signature
from shared.events.evaluation import Finding, RevocationInfo
from shared.events.observation import TlsFacts

if TYPE_CHECKING:
    from services.evaluator.domain.caches import EvaluatorCaches

#: How far in the future `thisUpdate` may be: responder and scanner clocks disagree a little.
CLOCK_SKEW = timedelta(minutes=5)
#: A response without `nextUpdate` is taken as fresh for this long after `thisUpdate`.
MAX_AGE_WITHOUT_NEXT_UPDATE = timedelta(days=7)


@dataclass(frozen=True)
class RevocationResult:
    """The revocation section and its findings (none when the response is good, unknown or absent)."""

    info: RevocationInfo | None
    findings: list[Finding] = field(default_factory=list)


class _Invalid(Exception):
    """The stapled response fails a check; the message says which, in words."""


def _load(text: str) -> ocsp.OCSPResponse:
    try:
        response = ocsp.load_der_ocsp_response(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise _Invalid(f"it is not a DER OCSP response ({exc})") from exc
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise _Invalid(f"the responder answered {response.response_status.name}, not a status")
    return response


def _for_leaf(response: ocsp.OCSPResponse, leaf: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPSingleResponse:
    """The single response whose cert id is the leaf's (same serial, same issuer name and key hashes)."""
    for single in response.responses:
        if single.serial_number != leaf.serial_number:
            continue
        try:
            algorithm = single.hash_algorithm
            ours = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, algorithm).build()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if (single.issuer_name_hash, single.issuer_key_hash) == (ours.issuer_name_hash, ours.issuer_key_hash):
            return single
    raise _Invalid("it is not about this certificate (no response matches the leaf's serial and issuer)")


def _names_responder(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    key = public_key_of(cert)
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    return key is not None and response.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(key).digest


def _delegated(cert: x509.Certificate, issuer: x509.Certificate, now: datetime, caches: "EvaluatorCaches") -> bool:
    """`cert` is an OCSP responder certificate the issuer signed, in force at `now`."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return (
        ExtendedKeyUsageOID.OCSP_SIGNING in eku
        and cert.issuer == issuer.subject
        and cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
        and signature_verifies(cert, public_key_of(issuer), caches) is True
    )


def _signer_key(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime, caches: "EvaluatorCaches"
) -> CertificatePublicKeyTypes:
    if _names_responder(response, issuer):
        key = public_key_of(issuer)
    else:
        responder = next(
            (c for c in response.certificates if _names_responder(response, c) and _delegated(c, issuer, now, caches)),
            None,
        )
        key = public_key_of(responder) if responder is not None else None
    if key is None:
        raise _Invalid("it is signed neither by the leaf's issuer nor by an OCSP responder the issuer authorised")
    return key


def _check_signature(response: ocsp.OCSPResponse, key: CertificatePublicKeyTypes) -> None:
    try:
        algorithm: hashes.HashAlgorithm | None = response.signature_hash_algorithm
    except UnsupportedAlgorithm as exc:
        raise _Invalid(
            f"it is signed with an unknown algorithm ({response.signature_algorithm_oid.dotted_string})"
        ) from exc
    if verify_signature(key, response.signature, response.tbs_response_bytes, algorithm) is not True:
        raise _Invalid("its signature does not verify with the responder's key")


def _info(
    response: ocsp.OCSPResponse, single: ocsp.OCSPSingleResponse, status: Literal["good", "revoked", "unknown", "stale"]
) -> RevocationInfo:
    revoked = single.certificate_status == ocsp.OCSPCertStatus.REVOKED
    reason = single.revocation_reason if revoked else None
    return RevocationInfo(
        ocsp_stapled=True,
        status=status,
        produced_at=response.produced_at_utc,
        next_update=single.next_update_utc,
        revoked_at=single.revocation_time_utc if revoked else None,
        reason=reason.value if reason is not None else ("unspecified" if revoked else None),
    )


def _stale_reason(single: ocsp.OCSPSingleResponse, now: datetime) -> str | None:
    next_update = single.next_update_utc
    if next_update is not None and next_update < now:
        return f"its nextUpdate ({next_update.isoformat()}) has passed"
    if next_update is None and single.this_update_utc + MAX_AGE_WITHOUT_NEXT_UPDATE < now:
        return f"it has no nextUpdate and was issued {single.this_update_utc.isoformat()}, over a week ago"
    return None


def _judge(
    text: str, leaf: x509.Certificate, issuer: x509.Certificate | None, now: datetime, caches: "EvaluatorCaches"
) -> RevocationResult:
    response = _load(text)
    if issuer is None:
        raise _Invalid("the leaf's issuer is unknown, so the response cannot be checked")
    single = _for_leaf(response, leaf, issuer)
    _check_signature(response, _signer_key(response, issuer, now, caches))
    if single.certificate_status == ocsp.OCSPCertStatus.REVOKED:
        info = _info(response, single, "revoked")
        message = (
            f"the leaf was revoked at {info.revoked_at.isoformat() if info.revoked_at else 'an unknown time'} "
            f"(reason: {info.reason}), says the OCSP response the server staples"
        )
        return RevocationResult(info, [finding("revocation.revoked", message)])
    if single.this_update_utc > now + CLOCK_SKEW:
        raise _Invalid(f"its thisUpdate ({single.this_update_utc.isoformat()}) is in the future")
    stale = _stale_reason(single, now)
    if stale is not None:
        message = f"the stapled OCSP response is out of date: {stale}; the server should refresh its staple"
        return RevocationResult(_info(response, single, "stale"), [finding("revocation.stale_ocsp", message)])
    status: Literal["good", "unknown"] = "good" if single.certificate_status == ocsp.OCSPCertStatus.GOOD else "unknown"
    return RevocationResult(_info(response, single, status))


def check_revocation(
    tls: TlsFacts, leaf: x509.Certificate, issuer: x509.Certificate | None, *, now: datetime, caches: "EvaluatorCaches"
) -> RevocationResult:
    """Judge the stapled OCSP response for `leaf` (issued by `issuer`, when known) at `now`; never raises. A
    delegated responder's certificate is checked through `caches`."""
    if tls.ocsp_response is None:
        return RevocationResult(None if tls.ocsp_stapled is None else RevocationInfo(ocsp_stapled=False))
    try:
        return _judge(tls.ocsp_response, leaf, issuer, now, caches)
    except (_Invalid, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # `cryptography` reads some response fields lazily: a malformed one raises late, and is just as invalid
        why = str(exc) if isinstance(exc, _Invalid) else f"it is malformed ({type(exc).__name__}: {exc})"
        message = f"the stapled OCSP response cannot be relied on: {why}"
        return RevocationResult(
            RevocationInfo(ocsp_stapled=True, status="invalid"), [finding("revocation.invalid_ocsp", message)]
        )
