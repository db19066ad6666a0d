"""What a server answers to one hand-built hello, parsed up to ServerHelloDone (TLS <= 1.2), the ServerHello or
HelloRetryRequest (TLS 1.3, whose later messages are encrypted), or the SSLv2 SERVER-HELLO.

Parsers raise `MalformedReply` for bytes that break the protocol; `asyncio.IncompleteReadError` means the peer
hung up. The connection module turns both into values.
"""

import asyncio
from dataclasses import dataclass

from services.scanner.probes.enumeration.hello import HELLO_RETRY_RANDOM, SSL2, TLS13
from services.scanner.probes.enumeration.iana import BY_CODE
from services.scanner.probes.enumeration.records import (
    CONTENT_ALERT,
    CONTENT_HANDSHAKE,
    Cursor,
    HandshakeBuffer,
    MalformedReply,
    RecordReader,
)

_SERVER_HELLO, _CERTIFICATE, _SERVER_KEY_EXCHANGE, _SERVER_HELLO_DONE, _CERTIFICATE_STATUS = 2, 11, 12, 14, 22
_SUPPORTED_VERSIONS, _KEY_SHARE = 43, 51

#: Alert descriptions worth naming in a log line (RFC 8446 6.2).
ALERTS = {
    10: "unexpected_message",
    40: "handshake_failure",
    47: "illegal_parameter",
    50: "decode_error",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    112: "unrecognized_name",
}


@dataclass(frozen=True)
class ServerFlight:
    """The server accepted the hello: its choices, and what the plaintext part of its flight carried.

    `group` is the TLS 1.3 key-share group (or the group a HelloRetryRequest asks for), or the ECDHE curve
    of a TLS <= 1.2 ServerKeyExchange; `dh_bits` is the DHE prime's size. `ocsp` is a stapled response
    (CertificateStatus), `certificates` the Certificate message (TLS <= 1.2 only; TLS 1.3 encrypts it).
    """

    version: int
    cipher: int
    retry: bool = False
    group: int | None = None
    dh_bits: int | None = None
    dh_prime: bytes | None = None
    certificates: tuple[bytes, ...] = ()
    ocsp: bytes | None = None


@dataclass(frozen=True)
class Sslv2Hello:
    """An SSLv2 SERVER-HELLO: the cipher kinds the server offers back, and its certificate."""

    kinds: tuple[int, ...]
    certificate: bytes | None


@dataclass(frozen=True)
class Refused:
    """The server declined the hello: an alert, a closed connection, or an answer in another protocol."""

    reason: str


Reply = ServerFlight | Sslv2Hello | Refused


def parse_server_hello(body: bytes) -> ServerFlight:
    """A ServerHello body: the version (supported_versions wins), suite, and TLS 1.3 key-share group."""
    cursor = Cursor(body)
    version = cursor.uint(2)
    random = cursor.take(32)
    cursor.vector(1)  # session id
    cipher = cursor.uint(2)
    cursor.uint(1)  # compression
    group = None
    if cursor.remaining:
        extensions = Cursor(cursor.vector(2))
        while extensions.remaining:
            kind, data = extensions.uint(2), Cursor(extensions.vector(2))
            if kind == _SUPPORTED_VERSIONS:
                version = data.uint(2)
            elif kind == _KEY_SHARE:
                group = data.uint(2)  # a ServerHello's share, or a HelloRetryRequest's selected group
    return ServerFlight(version=version, cipher=cipher, retry=random == HELLO_RETRY_RANDOM, group=group)


def parse_certificates(body: bytes) -> tuple[bytes, ...]:
    """A TLS <= 1.2 Certificate message: the DER certificates in the order sent."""
    cursor = Cursor(Cursor(body).vector(3))
    certificates = []
    while cursor.remaining:
        certificates.append(cursor.vector(3))
    return tuple(certificates)


def parse_key_exchange(body: bytes, cipher: int) -> tuple[int | None, bytes | None]:
    """A ServerKeyExchange: (ECDHE named curve, None) or (None, DHE prime); (None, None) for other kinds."""
    suite = BY_CODE.get(cipher)
    kex = suite.kex if suite else ""
    cursor = Cursor(body)
    if kex.endswith("_PSK"):
        cursor.vector(2)  # psk_identity_hint precedes the (EC)DH parameters
    if kex.startswith("ECDHE"):
        if cursor.uint(1) == 3:  # named_curve; explicit curves (1, 2) have no code
            return cursor.uint(2), None
        return None, None
    if kex.startswith("DHE"):
        return None, cursor.vector(2)
    return None, None


def parse_certificate_status(body: bytes) -> bytes | None:
    """A CertificateStatus message: the DER OCSP response (status_type ocsp only)."""
    cursor = Cursor(body)
    return cursor.vector(3) if cursor.uint(1) == 1 else None


async def read_tls_reply(records: RecordReader, *, until_hello: bool = False) -> Reply:
    """Read the server's answer to a TLS ClientHello, through ServerHelloDone unless `until_hello`."""
    buffer = HandshakeBuffer(records.max_bytes)
    flight: ServerFlight | None = None
    certificates: tuple[bytes, ...] = ()
    group: int | None = None
    prime: bytes | None = None
    ocsp: bytes | None = None
    done = False
    try:
        while not done:
            record = await records.record()
            if record.content_type == CONTENT_ALERT:
                if flight is None:
                    description = record.payload[1] if len(record.payload) > 1 else -1
                    return Refused(f"alert {ALERTS.get(description, description)}")
                break
            if record.content_type != CONTENT_HANDSHAKE:
                if flight is None:
                    raise MalformedReply(f"a content-type {record.content_type} record before the ServerHello")
                break  # TLS 1.3 ChangeCipherSpec or encrypted records: nothing more we can read
            for kind, body in buffer.feed(record.payload):
                if kind == _SERVER_HELLO and flight is None:
                    flight = parse_server_hello(body)
                    if until_hello or flight.retry or flight.version >= TLS13:
                        return flight
                elif flight is None:
                    raise MalformedReply(f"handshake message {kind} before the ServerHello")
                elif kind == _CERTIFICATE:
                    certificates = parse_certificates(body)
                elif kind == _SERVER_KEY_EXCHANGE:
                    group, prime = parse_key_exchange(body, flight.cipher)
                elif kind == _CERTIFICATE_STATUS:
                    ocsp = parse_certificate_status(body)
                elif kind == _SERVER_HELLO_DONE:
                    done = True
    except (asyncio.IncompleteReadError, ConnectionError):
        if flight is None:
            return Refused("the server closed the connection")
    if flight is None:
        return Refused("no ServerHello")
    return ServerFlight(
        version=flight.version,
        cipher=flight.cipher,
        group=group,
        dh_bits=int.from_bytes(prime, "big").bit_length() if prime else None,
        dh_prime=prime,
        certificates=certificates,
        ocsp=ocsp,
    )


def parse_sslv2_server_hello(message: bytes) -> Sslv2Hello:
    """An SSLv2 SERVER-HELLO message (type byte included)."""
    cursor = Cursor(message)
    cursor.take(3)  # message type, session-id-hit, certificate type
    version = cursor.uint(2)
    if version != SSL2:
        raise MalformedReply(f"an SSLv2 SERVER-HELLO for version {version:#06x}")
    certificate_length, specs_length, connection_id_length = cursor.uint(2), cursor.uint(2), cursor.uint(2)
    certificate = cursor.take(certificate_length)
    specs = cursor.take(specs_length)
    cursor.take(connection_id_length)
    if specs_length % 3:
        raise MalformedReply("SSLv2 cipher specs are not a multiple of three bytes")
    kinds = tuple(int.from_bytes(specs[i : i + 3], "big") for i in range(0, len(specs), 3))
    return Sslv2Hello(kinds=kinds, certificate=certificate or None)


async def read_sslv2_reply(records: RecordReader) -> Reply:
    """Read the server's answer to an SSLv2 CLIENT-HELLO."""
    try:
        header = await records.exactly(2)
        if header[0] in (CONTENT_ALERT, CONTENT_HANDSHAKE):
            return Refused("the server answered in TLS")
        if not header[0] & 0x80:
            raise MalformedReply("not an SSLv2 record")
        message = await records.exactly(((header[0] & 0x7F) << 8) | header[1])
    except (asyncio.IncompleteReadError, ConnectionError):
        return Refused("the server closed the connection")
    if message[:1] == b"\x00":
        return Refused("SSLv2 ERROR")
    if message[:1] != b"\x04":
        raise MalformedReply("an SSLv2 message that is not a SERVER-HELLO")
    return parse_sslv2_server_hello(message)
