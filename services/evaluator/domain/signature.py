"""Signatures: the algorithm's name, weak hashes (MD5, SHA-1, MD2), and whether an issuer's key verifies a link.

Link checks are done here with the issuer's public key (RSA PKCS#1 v1.5 and PSS, ECDSA, Ed25519, Ed448, DSA)
because the path builder only says that some path failed, not which link is broken.
"""

from typing import TYPE_CHECKING, cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ObjectIdentifier, SignatureAlgorithmOID

from services.evaluator.domain.codes import finding
from services.evaluator.domain.parse import ParsedCert, spki_of
from shared.events.evaluation import Finding

if TYPE_CHECKING:
    from services.evaluator.domain.caches import EvaluatorCaches

#: The old OIW OID some legacy certificates still carry for SHA-1 with RSA.
_OIW_SHA1_WITH_RSA = ObjectIdentifier("1.3.14.3.2.29")

_NAMES: dict[ObjectIdentifier, str] = {
    SignatureAlgorithmOID.RSA_WITH_MD5: "md5WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA1: "sha1WithRSAEncryption",
    _OIW_SHA1_WITH_RSA: "sha1WithRSA",
    SignatureAlgorithmOID.RSA_WITH_SHA224: "sha224WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA256: "sha256WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA384: "sha384WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA512: "sha512WithRSAEncryption",
    SignatureAlgorithmOID.RSASSA_PSS: "rsassaPss",
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: "ecdsa-with-SHA1",
    SignatureAlgorithmOID.ECDSA_WITH_SHA224: "ecdsa-with-SHA224",
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: "ecdsa-with-SHA256",
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: "ecdsa-with-SHA384",
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: "ecdsa-with-SHA512",
    SignatureAlgorithmOID.DSA_WITH_SHA1: "dsa-with-sha1",
    SignatureAlgorithmOID.DSA_WITH_SHA224: "dsa-with-sha224",
    SignatureAlgorithmOID.DSA_WITH_SHA256: "dsa-with-sha256",
    SignatureAlgorithmOID.ED25519: "ed25519",
    SignatureAlgorithmOID.ED448: "ed448",
}

#: Signature algorithms whose hash is broken, by the hash's name.
_WEAK: dict[ObjectIdentifier, str] = {
    ObjectIdentifier("1.2.840.113549.1.1.2"): "MD2",
    SignatureAlgorithmOID.RSA_WITH_MD5: "MD5",
    SignatureAlgorithmOID.RSA_WITH_SHA1: "SHA-1",
    _OIW_SHA1_WITH_RSA: "SHA-1",
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: "SHA-1",
    SignatureAlgorithmOID.DSA_WITH_SHA1: "SHA-1",
}


def algorithm_name(cert: x509.Certificate) -> str:
    """The signature algorithm's conventional name, or its dotted OID when we do not know it."""
    oid = cert.signature_algorithm_oid
    return _NAMES.get(oid, oid.dotted_string)


def weak_hash(cert: x509.Certificate) -> str | None:
    """`MD5`, `SHA-1` or `MD2` when the certificate is signed with that hash, else None."""
    return _WEAK.get(cert.signature_algorithm_oid)


def _what(parsed: ParsedCert) -> str:
    return "the leaf" if parsed.position == 0 else f"certificate #{parsed.position} ({parsed.subject})"


def check_signature_hashes(certs: list[ParsedCert]) -> list[Finding]:
    """`signature.weak_hash` for each certificate signed with a broken hash (self-signed roots are exempt:
    their own signature is never checked by clients)."""
    findings: list[Finding] = []
    for parsed in certs:
        name = weak_hash(parsed.cert)
        if name is None or (parsed.position > 0 and parsed.self_issued):
            continue
        what = _what(parsed)
        lint = "e_sub_cert_or_sub_ca_using_sha1" if name == "SHA-1" else "e_signature_algorithm_not_supported"
        findings.append(
            finding(
                "signature.weak_hash",
                f"{what} is signed with {algorithm_name(parsed.cert)}: {name} is broken (zlint {lint})",
            )
        )
    return findings


def unsupported_algorithm(cert: x509.Certificate) -> bool:
    """The signature algorithm is one `cryptography` does not know, so no link it signs can be checked."""
    try:
        cert.signature_hash_algorithm  # noqa: B018 -- reading it is the check: unknown OIDs raise here
    except UnsupportedAlgorithm:
        return True
    return False


def check_signature_algorithms(certs: list[ParsedCert]) -> list[Finding]:
    """`signature.unsupported` for each certificate signed with an algorithm we cannot check (roots exempt)."""
    return [
        finding(
            "signature.unsupported",
            f"{_what(parsed)} is signed with the unknown algorithm {algorithm_name(parsed.cert)}: "
            "its signature cannot be checked and TLS clients will reject it "
            "(zlint e_signature_algorithm_not_supported)",
        )
        for parsed in certs
        if not (parsed.position > 0 and parsed.self_issued) and unsupported_algorithm(parsed.cert)
    ]


def verify_signature(
    key: CertificatePublicKeyTypes,
    signature: bytes,
    data: bytes,
    hash_algorithm: hashes.HashAlgorithm | None,
    params: padding.PSS | padding.PKCS1v15 | ec.ECDSA | None = None,
) -> bool | None:
    """True when `key` verifies `signature` over `data`, False when it does not, None for a key we cannot use.

    An RSA signature without parameters is PKCS#1 v1.5 (`cryptography` gives none for MD5 signatures)."""
    try:
        if isinstance(key, rsa.RSAPublicKey):
            if params is None:
                params = padding.PKCS1v15()
            if not isinstance(params, padding.PKCS1v15 | padding.PSS) or hash_algorithm is None:
                return False
            key.verify(signature, data, params, hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if params is None and hash_algorithm is not None:
                params = ec.ECDSA(hash_algorithm)
            if not isinstance(params, ec.ECDSA):
                return False
            key.verify(signature, data, params)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            if hash_algorithm is not None:
                return False
            key.verify(signature, data)
        elif isinstance(key, dsa.DSAPublicKey):
            if hash_algorithm is None:
                return False
            key.verify(signature, data, hash_algorithm)
        else:
            return None
    except InvalidSignature:
        return False
    except ValueError:  # a signature that is not even well-formed for the algorithm
        return False
    except UnsupportedAlgorithm:
        return None
    return True


_UNSET = object()


def signature_verifies(
    cert: x509.Certificate, issuer_key: CertificatePublicKeyTypes | None, caches: "EvaluatorCaches"
) -> bool | None:
    """True when `issuer_key` verifies `cert`'s signature, False when it does not, None when we cannot tell.

    Kept by (certificate, issuer key) in `caches`: the same links are checked on every scan of an estate.
    """
    if issuer_key is None:
        return None
    key = (cert, spki_of(issuer_key))
    found = caches.signatures.get(key, _UNSET)
    if found is not _UNSET:
        return cast("bool | None", found)
    return caches.signatures.put(key, _signature_verifies(cert, issuer_key))


def link_verifies(
    child: ParsedCert, issuer_key: CertificatePublicKeyTypes | None, spki: bytes | None, caches: "EvaluatorCaches"
) -> bool | None:
    """`signature_verifies` for a parsed certificate and a key whose SPKI the caller has, kept by the
    certificate's fingerprint and that SPKI (hashing an `x509.Certificate` costs more than the lookup saves)."""
    if issuer_key is None or spki is None:
        return None
    key = (child.fingerprint, spki)
    found = caches.links.get(key, _UNSET)
    if found is not _UNSET:
        return cast("bool | None", found)
    return caches.links.put(key, _signature_verifies(child.cert, issuer_key))


def _signature_verifies(cert: x509.Certificate, issuer_key: CertificatePublicKeyTypes) -> bool | None:
    try:
        params = cert.signature_algorithm_parameters
        hash_algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return None
    return verify_signature(issuer_key, cert.signature, cert.tbs_certificate_bytes, hash_algorithm, params)
