"""Helpers for the evaluator's unit tests: observations from generated certificates, and the DER surgery
`cryptography` refuses to do (SHA-1 / MD5 signatures, a corrupted signature)."""

import base64
import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.verification import Store

from services.evaluator.domain import EvaluatorCaches, TrustStore, evaluate, verifier
from services.evaluator.domain.parse import ParsedCert, parse_der
from shared.config import Policy
from shared.events import Evaluation, NegotiatedTls, Observation, ObservationError, Target, TlsFacts
from tests.support.pki import NOW, Issued, make_leaf

#: sha256WithRSAEncryption's AlgorithmIdentifier and the same-length ones we swap in.
_RSA_SHA256 = bytes.fromhex("300d06092a864886f70d01010b0500")
_RSA_WEAK = {
    "sha1": bytes.fromhex("300d06092a864886f70d0101050500"),
    "md5": bytes.fromhex("300d06092a864886f70d0101040500"),
}


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(body)) + body


def resign_weak(issued: Issued, issuer_key: rsa.RSAPrivateKey, hash_name: str) -> bytes:
    """The DER of `issued.cert` re-signed by `issuer_key` with SHA-1 or MD5 (it must be RSA/SHA-256 signed)."""
    tbs = issued.cert.tbs_certificate_bytes
    assert tbs.count(_RSA_SHA256) == 1
    algorithm = _RSA_WEAK[hash_name]
    new_tbs = tbs.replace(_RSA_SHA256, algorithm)
    digest = hashes.SHA1() if hash_name == "sha1" else hashes.MD5()
    signature = issuer_key.sign(new_tbs, padding.PKCS1v15(), digest)
    return _tlv(0x30, new_tbs + algorithm + _tlv(0x03, b"\x00" + signature))


def corrupt_signature(der: bytes) -> bytes:
    """The same certificate with the last byte of its signature flipped (still parses, no longer verifies)."""
    return der[:-1] + bytes([der[-1] ^ 0x01])


def b64(item: Issued | bytes) -> str:
    """Base64 DER, as observations carry certificates."""
    der = item.der if isinstance(item, Issued) else item
    return base64.b64encode(der).decode("ascii")


def observation(
    *chain: Issued | bytes,
    host: str = "localhost",
    version: str = "TLSv1.3",
    cipher_suite: str = "TLS_AES_128_GCM_SHA256",
    error: ObservationError | None = None,
) -> Observation:
    """An observation of `host:443` that presented `chain` (leaf first) over the given negotiated parameters."""
    return Observation(
        target=Target(host=host, port=443),
        observed_at=NOW,
        chain=[b64(item) for item in chain],
        tls=TlsFacts(negotiated=NegotiatedTls(version=version, cipher_suite=cipher_suite)),
        error=error,
    )


def large_leaf(issuer: Issued) -> Issued:
    """A leaf of about 17 KiB (320 long SAN entries): over the size up to which certificates are memoised."""
    return make_leaf(issuer, [f"host-{n:04d}.a-long-label-to-make-the-certificate-large.example" for n in range(320)])


def parsed_cert(issued: Issued, caches: EvaluatorCaches | None = None) -> ParsedCert:
    """The certificate as the evaluator parses it, at position 0 (through `caches`, else new ones)."""
    result = parse_der(issued.der, 0, caches or EvaluatorCaches())
    assert isinstance(result, ParsedCert)
    return result


class CountingVerifier:
    """The real path verifier (`verifier.ask`), recording the validation time and store of every question it is
    asked: given to `EvaluatorCaches(verifier=...)`, it tells when the caches ask again."""

    def __init__(self) -> None:
        self.times: list[dt.datetime] = []
        self.stores: list[Store] = []

    def __call__(
        self, leaf: ParsedCert, intermediates: list[x509.Certificate], at: dt.datetime, store: Store
    ) -> verifier.Answer:
        self.times.append(at)
        self.stores.append(store)
        return verifier.ask(leaf, intermediates, at, store)


def store(*anchors: Issued) -> TrustStore:
    """A trust store of these CA certificates."""
    return TrustStore(anchors=tuple(a.cert for a in anchors), description="test anchors")


def judge(
    obs: Observation,
    trust: TrustStore,
    *,
    now: dt.datetime = NOW,
    policy: Policy | None = None,
    caches: EvaluatorCaches | None = None,
) -> Evaluation:
    """Evaluate with the default policy at the PKI's `NOW` unless told otherwise, with new caches unless given."""
    return evaluate(obs, now=now, policy=policy or Policy(), trust=trust, caches=caches or EvaluatorCaches())


def codes(evaluation: Evaluation) -> set[str]:
    """The finding codes of an evaluation."""
    return {f.code for f in evaluation.findings}


def severity(evaluation: Evaluation, code: str) -> str:
    """The severity of the one finding with this code."""
    (found,) = [f for f in evaluation.findings if f.code == code]
    return found.severity
