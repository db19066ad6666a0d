"""Certificates the evaluator's depth tests need and the PKI helpers cannot make: leaves with AIA or embedded
SCTs, DER surgery (an unknown key or signature algorithm), and stapled OCSP responses."""

import datetime as dt
import struct

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, ExtensionOID, NameOID

from shared.der import element
from tests.support.pki import NOW, Issued, ec_key


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def build_leaf(
    issuer: Issued,
    host: str = "localhost",
    *,
    aia_url: str | None = None,
    sct_count: int = 0,
    padding_bytes: int = 0,
    eku: list[x509.ObjectIdentifier] | None = None,
) -> Issued:
    """A TLS server leaf for `host` signed by `issuer` (SHA-256), optionally with an AIA caIssuers URL, `sct_count`
    embedded SCTs, or an opaque extension of `padding_bytes` to make it large."""
    key = ec_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=200))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(eku or [ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    )
    if aia_url is not None:
        access = x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(aia_url)
        )
        builder = builder.add_extension(x509.AuthorityInformationAccess([access]), critical=False)
    if sct_count:
        value = _der_octet_string(sct_list(sct_count))
        oid = ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS
        builder = builder.add_extension(x509.UnrecognizedExtension(oid, value), critical=False)
    if padding_bytes:
        padding_oid = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1")
        builder = builder.add_extension(
            x509.UnrecognizedExtension(padding_oid, _der_octet_string(b"\x00" * padding_bytes)), critical=False
        )
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def build_ca(
    cn: str, issuer_name: str, signer: CertificateIssuerPrivateKeyTypes, key: ec.EllipticCurvePrivateKey
) -> Issued:
    """A CA certificate for `cn` naming `issuer_name` as its issuer, signed by `signer` (for name loops)."""
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=30))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )
    return Issued(cert, key)


def sct_list(count: int) -> bytes:
    """A TLS-encoded SignedCertificateTimestampList of `count` (unverifiable but well-formed) v1 SCTs."""
    scts = b""
    for i in range(count):
        signature = b"\x30\x06\x02\x01\x01\x02\x01\x01"
        sct = (
            b"\x00"
            + bytes([i + 1]) * 32
            + struct.pack(">Q", 1_700_000_000_000 + i)
            + struct.pack(">H", 0)
            + b"\x04\x03"
            + struct.pack(">H", len(signature))
            + signature
        )
        scts += struct.pack(">H", len(sct)) + sct
    return struct.pack(">H", len(scts)) + scts


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, body: bytes) -> bytes:
    """One DER element."""
    return bytes([tag]) + _der_length(len(body)) + body


def _der_octet_string(body: bytes) -> bytes:
    return tlv(0x04, body)


def _whole(der: bytes, at: int) -> tuple[int, int]:
    """(content start, end) of the DER element at `at`, which the test's own DER always has."""
    bounds = element(der, at)
    assert bounds is not None
    return bounds


def outer_parts(der: bytes) -> tuple[bytes, bytes]:
    """The TBSCertificate and the signature AlgorithmIdentifier of a certificate, as DER."""
    body, _ = _whole(der, 0)
    _, tbs_end = _whole(der, body)
    _, alg_end = _whole(der, tbs_end)
    return der[body:tbs_end], der[tbs_end:alg_end]


def assemble(tbs: bytes, algorithm: bytes, signature: bytes) -> bytes:
    """A certificate from its three parts."""
    return tlv(0x30, tbs + algorithm + tlv(0x03, b"\x00" + signature))


def with_replaced_bytes(issued: Issued, old: bytes, new: bytes, signer: CertificateIssuerPrivateKeyTypes) -> bytes:
    """`issued`'s certificate with `old` replaced by `new` (same length) wherever it occurs, TBS re-signed by the
    EC `signer` with ECDSA-SHA256: an unknown key algorithm stays signed correctly."""
    assert len(old) == len(new)
    tbs, algorithm = outer_parts(issued.der)
    assert old in tbs or old in algorithm
    new_tbs, new_algorithm = tbs.replace(old, new), algorithm.replace(old, new)
    assert isinstance(signer, ec.EllipticCurvePrivateKey)
    return assemble(new_tbs, new_algorithm, signer.sign(new_tbs, ec.ECDSA(hashes.SHA256())))


#: id-ecPublicKey (1.2.840.10045.2.1) and an OID next to it nobody defines (1.2.840.10045.2.9).
EC_PUBLIC_KEY_OID = bytes.fromhex("06072a8648ce3d0201")
UNKNOWN_KEY_OID = bytes.fromhex("06072a8648ce3d0209")
#: ecdsa-with-SHA256 (1.2.840.10045.4.3.2) and an undefined sibling (1.2.840.10045.4.3.9).
ECDSA_SHA256_OID = bytes.fromhex("06082a8648ce3d040302")
UNKNOWN_SIGNATURE_OID = bytes.fromhex("06082a8648ce3d040309")


def ocsp_response(
    leaf: Issued,
    issuer: Issued,
    *,
    status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
    no_next_update: bool = False,
    revoked_at: dt.datetime | None = None,
    reason: x509.ReasonFlags | None = None,
    signer: Issued | None = None,
    responder_certs: list[Issued] | None = None,
) -> bytes:
    """A DER OCSP response about `leaf`, signed by `signer` (the issuer by default), with the given freshness."""
    signer = signer or issuer
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=leaf.cert,
        issuer=issuer.cert,
        algorithm=hashes.SHA1(),
        cert_status=status,
        this_update=this_update or NOW - dt.timedelta(hours=1),
        next_update=None if no_next_update else (next_update or NOW + dt.timedelta(days=3)),
        revocation_time=(revoked_at or NOW - dt.timedelta(days=2)) if status == ocsp.OCSPCertStatus.REVOKED else None,
        revocation_reason=reason if status == ocsp.OCSPCertStatus.REVOKED else None,
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer.cert)
    if responder_certs:
        builder = builder.certificates([c.cert for c in responder_certs])
    key = signer.key
    assert isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)


def ocsp_responder(issuer: Issued, *, eku: bool = True) -> Issued:
    """A delegated OCSP responder certificate issued by `issuer` (with id-kp-OCSPSigning unless `eku` is False)."""
    key = ec_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name("certmon OCSP Responder"))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
    )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)
