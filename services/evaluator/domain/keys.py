"""The leaf's public key: what it is, and `key.weak` when it is too small (the verifier only checks issuer keys)."""

import functools

from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from services.evaluator.domain.codes import finding
from services.evaluator.domain.parse import ParsedCert
from shared.events.evaluation import Finding, KeyInfo, KeyType

MIN_RSA_BITS = 2048
MIN_EC_BITS = 256


def key_info(leaf: ParsedCert) -> KeyInfo:
    """Type, size and curve of the leaf's key (`unknown` when the algorithm is not one we read)."""
    key = leaf.public_key
    if isinstance(key, rsa.RSAPublicKey):
        return _key_info("RSA", key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return _key_info("EC", key.curve.key_size, key.curve.name)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return _key_info("Ed25519", 256, "ed25519")
    if isinstance(key, ed448.Ed448PublicKey):
        return _key_info("Ed448", 456, "ed448")
    if isinstance(key, dsa.DSAPublicKey):
        return _key_info("DSA", key.key_size)
    return _key_info("unknown")


@functools.lru_cache(maxsize=256)
def _key_info(kind: KeyType, bits: int | None = None, curve: str | None = None) -> KeyInfo:
    """One frozen `KeyInfo` per kind, size and curve (an estate has a handful), shared by the leaves that have it."""
    return KeyInfo(type=kind, bits=bits, curve=curve)


def rsa_exponent(leaf: ParsedCert) -> int | None:
    """The RSA public exponent, or None for other key types."""
    key = leaf.public_key
    return key.public_numbers().e if isinstance(key, rsa.RSAPublicKey) else None


def check_key_algorithm(leaf: ParsedCert) -> Finding | None:
    """`key.unsupported` when the leaf's key algorithm is unknown or its key cannot be read, else None."""
    if leaf.public_key is not None:
        return None
    try:
        algorithm = leaf.cert.public_key_algorithm_oid.dotted_string
    except ValueError:  # the SubjectPublicKeyInfo itself is unreadable
        algorithm = "unreadable"
    return finding(
        "key.unsupported",
        f"the leaf's public key (algorithm {algorithm}) is of a kind certmon cannot read, "
        "so its type and size cannot be judged",
    )


def check_key(info: KeyInfo, exponent: int | None = None) -> Finding | None:
    """`key.weak` for RSA < 2048 bits, an RSA exponent of 1, EC < 256 bits or any DSA key; None otherwise."""
    if info.type == "RSA" and exponent == 1:
        return finding("key.weak", "the RSA public exponent is 1 (zlint e_mp_exponent_cannot_be_one)")
    if info.type == "RSA" and (info.bits or 0) < MIN_RSA_BITS:
        return finding(
            "key.weak",
            f"the RSA key has {info.bits} bits, fewer than {MIN_RSA_BITS} (zlint e_rsa_mod_less_than_2048_bits)",
        )
    if info.type == "EC" and (info.bits or 0) < MIN_EC_BITS:
        return finding(
            "key.weak",
            f"the EC key on {info.curve} has {info.bits} bits, fewer than {MIN_EC_BITS} (zlint e_ec_improper_curves)",
        )
    if info.type == "DSA":
        return finding("key.weak", f"the key is DSA ({info.bits} bits), which TLS clients no longer accept")
    return None
