"""The leaf's public key: what it is, and `key.weak` when it is too small (the verifier only checks issuer keys)."""

from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from services.evaluator.domain.codes import finding
from services.evaluator.domain.parse import ParsedCert
from shared.events.evaluation import Finding, KeyInfo

MIN_RSA_BITS = 2048
MIN_EC_BITS = 256


def key_info(leaf: ParsedCert) -> KeyInfo:
    """Type, size and curve of the leaf's key (`unknown` when the algorithm is not one we read)."""
    key = leaf.public_key
    if isinstance(key, rsa.RSAPublicKey):
        return KeyInfo(type="RSA", bits=key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return KeyInfo(type="EC", bits=key.curve.key_size, curve=key.curve.name)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return KeyInfo(type="Ed25519", bits=256, curve="ed25519")
    if isinstance(key, ed448.Ed448PublicKey):
        return KeyInfo(type="Ed448", bits=456, curve="ed448")
    if isinstance(key, dsa.DSAPublicKey):
        return KeyInfo(type="DSA", bits=key.key_size)
    return KeyInfo(type="unknown")


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
