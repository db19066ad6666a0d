"""ClientHello bytes built by hand (SSLv2, SSLv3, TLS 1.0-1.3), so what can be probed does not depend on what
the local OpenSSL still compiles in (the testssl.sh approach).

Only the first flight is ever sent: the probe reads the server's answer and hangs up, so the hellos carry
exactly what servers need to choose a version, a suite and a group, and nothing that would need a key.
"""

import os
from collections.abc import Sequence

from services.scanner.probes.enumeration.groups import ECDHE_GROUPS, TLS13_GROUPS, key_shares
from services.scanner.probes.enumeration.records import CONTENT_HANDSHAKE, framed, handshake_message

SSL2 = 0x0002
SSL3 = 0x0300
TLS10 = 0x0301
TLS11 = 0x0302
TLS12 = 0x0303
TLS13 = 0x0304

#: Wire version → the contract's name.
VERSION_NAMES: dict[int, str] = {
    SSL2: "SSLv2",
    SSL3: "SSLv3",
    TLS10: "TLSv1.0",
    TLS11: "TLSv1.1",
    TLS12: "TLSv1.2",
    TLS13: "TLSv1.3",
}

#: RFC 8446 4.1.3: the ServerHello random that marks a HelloRetryRequest.
HELLO_RETRY_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

#: At most this many suites per hello: some servers fail on larger lists (testssl.sh's bundle size).
MAX_SUITES_PER_HELLO = 128

_CLIENT_HELLO = 1

#: ECDSA, EdDSA, RSA-PSS, RSA PKCS#1 and DSA with SHA-2 and SHA-1, so legacy certificates still qualify.
_SIGNATURE_ALGORITHMS = (
    0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0809, 0x080A, 0x080B,
    0x0401, 0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0502, 0x0602, 0x0203, 0x0201, 0x0202,
)  # fmt: skip


def _u16(value: int) -> bytes:
    return value.to_bytes(2, "big")


def _vector(data: bytes, length_size: int) -> bytes:
    return len(data).to_bytes(length_size, "big") + data


def _extension(kind: int, body: bytes) -> bytes:
    return _u16(kind) + _vector(body, 2)


def _u16_list(values: Sequence[int]) -> bytes:
    return b"".join(_u16(value) for value in values)


def _extensions(version: int, server_name: str | None, groups: Sequence[int]) -> bytes:
    parts = []
    if server_name:
        name = server_name.encode("idna")
        parts.append(_extension(0, _vector(b"\x00" + _vector(name, 2), 2)))
    parts.append(_extension(5, b"\x01\x00\x00\x00\x00"))  # status_request: OCSP, no responder ids or extensions
    if groups:
        parts.append(_extension(10, _vector(_u16_list(groups), 2)))
        parts.append(_extension(11, b"\x01\x00"))  # ec_point_formats: uncompressed
    if version >= TLS12:
        parts.append(_extension(13, _vector(_u16_list(_SIGNATURE_ALGORITHMS), 2)))
    if version == TLS13:
        parts.append(_extension(43, b"\x02" + _u16(TLS13)))  # supported_versions
        parts.append(_extension(45, b"\x01\x01"))  # psk_key_exchange_modes: psk_dhe_ke
        shares = key_shares()
        entries = b"".join(_u16(group) + _vector(shares[group], 2) for group in groups if group in shares)
        parts.append(_extension(51, _vector(entries, 2)))  # key_share
    else:
        parts.append(_extension(23, b""))  # extended_master_secret
        parts.append(_extension(0xFF01, b"\x00"))  # renegotiation_info, initial handshake
    return b"".join(parts)


def client_hello(
    version: int,
    suites: Sequence[int],
    *,
    server_name: str | None = None,
    groups: Sequence[int] | None = None,
    random: bytes | None = None,
    session_id: bytes | None = None,
) -> bytes:
    """The records of one ClientHello for SSLv3 to TLS 1.3 offering `suites` (at most 128) in that order.

    SSLv3 hellos carry no extensions. TLS 1.3 hellos say TLS 1.2 in `legacy_version` and TLS 1.3 in
    supported_versions, with x25519 and secp256r1 key shares when those groups are offered.
    `groups` defaults to the version's full list; an empty sequence sends no supported_groups.
    """
    if not 0 < len(suites) <= MAX_SUITES_PER_HELLO:
        raise ValueError(f"a hello offers 1 to {MAX_SUITES_PER_HELLO} suites, not {len(suites)}")
    if groups is None:
        groups = TLS13_GROUPS if version == TLS13 else ECDHE_GROUPS
    if session_id is None:
        session_id = os.urandom(32) if version == TLS13 else b""  # TLS 1.3 middlebox compatibility mode
    body = (
        _u16(min(version, TLS12))
        + (random if random is not None else os.urandom(32))
        + _vector(session_id, 1)
        + _vector(_u16_list(suites), 2)
        + b"\x01\x00"  # compression methods: null only
    )
    if version > SSL3:
        body += _vector(_extensions(version, server_name, groups), 2)
    # The record layer says TLS 1.0 for every TLS hello, as browsers do: some servers drop a higher one.
    return framed(CONTENT_HANDSHAKE, min(version, TLS10), handshake_message(_CLIENT_HELLO, body))


def sslv2_client_hello(kinds: Sequence[int], *, challenge: bytes | None = None) -> bytes:
    """An SSLv2 CLIENT-HELLO (two-byte record header) offering the three-byte cipher `kinds`."""
    specs = b"".join(kind.to_bytes(3, "big") for kind in kinds)
    challenge = challenge if challenge is not None else os.urandom(16)
    body = bytes([_CLIENT_HELLO]) + _u16(SSL2) + _u16(len(specs)) + _u16(0) + _u16(len(challenge)) + specs + challenge
    return _u16(0x8000 | len(body)) + body
