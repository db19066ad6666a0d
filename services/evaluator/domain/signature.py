"""Signatures: the algorithm's name, weak hashes (MD5, SHA-1, MD2), and whether an issuer's key verifies a link.

Link checks are done here with the issuer's public key (RSA PKCS#1 v1.5 and PSS, ECDSA, Ed25519, Ed448, DSA)
because the path builder only says that some path failed, not which link is broken.
"""

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ObjectIdentifier, SignatureAlgorithmOID

from services.evaluator.domain.codes import finding
from services.evaluator.domain.parse import ParsedCert
from shared.events.evaluation import Finding

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


def check_signature_hashes(certs: list[ParsedCert]) -> list[Finding]:
    """`signature.weak_hash` for each certificate signed with a broken hash (self-signed roots are exempt:
    their own signature is never checked by clients)."""
    findings: list[Finding] = []
    for parsed in certs:
        name = weak_hash(parsed.cert)
        if name is None or (parsed.position > 0 and parsed.self_issued):
            continue
        what = "the leaf" if parsed.position == 0 else f"certificate #{parsed.position} ({parsed.subject})"
        lint = "e_sub_cert_or_sub_ca_using_sha1" if name == "SHA-1" else "e_signature_algorithm_not_supported"
        findings.append(
            finding(
                "signature.weak_hash",
                f"{what} is signed with {algorithm_name(parsed.cert)}: {name} is broken (zlint {lint})",
            )
        )
    return findings


def signature_verifies(cert: x509.Certificate, issuer_key: CertificatePublicKeyTypes | None) -> bool | None:
    """True when `issuer_key` verifies `cert`'s signature, False when it does not, None when we cannot tell."""
    if issuer_key is None:
        return None
    try:
        params = cert.signature_algorithm_parameters
        hash_algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return None
    signature, data = cert.signature, cert.tbs_certificate_bytes
    try:
        if isinstance(issuer_key, rsa.RSAPublicKey):
            if not isinstance(params, padding.PKCS1v15 | padding.PSS) or hash_algorithm is None:
                return False
            issuer_key.verify(signature, data, params, hash_algorithm)
        elif isinstance(issuer_key, ec.EllipticCurvePublicKey):
            if not isinstance(params, ec.ECDSA):
                return False
            issuer_key.verify(signature, data, params)
        elif isinstance(issuer_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            if hash_algorithm is not None:
                return False
            issuer_key.verify(signature, data)
        elif isinstance(issuer_key, dsa.DSAPublicKey):
            if hash_algorithm is None:
                return False
            issuer_key.verify(signature, data, hash_algorithm)
        else:
            return None
    except InvalidSignature:
        return False
    except ValueError:  # a signature that is not even well-formed for the algorithm
        return False
    except UnsupportedAlgorithm:
        return None
    return True
