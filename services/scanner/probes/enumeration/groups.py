"""Named groups (IANA TLS Supported Groups) the probes offer, their sizes, and the client key shares."""

import functools

from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

X25519 = 29
SECP256R1 = 23

#: Code → (name, bits); bits are the ones SSL Labs and sslyze report (x25519 is 253).
GROUPS: dict[int, tuple[str, int]] = {
    1: ("sect163k1", 163),
    2: ("sect163r1", 163),
    3: ("sect163r2", 163),
    4: ("sect193r1", 193),
    5: ("sect193r2", 193),
    6: ("sect233k1", 233),
    7: ("sect233r1", 233),
    8: ("sect239k1", 239),
    9: ("sect283k1", 283),
    10: ("sect283r1", 283),
    11: ("sect409k1", 409),
    12: ("sect409r1", 409),
    13: ("sect571k1", 571),
    14: ("sect571r1", 571),
    15: ("secp160k1", 160),
    16: ("secp160r1", 160),
    17: ("secp160r2", 160),
    18: ("secp192k1", 192),
    19: ("secp192r1", 192),
    20: ("secp224k1", 224),
    21: ("secp224r1", 224),
    22: ("secp256k1", 256),
    23: ("secp256r1", 256),
    24: ("secp384r1", 384),
    25: ("secp521r1", 521),
    26: ("brainpoolP256r1", 256),
    27: ("brainpoolP384r1", 384),
    28: ("brainpoolP512r1", 512),
    29: ("x25519", 253),
    30: ("x448", 448),
    31: ("brainpoolP256r1tls13", 256),
    32: ("brainpoolP384r1tls13", 384),
    33: ("brainpoolP512r1tls13", 512),
    256: ("ffdhe2048", 2048),
    257: ("ffdhe3072", 3072),
    258: ("ffdhe4096", 4096),
    259: ("ffdhe6144", 6144),
    260: ("ffdhe8192", 8192),
    0x11EB: ("SecP256r1MLKEM768", 256),
    0x11EC: ("X25519MLKEM768", 253),
    0x11ED: ("SecP384r1MLKEM1024", 384),
}

#: Groups a TLS 1.3 ClientHello offers, most common first (the server picks; we only learn its choice).
TLS13_GROUPS: tuple[int, ...] = (29, 23, 24, 25, 30, 0x11EC, 0x11EB, 0x11ED, 256, 257, 258, 259, 260, 31, 32, 33)

#: Elliptic curves a TLS 1.0-1.2 ClientHello offers for ECDHE. Finite-field groups are left out on purpose:
#: an RFC 7919 server that sees them but shares none must refuse DHE, which would hide its DHE suites.
ECDHE_GROUPS: tuple[int, ...] = (29, 23, 24, 25, 30, 26, 27, 28, 22, 21, 20, 19, 18, *range(1, 18))


def group_name(code: int) -> str:
    """The IANA name of a group, or `0xNNNN` for one we do not know."""
    known = GROUPS.get(code)
    return known[0] if known else f"0x{code:04x}"


def group_bits(code: int) -> int | None:
    """The size of a group in bits, when known."""
    known = GROUPS.get(code)
    return known[1] if known else None


@functools.cache
def key_shares() -> dict[int, bytes]:
    """One x25519 and one secp256r1 public key, generated once per process.

    The probe never completes a handshake, so nothing is ever derived from these keys; reusing them keeps
    every TLS 1.3 hello cheap to build.
    """
    x_pub = x25519.X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    p_pub = ec.generate_private_key(ec.SECP256R1()).public_key()
    return {X25519: x_pub, SECP256R1: p_pub.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)}


def _scaled_e(bits: int) -> int:
    """floor(e * 2**bits), by summing 1/k! in fixed point with 64 guard bits."""
    guard = bits + 64
    term, total, k = 1 << guard, 0, 0
    while term:
        total += term
        k += 1
        term //= k
    return total >> 64


@functools.cache
def ffdhe_primes() -> dict[int, str]:
    """The RFC 7919 primes (p = 2^b - 2^(b-64) + (floor(2^(b-130) e) + X) * 2^64 - 1) → group name."""
    constants = {2048: 560316, 3072: 2625351, 4096: 5736041, 6144: 15705020, 8192: 10965728}
    return {2**b - 2 ** (b - 64) + (_scaled_e(b - 130) + x) * 2**64 - 1: f"ffdhe{b}" for b, x in constants.items()}


def dh_group_name(prime: bytes) -> str:
    """`ffdheNNNN` for an RFC 7919 prime, `dh` for any other (a server's own) DHE group."""
    return ffdhe_primes().get(int.from_bytes(prime, "big"), "dh")
