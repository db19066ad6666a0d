"""What a cipher-suite name says about its strength, from the IANA name or the OpenSSL one.

The scanner reports IANA names (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`); OpenSSL names
(`ECDHE-RSA-AES128-GCM-SHA256`) are read too, because a handshake library may report either.
"""

import re
from dataclasses import dataclass

_FORWARD_SECRET_KX = {"DHE", "ECDHE", "EDH", "ADH", "AECDH", "ANON"}
_AEAD = {"GCM", "CCM", "POLY1305"}
_BLOCK64 = {"3DES", "CBC3", "DES", "DES40", "IDEA", "RC2", "DES_EDE"}


@dataclass(frozen=True)
class SuiteTraits:
    """The properties of one suite that grading and findings need; `bits` is None when we do not know it."""

    name: str
    bits: int | None
    forward_secrecy: bool
    aead: bool
    export: bool
    null: bool
    anonymous: bool
    rc4: bool
    block64: bool

    @property
    def weak(self) -> bool:
        """NULL, EXPORT, anonymous, RC4, DES or 3DES (or another 64-bit block cipher), or under 128 bits."""
        small = self.bits is not None and self.bits < 128
        return self.null or self.export or self.anonymous or self.rc4 or self.block64 or small


def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[-_]", name.upper()) if t]


def _size_after(tokens: list[str], word: str) -> int | None:
    """`AES_128` (IANA) or `AES128` (OpenSSL) → 128."""
    for i, token in enumerate(tokens):
        if token == word and i + 1 < len(tokens) and tokens[i + 1].isdigit():
            return int(tokens[i + 1])
        if token.startswith(word) and token[len(word) :].isdigit():
            return int(token[len(word) :])
    return None


def _bits(tokens: list[str], export: bool) -> int | None:
    if "NULL" in tokens:
        return 0
    if "CHACHA20" in tokens:
        return 256
    for family in ("AES", "CAMELLIA", "ARIA"):
        if any(t.startswith(family) for t in tokens):
            return _size_after(tokens, family)
    if "3DES" in tokens or "CBC3" in tokens or ("DES" in tokens and "EDE" in tokens):
        return 168
    if "DES40" in tokens:
        return 40
    if "DES" in tokens:
        return 40 if export else 56
    if "RC4" in tokens or "RC2" in tokens:
        size = _size_after(tokens, "RC4") or _size_after(tokens, "RC2")
        return 40 if export and size in (None, 128) else (size or 128)
    if "SEED" in tokens or "IDEA" in tokens or "SM4" in tokens:
        return 128
    return 40 if export else None


def classify(name: str) -> SuiteTraits:
    """The traits of a suite named the IANA or the OpenSSL way."""
    tokens = _tokens(name)
    if "WITH" in tokens:
        kx, cipher = tokens[: tokens.index("WITH")], tokens[tokens.index("WITH") + 1 :]
    else:
        kx, cipher = tokens, tokens
    tls13 = tokens[:1] == ["TLS"] and "WITH" not in tokens and len(tokens) > 1 and tokens[1] in {"AES", "CHACHA20"}
    export = any(t.startswith("EXP") for t in tokens)
    anonymous = "ANON" in kx or any(t in {"ADH", "AECDH"} for t in kx)
    null = "NULL" in cipher and not tls13
    return SuiteTraits(
        name=name,
        bits=_bits(cipher, export),
        forward_secrecy=tls13 or any(t in _FORWARD_SECRET_KX for t in kx),
        aead=tls13 or any(t in _AEAD for t in cipher),
        export=export,
        null=null,
        anonymous=anonymous,
        rc4="RC4" in cipher,
        block64=any(t in _BLOCK64 for t in cipher) or ("DES" in cipher and "EDE" in cipher),
    )
